//! resolve(): the container shapes upstream manifests use, and what runs them.

use podnet_images::{
    resolve, BuiltinCmd, ConnectArgs, ConnectProtocol, NetexecArgs, PauseArgs, PauseProgram,
    PorterArgs, Resolved, ServeHostnameArgs,
};
use std::time::Duration;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn host(v: &[&str]) -> Resolved {
    Resolved::Host { argv: s(v) }
}

const AGNHOST: &str = "registry.k8s.io/e2e-test-images/agnhost:2.53";

#[test]
fn table() {
    let cases: Vec<(&str, Vec<String>, Vec<String>, Resolved)> = vec![
        // agnhost with args only: the entrypoint /agnhost takes them.
        (
            AGNHOST,
            s(&[]),
            s(&["netexec", "--http-port=8080", "--udp-port=8081"]),
            Resolved::Builtin(BuiltinCmd::Netexec(NetexecArgs::default())),
        ),
        (
            AGNHOST,
            s(&[]),
            s(&[
                "netexec",
                "--http-port",
                "80",
                "--udp-port=-1",
                "--delay-shutdown=5",
            ]),
            Resolved::Builtin(BuiltinCmd::Netexec(NetexecArgs {
                http_port: 80,
                udp_port: None,
                delay_shutdown_secs: 5,
                ..NetexecArgs::default()
            })),
        ),
        // agnhost with a command.
        (
            AGNHOST,
            s(&["/agnhost", "serve-hostname"]),
            s(&[]),
            Resolved::Builtin(BuiltinCmd::ServeHostname(ServeHostnameArgs::default())),
        ),
        // The NetworkPolicy suite's server containers.
        (
            AGNHOST,
            s(&[
                "/agnhost",
                "serve-hostname",
                "--udp",
                "--http=false",
                "--port",
                "81",
            ]),
            s(&[]),
            Resolved::Builtin(BuiltinCmd::ServeHostname(ServeHostnameArgs {
                port: 81,
                udp: true,
                http: false,
                ..ServeHostnameArgs::default()
            })),
        ),
        // Command and args combine.
        (
            "k8s.gcr.io/e2e-test-images/agnhost:2.39",
            s(&["/agnhost"]),
            s(&["serve-hostname", "--tcp", "--http=false", "--port", "80"]),
            Resolved::Builtin(BuiltinCmd::ServeHostname(ServeHostnameArgs {
                port: 80,
                tcp: true,
                http: false,
                ..ServeHostnameArgs::default()
            })),
        ),
        // The NetworkPolicy suite's probe.
        (
            AGNHOST,
            s(&[
                "/agnhost",
                "connect",
                "10.0.0.1:80",
                "--timeout=1s",
                "--protocol=tcp",
            ]),
            s(&[]),
            Resolved::Builtin(BuiltinCmd::Connect(ConnectArgs {
                target: "10.0.0.1:80".into(),
                timeout: Duration::from_secs(1),
                protocol: ConnectProtocol::Tcp,
                udp_data: "hostname".into(),
                sctp_data: "hostname".into(),
            })),
        ),
        (
            AGNHOST,
            s(&["/agnhost", "porter"]),
            s(&[]),
            Resolved::Builtin(BuiltinCmd::Porter(PorterArgs::default())),
        ),
        // No command, no args: ENTRYPOINT /agnhost, CMD pause.
        (
            AGNHOST,
            s(&[]),
            s(&[]),
            Resolved::Builtin(BuiltinCmd::Pause(PauseArgs {
                program: PauseProgram::Agnhost,
                delay_shutdown_secs: 0,
            })),
        ),
        // agnhost's image has a shell too.
        (
            AGNHOST,
            s(&["sh", "-c", "sleep 1"]),
            s(&[]),
            host(&["sh", "-c", "sleep 1"]),
        ),
        // busybox-like images run their command with the machine's binaries.
        (
            "docker.io/library/busybox:1.36",
            s(&["sh", "-c", "echo hi"]),
            s(&[]),
            host(&["sh", "-c", "echo hi"]),
        ),
        ("busybox", s(&[]), s(&[]), host(&["sh"])),
        (
            "busybox",
            s(&[]),
            s(&["sleep", "3600"]),
            host(&["sleep", "3600"]),
        ),
        (
            "registry.k8s.io/e2e-test-images/busybox:1.36.1-1",
            s(&["/bin/sh", "-c"]),
            s(&["wget -qO- http://10.0.0.1"]),
            host(&["/bin/sh", "-c", "wget -qO- http://10.0.0.1"]),
        ),
        (
            "busybox",
            s(&["busybox", "nc", "-l", "-p", "80"]),
            s(&[]),
            host(&["nc", "-l", "-p", "80"]),
        ),
        ("alpine:3.20", s(&[]), s(&[]), host(&["/bin/sh"])),
        ("debian", s(&[]), s(&[]), host(&["bash"])),
        ("ubuntu:24.04", s(&[]), s(&[]), host(&["/bin/bash"])),
        ("nicolaka/netshoot", s(&[]), s(&[]), host(&["zsh"])),
        (
            "nicolaka/netshoot:latest",
            s(&[]),
            s(&["sleep", "infinity"]),
            host(&["sleep", "infinity"]),
        ),
        (
            "curlimages/curl",
            s(&[]),
            s(&["-s", "http://10.96.0.10"]),
            host(&["curl", "-s", "http://10.96.0.10"]),
        ),
        (
            "curlimages/curl:8.9.1",
            s(&[]),
            s(&["sh", "-c", "true"]),
            host(&["sh", "-c", "true"]),
        ),
        ("curlimages/curl", s(&[]), s(&[]), host(&["curl"])),
        // pause.
        (
            "registry.k8s.io/pause:3.10",
            s(&[]),
            s(&[]),
            Resolved::Builtin(BuiltinCmd::Pause(PauseArgs {
                program: PauseProgram::PauseImage,
                delay_shutdown_secs: 0,
            })),
        ),
        (
            "k8s.gcr.io/pause-amd64:3.1",
            s(&["/pause"]),
            s(&[]),
            Resolved::Builtin(BuiltinCmd::Pause(PauseArgs {
                program: PauseProgram::PauseImage,
                delay_shutdown_secs: 0,
            })),
        ),
        // Anything else runs its command as given.
        (
            "nginx:1.27",
            s(&["nginx", "-g", "daemon off;"]),
            s(&[]),
            host(&["nginx", "-g", "daemon off;"]),
        ),
    ];
    for (image, command, args, want) in cases {
        let got = resolve(image, &command, &args);
        assert_eq!(got, want, "image {image} command {command:?} args {args:?}");
    }
}

fn reason(r: Resolved) -> String {
    match r {
        Resolved::Unknown { reason } => reason,
        other => panic!("expected Unknown, got {other:?}"),
    }
}

#[test]
fn unknown_images_without_a_command_are_refused_with_a_clear_reason() {
    let r = reason(resolve("nginx:1.27", &[], &[]));
    assert!(r.contains("\"nginx:1.27\""), "{r}");
    assert!(r.contains("no command"), "{r}");
    assert!(
        r.contains("agnhost") && r.contains("busybox") && r.contains("explicit command"),
        "{r}"
    );
    let r = reason(resolve("quay.io/x/y", &[], &s(&["--flag"])));
    assert!(r.contains("args but no command"), "{r}");
    let r = reason(resolve("busybox", &s(&[""]), &[]));
    assert!(r.contains("empty"), "{r}");
}

#[test]
fn agnhost_command_lines_without_a_builtin_are_refused() {
    let r = reason(resolve(AGNHOST, &[], &s(&["liveness"])));
    assert!(
        r.contains("\"liveness\"") && r.contains("netexec, serve-hostname"),
        "{r}"
    );
    let r = reason(resolve(
        AGNHOST,
        &[],
        &s(&["netexec", "--tls-cert-file=/localhost.crt"]),
    ));
    assert!(r.contains("https"), "{r}");
    let r = reason(resolve(AGNHOST, &[], &s(&["netexec", "--bogus"])));
    assert!(r.contains("unknown flag --bogus"), "{r}");
    let r = reason(resolve(AGNHOST, &[], &s(&["serve-hostname", "--tcp"])));
    assert!(r.contains("--http=false"), "{r}");
    let r = reason(resolve(AGNHOST, &[], &s(&["connect"])));
    assert!(r.contains("positional"), "{r}");
}
