//! The runtime side against Debian's reference plugins (package
//! `containernetworking-plugins`, in /usr/lib/cni), run for real.
//!
//! The root tests create two network namespaces per run, a "host" one where the plugins
//! run (through the exec prefix `ip netns exec HOST`) and a "pod" one, so that nothing is
//! ever created in the machine's root namespace; a guard deletes both, also on failure.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Output};

use serde_json::{json, Value};

use podnet_cni::invoke::{exec_plugin, ChainRunner, RuntimeEnv};
use podnet_cni::protocol::{NetworkConfigList, SpecVersion};
use podnet_cni::{Attachment, Command};

const PLUGIN_DIR: &str = "/usr/lib/cni";

fn require_plugins(names: &[&str]) {
    for name in names {
        let path = Path::new(PLUGIN_DIR).join(name);
        assert!(
            path.is_file(),
            "this test needs the reference CNI plugin {} (Debian package containernetworking-plugins: apt-get install -y containernetworking-plugins)",
            path.display()
        );
    }
}

fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_eq!(
        uid, "0",
        "this test needs root (it creates network namespaces and runs CNI plugins in them); run the tests as root"
    );
}

/// A random lower-case hex tag, so that parallel runs never collide.
fn tag() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{:08x}", h.finish() as u32)
}

fn run(args: &[&str]) -> Output {
    Process::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("failed to run {args:?}: {e}"))
}

fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_of(args: &[&str]) -> Value {
    serde_json::from_slice(&run_ok(args).stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Deletes the namespaces it holds when dropped (best effort, idempotent).
struct Namespaces {
    names: Vec<String>,
}

impl Namespaces {
    fn create(names: &[String]) -> Namespaces {
        let mut guard = Namespaces { names: Vec::new() };
        for name in names {
            run_ok(&["ip", "netns", "add", name]);
            guard.names.push(name.clone());
            run_ok(&["ip", "-n", name, "link", "set", "lo", "up"]);
        }
        guard
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.names {
            // Already gone is fine; there is nothing else to do on failure here.
            let _ = run(&["ip", "netns", "del", name]);
        }
    }
}

fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

#[test]
fn version_of_the_reference_bridge_plugin() {
    require_plugins(&["bridge"]);
    let dirs = [PathBuf::from(PLUGIN_DIR)];
    let out = exec_plugin(
        &dirs,
        "bridge",
        Command::Version,
        &RuntimeEnv::default(),
        &json!({"cniVersion": "0.4.0"}),
    )
    .expect("VERSION of bridge")
    .expect("VERSION prints a result");
    let listed = out["supportedVersions"]
        .as_array()
        .expect("supportedVersions is a list");
    assert!(
        listed.iter().any(|v| v == "0.4.0"),
        "bridge lists 0.4.0: {out}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let info = ChainRunner::new(dirs.to_vec(), tmp.path())
        .version("bridge", "1.0.0")
        .unwrap();
    assert!(
        info.supports(SpecVersion::V1_1_0) || info.supports(SpecVersion::V1_0_0),
        "bridge supports {:?}: expected 1.0.0 or 1.1.0 among them",
        info.supported_versions
    );
}

#[test]
fn bridge_host_local_bandwidth_add_check_del_in_private_namespaces() {
    require_root();
    require_plugins(&["bridge", "host-local", "bandwidth"]);
    let id = tag();
    let host = format!("pncnih-{id}");
    let pod = format!("pncnip-{id}");
    let bridge = format!("pncni{id}");
    let network = format!("pncnitest-{id}");
    let octet = u8::from_str_radix(&id[..2], 16).unwrap();
    let subnet = format!("10.250.{octet}.0/24");
    let gateway = format!("10.250.{octet}.1");
    let guard = Namespaces::create(&[host.clone(), pod.clone()]);
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("host-local");

    // Offers 1.1.0 too; probing the plugins' VERSION settles on what they support.
    let list = NetworkConfigList::from_value(json!({
        "cniVersion": "1.1.0",
        "cniVersions": ["0.4.0", "1.0.0", "1.1.0"],
        "name": network,
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                      "dataDir": data_dir.display().to_string()}},
            {"type": "bandwidth", "capabilities": {"bandwidth": true}}
        ]
    }))
    .unwrap();
    let runner = ChainRunner::new(vec![PathBuf::from(PLUGIN_DIR)], tmp.path().join("cache"))
        .with_exec_prefix(vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            host.clone(),
        ]);
    let netns = format!("/run/netns/{pod}");
    let att = Attachment::new(format!("pncni-ctr-{id}"), &netns, "eth0").with_capability(
        "bandwidth",
        json!({"ingressRate": 8_000_000, "ingressBurst": 800_000}),
    );

    // ADD
    let result = runner
        .add_network_list(&list, &att)
        .expect("ADD of bridge + bandwidth");
    let (index, eth0) = result
        .sandbox_interfaces()
        .next()
        .expect("an interface in the pod");
    assert_eq!(eth0.name, "eth0");
    assert_eq!(eth0.sandbox.as_deref(), Some(netns.as_str()));
    let ip = result
        .ips_of(index)
        .next()
        .expect("an address on eth0")
        .clone();
    assert_eq!(ip.gateway.map(|g| g.to_string()), Some(gateway.clone()));
    assert_eq!(ip.address.prefix_len(), 24);
    let address = ip.address.addr().to_string();
    assert!(
        address.starts_with(&format!("10.250.{octet}.")),
        "{address} in {subnet}"
    );

    // Observed: the pod has eth0 with that address, the bridge is in the host namespace
    // and not in the root one, the gateway answers, host-local holds the reservation,
    // and bandwidth shaped the host-side veth.
    let addrs = json_of(&["ip", "-n", &pod, "-j", "addr", "show", "dev", "eth0"]);
    let has_addr = addrs[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["local"] == address.as_str() && a["prefixlen"] == 24);
    assert!(has_addr, "eth0 in {pod} has {address}/24: {addrs}");
    run_ok(&["ip", "-n", &host, "link", "show", "dev", &bridge]);
    assert!(
        !run(&["ip", "link", "show", "dev", &bridge])
            .status
            .success(),
        "the bridge must not exist in the root namespace"
    );
    run_ok(&["ip", "netns", "exec", &pod, "ping", "-c1", "-W1", &gateway]);
    let reservation = data_dir.join(&network).join(&address);
    assert!(
        reservation.is_file(),
        "host-local reserved {}",
        reservation.display()
    );
    let host_veth = result
        .interfaces
        .iter()
        .find(|i| !i.in_sandbox() && i.name != bridge)
        .expect("a host-side veth in the result");
    let qdiscs = String::from_utf8_lossy(
        &run_ok(&["tc", "-n", &host, "qdisc", "show", "dev", &host_veth.name]).stdout,
    )
    .into_owned();
    assert!(
        qdiscs.contains("tbf"),
        "bandwidth shaped {}: {qdiscs}",
        host_veth.name
    );
    assert!(runner
        .cache()
        .load(&network, &att.container_id, "eth0")
        .unwrap()
        .is_some());

    // CHECK
    runner
        .check_network_list(&list, &att)
        .expect("CHECK after ADD");

    // DEL: the address is released and the interface is gone; a second DEL is fine.
    runner.del_network_list(&list, &att).expect("DEL");
    assert!(!reservation.exists(), "host-local released {address}");
    assert!(
        !run(&["ip", "-n", &pod, "link", "show", "dev", "eth0"])
            .status
            .success(),
        "eth0 is gone from the pod"
    );
    assert!(runner
        .cache()
        .load(&network, &att.container_id, "eth0")
        .unwrap()
        .is_none());
    runner
        .del_network_list(&list, &att)
        .expect("a second DEL succeeds");

    drop(guard);
    assert!(
        !netns_exists(&host) && !netns_exists(&pod),
        "the guard removed both namespaces"
    );
}

#[test]
fn loopback_plugin_brings_lo_up_and_down() {
    require_root();
    require_plugins(&["loopback"]);
    let id = tag();
    let host = format!("pncnih-{id}");
    let pod = format!("pncnip-{id}");
    let guard = Namespaces::create(std::slice::from_ref(&host));
    // The pod namespace starts with lo down: created without the guard's "lo up".
    run_ok(&["ip", "netns", "add", &pod]);
    let guard = Namespaces {
        names: guard.names.iter().cloned().chain([pod.clone()]).collect(),
    };
    let is_up = || {
        let link = json_of(&["ip", "-n", &pod, "-j", "link", "show", "dev", "lo"]);
        link[0]["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "UP")
    };
    assert!(!is_up(), "lo starts down");

    let tmp = tempfile::tempdir().unwrap();
    let list = NetworkConfigList::from_value(json!({
        "cniVersion": "1.0.0", "name": format!("pncnilo-{id}"), "plugins": [{"type": "loopback"}]
    }))
    .unwrap();
    let runner =
        ChainRunner::new(vec![PathBuf::from(PLUGIN_DIR)], tmp.path()).with_exec_prefix(vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            host.clone(),
        ]);
    let att = Attachment::new(format!("pncni-lo-{id}"), format!("/run/netns/{pod}"), "lo");
    runner.add_network_list(&list, &att).expect("ADD loopback");
    assert!(is_up(), "lo is up after ADD");
    run_ok(&[
        "ip",
        "netns",
        "exec",
        &pod,
        "ping",
        "-c1",
        "-W1",
        "127.0.0.1",
    ]);
    runner
        .check_network_list(&list, &att)
        .expect("CHECK loopback");
    runner.del_network_list(&list, &att).expect("DEL loopback");
    assert!(!is_up(), "lo is down after DEL");
    drop(guard);
    assert!(!netns_exists(&host) && !netns_exists(&pod));
}
