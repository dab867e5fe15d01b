//! parse_argv() and BuiltinCmd::argv(): the command lines the node runtime execs.

use podnet_images::{parse_argv, resolve, BuiltinCmd, ConnectProtocol, ParseError, Resolved};
use std::time::Duration;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn canonical_argv_reads_back_unchanged() {
    let lines: &[&[&str]] = &[
        &["agnhost", "netexec"],
        &[
            "/agnhost",
            "netexec",
            "--http-port=80",
            "--udp-port=-1",
            "--sctp-port=9",
            "--delay-shutdown=3",
        ],
        &[
            "agnhost",
            "netexec",
            "--udp-listen-addresses=127.0.0.1,::1",
            "--http-override=/echo?msg=x",
        ],
        &[
            "agnhost",
            "serve-hostname",
            "--udp",
            "--http=false",
            "--port",
            "53",
        ],
        &["agnhost", "serve-hostname", "--close"],
        &["agnhost", "porter", "--json-response"],
        &[
            "agnhost",
            "connect",
            "[fd00::1]:80",
            "--timeout=1.5s",
            "--protocol=udp",
            "--udp-data=echo x",
        ],
        &["agnhost", "connect", "--timeout", "250ms", "10.0.0.1:80"],
        &["agnhost", "pause", "--delay-shutdown=2"],
        &["pause"],
        &["/pause", "-v"],
    ];
    for line in lines {
        let cmd = parse_argv(&s(line)).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        let again = parse_argv(&cmd.argv()).unwrap_or_else(|e| panic!("{:?}: {e}", cmd.argv()));
        assert_eq!(again, cmd, "{line:?} -> {:?}", cmd.argv());
    }
}

#[test]
fn connect_flags_anywhere() {
    let BuiltinCmd::Connect(c) =
        parse_argv(&s(&["agnhost", "connect", "--timeout", "250ms", "h:1"])).unwrap()
    else {
        panic!("not connect");
    };
    assert_eq!(
        (c.target.as_str(), c.timeout, c.protocol),
        ("h:1", Duration::from_millis(250), ConnectProtocol::Tcp)
    );
}

#[test]
fn errors() {
    assert_eq!(parse_argv(&[]), Err(ParseError::Empty));
    assert_eq!(
        parse_argv(&s(&["agnhost"])),
        Err(ParseError::MissingSubcommand)
    );
    assert!(matches!(
        parse_argv(&s(&["nginx"])),
        Err(ParseError::UnknownProgram(_))
    ));
    let e = parse_argv(&s(&["agnhost", "netexec", "--http-port=70000"])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "flag --http-port: expected a port number (0-65535, or -1 for none), found \"70000\""
    );
    let e = parse_argv(&s(&["agnhost", "connect", "a:1", "--protocol=quic"])).unwrap_err();
    assert!(e.to_string().contains("tcp, udp or sctp"), "{e}");
    let e = parse_argv(&s(&["agnhost", "netexec", "extra"])).unwrap_err();
    assert!(e.to_string().contains("expected 0 positional"), "{e}");
}

#[test]
fn every_resolved_builtin_has_an_argv_that_parses() {
    let r = resolve(
        "registry.k8s.io/e2e-test-images/agnhost:2.53",
        &[],
        &s(&["netexec"]),
    );
    let Resolved::Builtin(cmd) = r else {
        panic!("{r:?}")
    };
    assert_eq!(cmd.argv()[..2], s(&["agnhost", "netexec"])[..]);
    assert_eq!(parse_argv(&cmd.argv()), Ok(cmd));
}
