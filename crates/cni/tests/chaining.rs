//! podnet-cni chained with Debian's reference `portmap` and `bandwidth` plugins (package
//! containernetworking-plugins), run by this crate's runtime side (`ChainRunner`) inside
//! a node namespace, and proven with real traffic:
//!
//! - an "external" namespace, joined to the node namespace by a veth pair
//!   (10.252.31.0/30), reaches a pod's server through node-ip:hostPort (portmap DNAT);
//! - a pod with a `bandwidth` capability of 8 Mbit/s in each direction moves data at
//!   most ~1.5x that rate, while a control pod without the capability is much faster;
//! - DEL of the chain removes the portmap rules and the tc qdiscs.
//!
//! Every iptables rule and qdisc lands in the node namespace; nothing is created in the
//! machine's root namespace. Namespaces and processes are removed by guards, also when a
//! test fails.

mod plugin_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plugin_support::{run_ok, Lab, NODE_NAME};
use podnet_cni::invoke::ChainRunner;
use podnet_cni::protocol::NetworkConfigList;
use podnet_cni::Attachment;
use serde_json::{json, Value};

const REFERENCE_DIR: &str = "/usr/lib/cni";
/// The shaped rate, bits per second, in both directions.
const RATE: u64 = 8_000_000;
const NODE_IP: &str = "10.252.31.1";
const EXT_IP: &str = "10.252.31.2";

fn require_tools() {
    for name in ["portmap", "bandwidth"] {
        assert!(
            Path::new(REFERENCE_DIR).join(name).is_file(),
            "this test needs the reference CNI plugin {REFERENCE_DIR}/{name}: apt-get install -y containernetworking-plugins"
        );
    }
    for (tool, package) in [
        ("iptables", "iptables"),
        ("iperf3", "iperf3"),
        ("tc", "iproute2"),
        ("busybox", "busybox-static"),
    ] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok()
                || Command::new(tool).arg("-V").output().is_ok(),
            "this test needs {tool}: apt-get install -y {package}"
        );
    }
}

/// Namespaces and processes of the test beyond the `Lab`'s; removed on drop.
#[derive(Default)]
struct Extras {
    namespaces: Vec<String>,
    children: Vec<Child>,
}

impl Drop for Extras {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Starts `args` in namespace `ns`, owned by `extras`.
fn spawn_in(extras: &mut Extras, ns: &str, args: &[&str]) {
    let child = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {args:?} in {ns}: {e}"));
    extras.children.push(child);
}

/// The external namespace, wired to the node namespace by a veth pair, with a route to
/// the pod CIDR through the node.
fn external(lab: &Lab, extras: &mut Extras, pod_cidr: &str) -> String {
    let ext = format!("{}-ext", lab.prefix);
    run_ok(&["ip", "netns", "add", &ext]);
    extras.namespaces.push(ext.clone());
    let node = lab.node_ns.as_str();
    run_ok(&[
        "ip", "-n", node, "link", "add", "ext0", "type", "veth", "peer", "name", "ext1", "netns",
        &ext,
    ]);
    run_ok(&[
        "ip",
        "-n",
        node,
        "addr",
        "add",
        &format!("{NODE_IP}/30"),
        "dev",
        "ext0",
    ]);
    run_ok(&["ip", "-n", node, "link", "set", "ext0", "up"]);
    run_ok(&["ip", "-n", node, "link", "set", "lo", "up"]);
    run_ok(&[
        "ip",
        "-n",
        &ext,
        "addr",
        "add",
        &format!("{EXT_IP}/30"),
        "dev",
        "ext1",
    ]);
    run_ok(&["ip", "-n", &ext, "link", "set", "ext1", "up"]);
    run_ok(&["ip", "-n", &ext, "link", "set", "lo", "up"]);
    run_ok(&["ip", "-n", &ext, "route", "add", pod_cidr, "via", NODE_IP]);
    run_ok(&[
        "ip",
        "netns",
        "exec",
        node,
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.ip_forward=1",
    ]);
    ext
}

/// Connects from `ns` to `ip:port` with busybox nc and returns what the server said;
/// retried for a few seconds while the server starts.
fn fetch(ns: &str, ip: &str, port: u16, patience: Duration) -> String {
    let deadline = Instant::now() + patience;
    loop {
        let out = Lab::in_ns(
            ns,
            &[
                "timeout",
                "5",
                "busybox",
                "nc",
                "-w",
                "2",
                ip,
                &port.to_string(),
            ],
        );
        let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !got.is_empty() || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs a bounded iperf3 test (2 s) from `ns` to `ip:port` and returns the rate the
/// receiver saw, in bits per second; `reverse`: the server sends.
fn iperf(ns: &str, ip: &str, port: u16, reverse: bool) -> f64 {
    let port = port.to_string();
    let mut args = vec![
        "timeout",
        "20",
        "iperf3",
        "-c",
        ip,
        "-p",
        &port,
        "-t",
        "2",
        "-J",
        "--connect-timeout",
        "3000",
    ];
    if reverse {
        args.push("-R");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Lab::in_ns(ns, &args);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        // iperf3 may fail while the server starts ("connection refused", no summary).
        if let Some(rate) = v["end"]["sum_received"]["bits_per_second"].as_f64() {
            if out.status.success() {
                return rate;
            }
        }
        assert!(
            Instant::now() < deadline,
            "iperf3 to {ip}:{port} from {ns} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn node_text(lab: &Lab, args: &[&str]) -> String {
    String::from_utf8_lossy(&Lab::in_ns(&lab.node_ns, args).stdout).to_string()
}

#[test]
fn podnet_portmap_bandwidth_chain_with_real_traffic() {
    let pod_cidr = "10.244.31.0/24";
    let mut lab = Lab::new(Some(pod_cidr));
    require_tools();
    let mut extras = Extras::default();
    let shaped = lab.pod();
    let control = lab.pod();
    let ext = external(&lab, &mut extras, pod_cidr);

    let bin_dir = lab.dir.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(plugin_support::PLUGIN, bin_dir.join("podnet")).unwrap();
    let list = NetworkConfigList::parse(
        json!({
            // Debian's reference plugins (1.1.1) speak up to CNI 1.0.0.
            "cniVersion": "1.0.0",
            "name": "podnet",
            "plugins": [
                {"type": "podnet", "store": lab.db.display().to_string(), "node": NODE_NAME},
                {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
                {"type": "bandwidth", "capabilities": {"bandwidth": true}},
            ]
        })
        .to_string()
        .as_bytes(),
    )
    .expect("conflist");
    let runner = ChainRunner::new(
        vec![bin_dir.clone(), PathBuf::from(REFERENCE_DIR)],
        lab.dir.path().join("cache"),
    )
    .with_exec_prefix(vec![
        "ip".into(),
        "netns".into(),
        "exec".into(),
        lab.node_ns.clone(),
    ]);
    let mapping = |host_port: u16| {
        json!([{"hostPort": host_port, "containerPort": 8080, "protocol": "tcp"},
               {"hostPort": host_port + 1, "containerPort": 8081, "protocol": "tcp"}])
    };
    let shaped_att = Attachment::new("shaped", PathBuf::from(&shaped), "eth0")
        .with_capability("portMappings", mapping(18080))
        .with_capability(
            "bandwidth",
            json!({"ingressRate": RATE, "ingressBurst": RATE / 8,
                   "egressRate": RATE, "egressBurst": RATE / 8}),
        );
    let control_att = Attachment::new("control", PathBuf::from(&control), "eth0")
        .with_capability("portMappings", mapping(18090));

    let result = runner
        .add_network_list(&list, &shaped_att)
        .expect("ADD of podnet + portmap + bandwidth");
    runner
        .add_network_list(&list, &control_att)
        .expect("ADD of the control pod");

    // The chain's result is podnet's: its interfaces (bridge, host veth, eth0 in the
    // pod) and its address, passed through portmap and bandwidth as prevResult.
    let shaped_ip = result.ips[0].address.addr().to_string();
    assert!(
        result.ips[0].address.to_string().starts_with("10.244.31."),
        "{result:?}"
    );
    let node_links = lab.node_links();
    let host_ifaces: Vec<&str> = result
        .interfaces
        .iter()
        .filter(|i| i.sandbox.is_none())
        .map(|i| i.name.as_str())
        .collect();
    assert!(host_ifaces.len() >= 2, "{result:?}");
    for name in &host_ifaces {
        assert!(
            node_links.iter().any(|l| l == name),
            "{name} not in {node_links:?}"
        );
    }
    let eth0 = result
        .interfaces
        .iter()
        .position(|i| i.name == "eth0" && i.sandbox.as_deref() == Some(shaped.as_str()))
        .unwrap_or_else(|| panic!("no eth0 in the pod in {result:?}"));
    assert_eq!(result.ips[0].interface, Some(eth0 as u32), "{result:?}");
    let cached = runner
        .cache()
        .load("podnet", "shaped", "eth0")
        .unwrap()
        .expect("cached result");
    assert_eq!(
        cached.result["ips"][0]["address"],
        result.ips[0].address.to_string()
    );

    // (a) the mapped port: external client -> node-ip:hostPort -> pod:8080.
    spawn_in(
        &mut extras,
        Lab::ns_of(&shaped),
        &[
            "busybox",
            "nc",
            "-ll",
            "-p",
            "8081",
            "-e",
            "echo",
            "hi-from-shaped",
        ],
    );
    spawn_in(
        &mut extras,
        Lab::ns_of(&control),
        &[
            "busybox",
            "nc",
            "-ll",
            "-p",
            "8081",
            "-e",
            "echo",
            "hi-from-control",
        ],
    );
    assert_eq!(
        fetch(&ext, NODE_IP, 18081, Duration::from_secs(10)),
        "hi-from-shaped"
    );
    assert_eq!(
        fetch(&ext, NODE_IP, 18091, Duration::from_secs(10)),
        "hi-from-control"
    );

    // (b) the rate limit, both directions, through the mapped port; the control pod
    // is the unlimited baseline.
    for pod in [&shaped, &control] {
        spawn_in(
            &mut extras,
            Lab::ns_of(pod),
            &["iperf3", "-s", "-p", "8080"],
        );
    }
    let limit = RATE as f64;
    let into_shaped = iperf(&ext, NODE_IP, 18080, false);
    let from_shaped = iperf(&ext, NODE_IP, 18080, true);
    let into_control = iperf(&ext, NODE_IP, 18090, false);
    let rates = format!(
        "rates (Mbit/s): into shaped {:.1}, from shaped {:.1}, into control {:.1}; limit {:.1}",
        into_shaped / 1e6,
        from_shaped / 1e6,
        into_control / 1e6,
        limit / 1e6
    );
    assert!(into_shaped < 1.5 * limit, "ingress not shaped: {rates}");
    assert!(from_shaped < 1.5 * limit, "egress not shaped: {rates}");
    assert!(
        into_shaped > 0.3 * limit && from_shaped > 0.3 * limit,
        "shaped pod barely moved data: {rates}"
    );
    assert!(
        into_control > 3.0 * limit,
        "the control pod should be much faster than the limit: {rates}"
    );
    // Also straight to the pod IP (no DNAT): still shaped.
    let direct = iperf(&ext, &shaped_ip, 8080, false);
    assert!(
        direct < 1.5 * limit,
        "pod IP path not shaped: {direct} bit/s"
    );

    let rules = node_text(&lab, &["iptables-save", "-t", "nat"]);
    assert!(
        rules.contains("18080") && rules.contains(&shaped_ip),
        "{rules}"
    );
    let qdiscs = node_text(&lab, &["tc", "qdisc", "show"]);
    assert!(
        qdiscs.contains("tbf"),
        "no tbf qdisc in the node namespace: {qdiscs}"
    );

    // (c) DEL removes podnet's veth, portmap's rules and bandwidth's qdiscs.
    runner
        .del_network_list(&list, &shaped_att)
        .expect("DEL of the chain");
    let rules = node_text(&lab, &["iptables-save", "-t", "nat"]);
    assert!(
        !rules.contains("18080") && !rules.contains(&shaped_ip),
        "portmap rules left after DEL: {rules}"
    );
    assert!(rules.contains("18090"), "control pod rules gone: {rules}");
    let qdiscs = node_text(&lab, &["tc", "qdisc", "show"]);
    assert!(!qdiscs.contains("tbf"), "tbf left after DEL: {qdiscs}");
    assert!(
        !lab.node_links().iter().any(|l| l.starts_with("bwp")),
        "bandwidth's ifb left after DEL: {:?}",
        lab.node_links()
    );
    assert_eq!(
        fetch(&ext, NODE_IP, 18081, Duration::ZERO),
        "",
        "the mapped port still answers after DEL"
    );
    runner
        .del_network_list(&list, &control_att)
        .expect("DEL of the control pod");
    let rules = node_text(&lab, &["iptables-save", "-t", "nat"]);
    assert!(!rules.contains("18090"), "{rules}");
    assert!(lab.ipam_keys().is_empty(), "{:?}", lab.ipam_keys());
}
