//! The `podnet` shim and the plugin server (`podnet-cni serve`): a runtime runs the
//! small shim, which hands the request to the server of its network namespace; with no
//! server it runs the standalone plugin next to it. Asserts on what the kernel and the
//! store hold, and on which process did the work (the server's log).

mod plugin_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plugin_support::{addresses, ping, Lab, PLUGIN};

const CIDR: &str = "10.244.8.0/24";

/// `podnet-cni serve` in the lab's node namespace, killed (by pid) on drop.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(lab: &Lab) -> Server {
        Server::start_with(lab, None)
    }

    /// With `PODNET_CNI_FAILPOINT=failpoint`: the server kills itself at that step.
    fn start_with(lab: &Lab, failpoint: Option<&str>) -> Server {
        let log = lab.dir.path().join("server.log");
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new("ip");
        if let Some(f) = failpoint {
            cmd.env("PODNET_CNI_FAILPOINT", f);
        }
        let child = cmd
            .args(["netns", "exec", &lab.node_ns, PLUGIN, "serve"])
            .env("PODNET_CNI_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("starting the server");
        let server = Server { child, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.log().contains("serving CNI requests") {
            assert!(
                Instant::now() < deadline,
                "the server did not start: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `podnet-cni install DIR`: the shim as `podnet`, the plugin as `podnet-cni`.
fn install(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let out = Command::new(PLUGIN)
        .arg("install")
        .arg(dir)
        .output()
        .expect("podnet-cni install");
    assert!(out.status.success(), "{out:?}");
    let shim = std::fs::metadata(dir.join("podnet")).unwrap();
    assert!(
        shim.len() < 64 * 1024,
        "the shim is small and static: {} bytes",
        shim.len()
    );
}

#[test]
fn the_shim_hands_requests_to_its_namespace_server_and_runs_the_plugin_without_one() {
    let mut lab = Lab::new(Some(CIDR));
    let bin = lab.dir.path().join("bin");
    install(&bin);
    lab.binary = bin.join("podnet");
    let pod = lab.pod();
    let pod_ns = Lab::ns_of(&pod).to_string();

    // No server in the node namespace: the shim runs podnet-cni next to it.
    let r = lab.add("alone", &pod).ok().json();
    assert_eq!(r["ips"][0]["address"], "10.244.8.2/24", "{r}");
    assert!(ping(&pod_ns, "10.244.8.1"));
    lab.del("alone", &pod).ok();
    assert!(lab.ipam_keys().is_empty(), "{:?}", lab.ipam_keys());
    assert!(lab.node_veths().is_empty());

    let server = Server::start(&lab);
    let r = lab.add("ctr1", &pod).ok().json();
    assert_eq!(r["cniVersion"], "1.1.0", "{r}");
    assert_eq!(r["ips"][0]["address"], "10.244.8.2/24", "{r}");
    assert_eq!(addresses(&pod_ns, "eth0"), vec!["10.244.8.2/24"]);
    assert!(ping(&pod_ns, "10.244.8.1"), "pod cannot ping its gateway");
    assert!(
        server.log().contains("container_id=ctr1"),
        "the server did the ADD: {}",
        server.log()
    );

    // Errors come back with their code and message.
    let bad = lab.exec_raw(
        &[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "x"),
            ("CNI_NETNS", &pod),
            ("CNI_IFNAME", "eth0"),
        ],
        b"not json",
    );
    assert!(bad.err(6).contains("decode"), "{bad:?}");
    let v = lab.exec_raw(&[("CNI_COMMAND", "VERSION")], br#"{"cniVersion":"0.4.0"}"#);
    assert_eq!(v.code, 0, "{v:?}");
    assert_eq!(v.json()["cniVersion"], "0.4.0");

    // DEL through the server: the link and the address are gone.
    lab.del("ctr1", &pod).ok();
    assert!(lab.node_veths().is_empty(), "{:?}", lab.node_veths());
    assert!(lab.ipam_keys().is_empty(), "{:?}", lab.ipam_keys());
    assert!(server.log().contains("detached container_id=ctr1"));

    // Another user may not use the server (abstract sockets have no file modes).
    let other = Command::new("ip")
        .args(["netns", "exec", &lab.node_ns, "setpriv", "--reuid=65534"])
        .args(["--regid=65534", "--clear-groups"])
        .arg(&lab.binary)
        .env_clear()
        .env("CNI_COMMAND", "VERSION")
        .stdin(Stdio::null())
        .output()
        .expect("setpriv");
    let text = String::from_utf8_lossy(&other.stdout);
    assert_eq!(other.status.code(), Some(1), "{other:?}");
    assert!(text.contains("\"code\":11"), "{text}");
    assert!(
        server
            .log()
            .contains("refused a connection from another user"),
        "{}",
        server.log()
    );
}

#[test]
fn a_server_killed_at_each_step_of_add_leaks_nothing() {
    let mut lab = Lab::new(Some(CIDR));
    let bin = lab.dir.path().join("bin");
    install(&bin);
    // Only the shim: a dead server must not be replaced by the standalone plugin here.
    let only = lab.dir.path().join("only-shim");
    std::fs::create_dir_all(&only).unwrap();
    std::fs::copy(bin.join("podnet"), only.join("podnet")).unwrap();
    lab.binary = only.join("podnet");
    let pod = lab.pod();
    for (i, failpoint) in ["after-alloc", "after-bridge", "after-veth"]
        .iter()
        .enumerate()
    {
        let id = format!("crash{i}");
        let mut dying = Server::start_with(&lab, Some(failpoint));
        let r = lab.add(&id, &pod);
        assert_eq!(r.code, 1, "{failpoint}: {r:?}");
        assert_eq!(r.json()["code"], 11, "{failpoint}: try again later: {r:?}");
        let status = dying.child.wait().expect("the server's status");
        assert!(
            !status.success(),
            "{failpoint}: the server died: {status:?}"
        );
        drop(dying);
        // The runtime's cleanup after a failed ADD: DEL, through a healthy server.
        let server = Server::start(&lab);
        lab.del(&id, &pod).ok();
        assert!(
            lab.node_veths().is_empty(),
            "{failpoint}: {:?}",
            lab.node_veths()
        );
        assert!(
            lab.ipam_keys().is_empty(),
            "{failpoint}: {:?}",
            lab.ipam_keys()
        );
        // and the attachment works afterwards, with the first address again
        let r = lab.add(&id, &pod).ok().json();
        assert_eq!(r["ips"][0]["address"], "10.244.8.2/24", "{failpoint}: {r}");
        lab.del(&id, &pod).ok();
        assert!(lab.ipam_keys().is_empty());
        drop(server);
    }
}

#[test]
fn a_shim_without_server_or_plugin_answers_try_again_later() {
    let lab = Lab::new(Some(CIDR));
    let bin = lab.dir.path().join("bin");
    install(&bin);
    let lonely = lab.dir.path().join("lonely");
    std::fs::create_dir_all(&lonely).unwrap();
    std::fs::copy(bin.join("podnet"), lonely.join("podnet")).unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.node_ns])
        .arg(lonely.join("podnet"))
        .env_clear()
        .env("CNI_COMMAND", "VERSION")
        .stdin(Stdio::null())
        .output()
        .expect("run the shim");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a CNI error object");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["code"], 11, "{v}");
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .contains("no podnet-cni next to the shim"),
        "{v}"
    );
}
