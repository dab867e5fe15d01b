//! Cross-node routing in the lab, end to end, in both overlay modes (one lab per
//! mode, uniquely named, run in parallel): pod-to-pod across nodes over TCP and UDP
//! with the server seeing the client's own pod IP, node-to-pod, the kernel state each
//! mode implies (VXLAN device and MTU, or routes via node IPs), the agent's metrics
//! endpoint (curl inside a node namespace), a node joining and leaving (a namespace on
//! the lab's switch with its own agent) with every other node converging within 1 s,
//! egress to the lab's internet host masqueraded to the node IP, a spoofed source
//! dropped, and a TCP stream between pods on two nodes that keeps flowing while one agent is
//! killed with SIGKILL and restarted (and the restarted agent changes nothing in the
//! kernel). `lab down` leaves no trace. Needs root, ip, curl, nsenter and iperf3.
#![allow(clippy::print_stdout)] // convergence times are printed; asserted against the 1 s bound

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{metric, metric_value, wait_until, Lab};

fn require_root_and_tools() {
    common::require_root_and_tools(&[
        ("ip", "iproute2"),
        ("curl", "curl"),
        ("nsenter", "util-linux"),
        ("iperf3", "iperf3"),
    ]);
}

const MANIFEST: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: netserver-1, namespace: default}
spec:
  nodeSelector: {kubernetes.io/hostname: node-2}
  containers:
  - name: webserver
    image: registry.k8s.io/e2e-test-images/agnhost:2.47
    args: [netexec, --http-port=8083, --udp-port=8081]
    ports: [{containerPort: 8083}, {containerPort: 8081, protocol: UDP}]
    readinessProbe: {httpGet: {path: /healthz, port: 8083}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: netserver-2, namespace: default}
spec:
  nodeSelector: {kubernetes.io/hostname: node-3}
  containers:
  - name: webserver
    image: registry.k8s.io/e2e-test-images/agnhost:2.47
    args: [netexec, --http-port=8083, --udp-port=8081]
    ports: [{containerPort: 8083}, {containerPort: 8081, protocol: UDP}]
    readinessProbe: {httpGet: {path: /healthz, port: 8083}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default}
spec:
  nodeSelector: {kubernetes.io/hostname: node-1}
  containers:
  - name: webserver
    image: registry.k8s.io/e2e-test-images/agnhost:2.47
    args: [netexec, --http-port=9080, --udp-port=9081]
    ports: [{containerPort: 9080}, {containerPort: 9081, protocol: UDP}]
    readinessProbe: {httpGet: {path: /healthz, port: 9080}, periodSeconds: 1}
"#;

fn pod_ip(lab: &Lab, name: &str) -> String {
    lab.pod_ip(None, name)
}

fn node_cidr(lab: &Lab, name: &str) -> Option<String> {
    let o = lab.podnet(&["get", "node", name, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
    v["spec"]["podCIDR"].as_str().map(str::to_string)
}

/// podnet's routes (proto 0x50) in a host, as `ip route` prints them.
fn routes(lab: &Lab, host: &str) -> String {
    let o = Command::new("ip")
        .args(["-n", &lab.netns(host), "route", "show", "proto", "0x50"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Everything routing-related in a node's kernel: routes, neighbours, FDB, links;
/// sorted (the kernel dumps hash tables in no stable order).
fn kernel_state(lab: &Lab, host: &str) -> String {
    let out = lab.host(
        host,
        "ip route show proto 0x50; ip neigh show nud permanent; \
         bridge fdb show dev podnet.1 2>/dev/null; ip -o link show podnet.1 2>/dev/null | cut -d' ' -f1-5",
    );
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    lines.join("\n")
}

/// `nft list ruleset` as one text per table, sorted: a restarted agent replaces its
/// tables atomically, which can change the order the kernel lists them in, not what
/// they hold.
fn ruleset(lab: &Lab, host: &str) -> Vec<String> {
    let text = lab.host(host, "nft list ruleset");
    let mut tables: Vec<String> = text
        .split("\ntable ")
        .map(|t| t.trim_start_matches("table ").trim().to_string())
        .collect();
    tables.sort();
    tables
}

/// What a lab could leave behind: its namespaces and processes.
fn trace(prefix: &str, root: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let t = common::trace(prefix, root);
    (t.namespaces, t.processes)
}

fn routing_lab(tag: &str, mode: &str) {
    require_root_and_tools();
    let mut lab = Lab::new(tag);
    let prefix = format!("pn-{}-", lab.name);
    let before = trace(&prefix, lab.root.path());
    let manifest = lab.root.path().join("routing.yaml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let up = lab.up(&["--overlay", mode], &[manifest.to_str().unwrap()]);
    assert!(up.contains(" 0 failed"), "{up}");
    assert!(up.contains("pod-to-pod UDP, across nodes"), "{up}");
    assert!(up.contains("node-to-pod"), "{up}");
    assert!(up.contains("pod-to-internet (masqueraded)"), "{up}");

    // TCP across nodes: the server sees the client's own pod IP.
    let client_ip = pod_ip(&lab, "client");
    let server_ip = pod_ip(&lab, "netserver-1");
    let seen = lab.ok(&[
        "exec",
        "client",
        "--",
        "curl",
        "-s",
        "-m",
        "3",
        &format!("http://{server_ip}:8083/clientip"),
    ]);
    assert_eq!(seen.rsplit_once(':').unwrap().0, client_ip, "TCP: {seen}");
    // UDP across nodes (the client's netexec dials the server's UDP clientip).
    let dial = lab.ok(&[
        "exec", "client", "--", "curl", "-s", "-m", "5",
        &format!("http://127.0.0.1:9080/dial?request=clientip&protocol=udp&host={server_ip}&port=8081&tries=1"),
    ]);
    assert!(dial.contains(&format!("\"{client_ip}:")), "UDP: {dial}");
    // Egress: the internet host sees node-1's IP (masqueraded), where pod-to-pod
    // above saw the pod's own IP.
    let seen = lab.ok(&[
        "exec",
        "client",
        "--",
        "curl",
        "-s",
        "-m",
        "3",
        "http://203.0.113.10:8080/clientip",
    ]);
    assert_eq!(
        seen.rsplit_once(':').unwrap().0,
        "172.18.0.2",
        "egress: {seen}"
    );
    // Anti-spoofing: the client claims netserver-2's address as a second address;
    // what it sends from it is dropped at node-1's bridge, its own address still works.
    let other = pod_ip(&lab, "netserver-2");
    lab.ok(&[
        "exec",
        "client",
        "--",
        "ip",
        "addr",
        "add",
        &format!("{other}/32"),
        "dev",
        "eth0",
    ]);
    let spoofed = lab.podnet(&[
        "exec",
        "client",
        "--",
        "curl",
        "-s",
        "-m",
        "2",
        "--interface",
        &other,
        &format!("http://{server_ip}:8083/clientip"),
    ]);
    assert!(
        !spoofed.status.success(),
        "a spoofed source got through: {}",
        String::from_utf8_lossy(&spoofed.stdout)
    );
    lab.ok(&[
        "exec",
        "client",
        "--",
        "ip",
        "addr",
        "del",
        &format!("{other}/32"),
        "dev",
        "eth0",
    ]);
    let seen = lab.ok(&[
        "exec",
        "client",
        "--",
        "curl",
        "-s",
        "-m",
        "3",
        &format!("http://{server_ip}:8083/clientip"),
    ]);
    assert_eq!(
        seen.rsplit_once(':').unwrap().0,
        client_ip,
        "after the spoof: {seen}"
    );
    let rules = lab.host("node-1", "nft list table bridge podnet");
    assert!(rules.contains(&format!(". {client_ip}")), "{rules}");
    // Node-to-pod, from a third node.
    let hn = lab.host(
        "node-3",
        &format!("curl -s -m 3 http://{server_ip}:8083/hostname"),
    );
    assert_eq!(hn.trim(), "netserver-1");

    // The kernel state of the mode, and the pods' MTU.
    let n1 = kernel_state(&lab, "node-1");
    let mtu = lab.ok(&["exec", "client", "--", "cat", "/sys/class/net/eth0/mtu"]);
    if mode == "vxlan" {
        assert!(
            n1.contains("via 10.244.1.0 dev podnet.1 onlink") || n1.contains("dev podnet.1 onlink"),
            "{n1}"
        );
        assert!(n1.contains("dst 172.18.0.3 self permanent"), "{n1}");
        let link = lab.host("node-1", "ip -d link show podnet.1");
        assert!(
            link.contains("mtu 1450")
                && link.contains("vxlan id 1")
                && link.contains("dstport 8472")
                && link.contains("nolearning"),
            "{link}"
        );
        assert_eq!(mtu.trim(), "1450");
        // The VXLAN packets between the nodes skip conntrack (`ip podnet-overlay`),
        // while the pods' flows inside them are still tracked: after the cross-node
        // requests above, node-1 holds TCP entries of the client but no UDP 8472 one.
        let overlay = lab.host("node-1", "nft list table ip podnet-overlay");
        assert!(
            overlay.contains("172.18.0.3") && overlay.contains("notrack"),
            "{overlay}"
        );
        let tracked = lab.host("node-1", "conntrack -L -p tcp 2>/dev/null");
        assert!(tracked.contains(&format!("src={client_ip}")), "{tracked}");
        let vxlan_flows = lab.host(
            "node-1",
            "conntrack -L -p udp --dport 8472 2>/dev/null && conntrack -L -p udp --sport 8472 2>/dev/null",
        );
        assert!(
            !vxlan_flows.contains("8472"),
            "VXLAN packets were tracked: {vxlan_flows}"
        );
    } else {
        let tables = lab.host("node-1", "nft list tables");
        assert!(!tables.contains("podnet-overlay"), "{tables}");
        assert!(n1.contains("via 172.18.0.3 dev eth0"), "{n1}");
        assert!(!n1.contains("podnet.1"), "{n1}");
        assert_eq!(mtu.trim(), "1500");
    }
    // Metrics, from inside the node's namespace.
    let m = lab.agent_metrics("node-1");
    assert_eq!(
        metric(&m, "podnet_agent_managed{kind=\"route\"} "),
        2,
        "{m}"
    );
    assert_eq!(metric(&m, "podnet_agent_reconcile_errors_total "), 0, "{m}");

    // A node joins: a namespace on the lab's switch running its own agent.
    let ns9 = lab.netns("node-9");
    let sw = lab.netns("switch");
    for cmd in [
        format!("ip netns add {ns9}"),
        format!("ip -n {sw} link add port9 type veth peer name eth0 netns {ns9}"),
        format!("ip -n {sw} link set port9 master br0 up"),
        format!("ip -n {ns9} addr add 172.18.0.50/24 dev eth0"),
        format!("ip -n {ns9} link set eth0 up"),
        format!("ip -n {ns9} link set lo up"),
        format!("ip netns exec {ns9} sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0"),
    ] {
        let o = Command::new("sh").args(["-c", &cmd]).output().unwrap();
        assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let store = lab.state().join("state.db").display().to_string();
    let agent9 = lab.spawn_in_host(
        "node-9",
        "agent-node-9",
        &[
            env!("CARGO_BIN_EXE_podnet").to_string(),
            "agent".into(),
            "--store".into(),
            store,
            "--node".into(),
            "node-9".into(),
            "--node-ip".into(),
            "172.18.0.50".into(),
        ],
    );
    let mut cidr = None;
    wait_until(
        "node-9 registered with a pod CIDR",
        Duration::from_secs(20),
        || {
            cidr = node_cidr(&lab, "node-9");
            cidr.is_some()
        },
    );
    let cidr = cidr.unwrap();
    let took = wait_until(
        "every node routes node-9's pod CIDR",
        Duration::from_secs(1),
        || {
            ["node-1", "node-2", "node-3"]
                .iter()
                .all(|n| routes(&lab, n).contains(&format!("{cidr} ")))
        },
    );
    println!("{mode}: join converged on 3 nodes {took:?} after node-9 got {cidr}");
    // Real packets to the new node: its VTEP address (vxlan) or an address of its
    // pod CIDR on its loopback (host-gw; it has no pods).
    let net = cidr.trim_end_matches("/24");
    let target = if mode == "vxlan" {
        net.to_string()
    } else {
        let a = format!("{}.1", net.trim_end_matches(".0"));
        let o = Command::new("ip")
            .args(["-n", &ns9, "addr", "add", &format!("{a}/32"), "dev", "lo"])
            .output()
            .unwrap();
        assert!(o.status.success());
        a
    };
    let ping = lab.ok(&["exec", "client", "--", "ping", "-c1", "-W2", &target]);
    assert!(ping.contains("1 received"), "{ping}");

    // It leaves: its agent stops, its Node is deleted.
    nix_kill(agent9);
    lab.ok(&["delete", "node", "node-9"]);
    let took = wait_until(
        "node-9's routes removed everywhere",
        Duration::from_secs(1),
        || {
            ["node-1", "node-2", "node-3"]
                .iter()
                .all(|n| !routes(&lab, n).contains(&format!("{cidr} ")))
        },
    );
    println!("{mode}: leave converged on 3 nodes in {took:?}");
    if mode == "vxlan" {
        let n1 = kernel_state(&lab, "node-1");
        assert!(!n1.contains("172.18.0.50"), "stale FDB entry: {n1}");
    }

    // A TCP stream from node-1's pod to node-2's pod while node-2's agent is killed
    // with SIGKILL and restarted.
    let server = lab
        .podnet_cmd(&[
            "exec",
            "netserver-1",
            "--",
            "timeout",
            "40",
            "iperf3",
            "-s",
            "-1",
            "-p",
            "5201",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    lab.children.push(server);
    std::thread::sleep(Duration::from_millis(500));
    let client = lab
        .podnet_cmd(&[
            "exec", "client", "--", "timeout", "40", "iperf3", "-c", &server_ip, "-p", "5201",
            "-t", "8", "-i", "0.5", "-b", "100M", "-J",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let before_state = kernel_state(&lab, "node-2");
    let before_rules = ruleset(&lab, "node-2");
    std::thread::sleep(Duration::from_secs(2));
    lab.restart_agent("node-2");
    let at_least =
        |m: &str, name: &str, least: u64| metric_value(m, name).is_some_and(|v| v >= least);
    wait_until(
        "the restarted agent reconciles",
        Duration::from_secs(10),
        || {
            let m = lab.agent_metrics("node-2");
            at_least(&m, "podnet_agent_reconciles_total ", 1)
                && at_least(&m, "podnet_agent_firewall_applies_total ", 2)
        },
    );
    let m = lab.agent_metrics("node-2");
    for kind in ["link", "address", "route", "neighbour", "fdb"] {
        assert_eq!(
            metric(
                &m,
                &format!("podnet_agent_kernel_changes_total{{kind=\"{kind}\"}} ")
            ),
            0,
            "the restarted agent changed {kind}s:\n{m}"
        );
    }
    assert_eq!(
        before_state,
        kernel_state(&lab, "node-2"),
        "kernel state changed across the restart"
    );
    assert!(
        metric(&m, "podnet_agent_firewall_applies_total ") >= 2,
        "the restarted agent has not applied its tables yet:\n{m}"
    );
    assert_eq!(
        before_rules,
        ruleset(&lab, "node-2"),
        "nftables changed across the restart"
    );
    let out = client.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "iperf3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(j.get("error").is_none(), "{j}");
    let intervals = j["intervals"].as_array().unwrap();
    assert!(intervals.len() >= 15, "{} intervals", intervals.len());
    for (i, iv) in intervals.iter().enumerate() {
        let bytes = iv["sum"]["bytes"].as_u64().unwrap();
        assert!(
            bytes > 0,
            "interval {i} of the stream carried no bytes: {iv}"
        );
    }
    let received = j["end"]["sum_received"]["bytes"].as_u64().unwrap();
    let sent = j["end"]["sum_sent"]["bytes"].as_u64().unwrap();
    assert!(
        received > 50_000_000 && received + 2_000_000 >= sent,
        "sent {sent}, received {received}"
    );
    println!(
        "{mode}: stream through the agent restart: {received} bytes, {} intervals all non-empty",
        intervals.len()
    );

    for c in &mut lab.children {
        let _ = c.wait();
    }
    lab.children.clear();
    lab.ok(&["lab", "down", "--name", &lab.name]);
    assert_eq!(
        before,
        trace(&prefix, lab.root.path()),
        "lab down left something behind"
    );
}

fn nix_kill(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

#[test]
fn host_gw_lab_routes_converges_and_survives_agent_restart() {
    routing_lab("rh", "host-gw");
}

#[test]
fn vxlan_lab_routes_converges_and_survives_agent_restart() {
    routing_lab("rv", "vxlan");
}
