//! More of the service proxy in the lab, end to end, with real clients from a pod (curl
//! with fixed source ports, and UDP and TCP sockets opened inside the pod's network
//! namespace): Maglev (the same client port always reaches the same backend, the one the
//! kernel's table and jhash name; removing a backend moves only the flows it served and
//! those whose table slot changed owner); UDP conntrack cleanup (a client that keeps
//! its source port moves to the remaining endpoint when its endpoint leaves the slice);
//! an agent killed with SIGKILL and restarted leaves established flows and their
//! conntrack entries alone; terminating endpoints (a serving-and-terminating pod gets
//! no traffic while a ready one exists, and all of it when none is left). One lab of
//! three nodes, no external or internet host. Needs root, ip, curl, nsenter, nft,
//! conntrack and sysctl.

#![allow(clippy::print_stdout)] // what moved and what stayed is printed, next to the assertions

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::{metric, metric_value, wait_until, Lab};
use podnet_linux::NetNs;

const LAB: &str = "apiVersion: podnet.io/v1alpha1
kind: Lab
spec:
  nodes: 3
  hosts: {external: false, internet: false}
  cluster: {overlay: {mode: host-gw}}
";

/// The seed and table size the proxy's Maglev chain uses for up to 25 backends
/// (`crates/proxy/src/ruleset.rs`, `maglev.rs`).
const MAGLEV_SEED: u32 = 0x5eed_cafe;
const MAGLEV_SLOTS: u64 = 251;

/// A netexec pod on `node` (HTTP on 8080 named `http`, UDP on 8081 named `udp`).
fn netexec(name: &str, node: &str, labels: &str, args: &str, grace: u32) -> String {
    format!(
        r#"---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: demo, labels: {{{labels}}}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: {grace}
  containers:
  - name: netexec
    image: registry.k8s.io/e2e-test-images/agnhost:2.47
    args: [netexec, --http-port=8080, --udp-port=8081{args}]
    ports: [{{name: http, containerPort: 8080}}, {{name: udp, containerPort: 8081, protocol: UDP}}]
    readinessProbe: {{httpGet: {{path: /healthz, port: http}}, periodSeconds: 1}}
"#
    )
}

const SERVICES: &str = r#"---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: demo}
spec:
  nodeName: node-1
  containers:
  - {name: client, image: registry.k8s.io/e2e-test-images/agnhost:2.47, args: [pause]}
---
apiVersion: v1
kind: Service
metadata: {name: web-maglev, namespace: demo, annotations: {podnet.io/load-balancing: maglev}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-random, namespace: demo}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: demo}
spec:
  selector: {app: dns}
  ports: [{name: dns, port: 53, targetPort: udp, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: term, namespace: demo}
spec:
  selector: {app: term}
  ports: [{name: http, port: 80, targetPort: http}]
"#;

fn objects() -> String {
    let mut m = String::from("apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n");
    m += SERVICES;
    for (i, node) in ["node-1", "node-2", "node-3"].iter().enumerate() {
        m += &netexec(&format!("web-{}", i + 1), node, "app: web", "", 1);
    }
    m += &netexec("dns-a", "node-2", "app: dns", "", 1);
    m += &netexec("dns-b", "node-3", "app: dns", "", 1);
    // Keeps serving for 40 s after SIGTERM; deleted with a 60 s grace period.
    for (name, node) in [("term-1", "node-2"), ("term-2", "node-3")] {
        m += &netexec(name, node, "app: term", ", --delay-shutdown=40", 60);
    }
    m
}

/// Applies `yaml` (written to a file in the lab's temp dir).
fn apply(lab: &Lab, file: &str, yaml: &str) {
    let path = lab.root.path().join(file);
    std::fs::write(&path, yaml).unwrap();
    lab.ok(&["apply", "-f", path.to_str().unwrap()]);
}

fn cluster_ip(lab: &Lab, svc: &str) -> Ipv4Addr {
    lab.json(&["get", "service", svc, "-n", "demo", "-o", "json"])["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Pod IP -> pod name, for every pod of the demo namespace.
fn pod_names(lab: &Lab) -> BTreeMap<String, String> {
    let list = lab.json(&["get", "pods", "-n", "demo", "-o", "json"]);
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            Some((
                p["status"]["podIP"].as_str()?.to_string(),
                p["metadata"]["name"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// The pod's network namespace, opened.
fn pod_netns(lab: &Lab, pod: &str) -> NetNs {
    let p = lab.json(&["get", "pod", pod, "-n", "demo", "-o", "json"]);
    let uid = p["metadata"]["uid"].as_str().unwrap();
    NetNs::open(&podnet_runtime::pod_netns_name(&lab.prefix(), uid)).unwrap()
}

/// The `backends` map of node `node`'s proxy table for TCP/UDP `frontend`: slot ->
/// endpoint IP, as the kernel holds it.
fn kernel_backends(
    lab: &Lab,
    node: &str,
    frontend: Ipv4Addr,
    proto: &str,
) -> BTreeMap<u64, String> {
    let out = lab.host(node, "nft -j list map ip podnet-proxy backends");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut slots = BTreeMap::new();
    for item in j["nftables"].as_array().unwrap() {
        for e in item["map"]["elem"].as_array().into_iter().flatten() {
            let key = e[0]["concat"].as_array().unwrap();
            if key[0] == frontend.to_string() && key[1] == proto {
                let ep = e[1]["concat"][0].as_str().unwrap().to_string();
                slots.insert(key[3].as_u64().unwrap(), ep);
            }
        }
    }
    slots
}

/// The endpoint IPs node `node` balances `frontend` over.
fn kernel_endpoints(lab: &Lab, node: &str, frontend: Ipv4Addr, proto: &str) -> BTreeSet<String> {
    kernel_backends(lab, node, frontend, proto)
        .into_values()
        .collect()
}

/// `curl --local-port P http://IP/hostname` from the client pod for each port, in one
/// shell: port -> the backend's hostname (`FAIL` and curl's exit code when it failed).
/// The client pod keeps no TIME_WAIT sockets (see the test), so a port can be used again
/// at once; each use is a new connection, balanced afresh.
fn curl_from_ports(lab: &Lab, ip: Ipv4Addr, ports: &[u16]) -> BTreeMap<u16, String> {
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    let script = format!(
        "for p in {}; do printf '%s ' $p; curl -s -m 2 --local-port $p http://{ip}/hostname || printf FAIL$?; echo; done",
        list.join(" ")
    );
    let out = lab.ok(&["exec", "client", "-n", "demo", "--", "sh", "-c", &script]);
    out.lines()
        .filter_map(|l| {
            let (p, h) = l.split_once(' ')?;
            Some((p.parse().ok()?, h.trim().to_string()))
        })
        .collect()
}

/// `n` plain requests (`curl /hostname`) from the client pod: the hostnames answering,
/// `FAIL` and curl's exit code for a failed request.
fn curl_n(lab: &Lab, ip: Ipv4Addr, n: usize) -> Vec<String> {
    let script = format!(
        "for i in $(seq {n}); do curl -s -m 2 http://{ip}/hostname || printf FAIL$?; echo; done"
    );
    lab.ok(&["exec", "client", "-n", "demo", "--", "sh", "-c", &script])
        .lines()
        .map(str::to_string)
        .collect()
}

/// The Linux kernel's `jhash` (include/linux/jhash.h) of a key of at most 12 bytes.
fn jhash(key: &[u8], seed: u32) -> u32 {
    assert!(!key.is_empty() && key.len() <= 12);
    let mut k = [0u8; 12];
    k[..key.len()].copy_from_slice(key);
    let word = |i: usize| u32::from_le_bytes([k[i], k[i + 1], k[i + 2], k[i + 3]]);
    let init = 0xdead_beef_u32
        .wrapping_add(key.len() as u32)
        .wrapping_add(seed);
    let mut a = init.wrapping_add(word(0));
    let mut b = init.wrapping_add(word(4));
    let mut c = init.wrapping_add(word(8));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(14));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(11));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(25));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(16));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(4));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(14));
    c ^= b;
    c.wrapping_sub(b.rotate_left(24))
}

/// The Maglev slot of a flow: `jhash ip saddr . th sport mod 251` as nft evaluates it
/// (the address, then the port in a zero-padded 4-byte register; `reciprocal_scale`).
fn maglev_slot(saddr: Ipv4Addr, sport: u16) -> u64 {
    let mut key = saddr.octets().to_vec();
    key.extend(sport.to_be_bytes());
    key.extend([0, 0]);
    (u64::from(jhash(&key, MAGLEV_SEED)) * MAGLEV_SLOTS) >> 32
}

/// Behaviour 10: Maglev.
fn maglev(lab: &Lab) {
    let ips = pod_names(lab);
    let name_of = |ip: &String| ips[ip].clone();
    let client: Ipv4Addr = lab.pod_ip(Some("demo"), "client").parse().unwrap();
    let maglev = cluster_ip(lab, "web-maglev");
    let random = cluster_ip(lab, "web-random");
    let before: Vec<String> = {
        let t = kernel_backends(lab, "node-1", maglev, "tcp");
        assert_eq!(t.len() as u64, MAGLEV_SLOTS, "node-1's Maglev table: {t:?}");
        t.values().map(name_of).collect()
    };
    let owners: BTreeSet<&String> = before.iter().collect();
    assert_eq!(owners.len(), 3, "every backend owns slots: {owners:?}");

    // Below the ephemeral range, so no earlier connection of the pod holds one.
    let ports: Vec<u16> = (21000..21030).collect();
    let rounds = [
        curl_from_ports(lab, maglev, &ports),
        curl_from_ports(lab, maglev, &ports),
    ];
    for p in &ports {
        let want = &before[maglev_slot(client, *p) as usize];
        assert_eq!(&rounds[0][p], want, "port {p}: the backend of its slot");
        assert_eq!(&rounds[1][p], want, "port {p}: the same backend again");
    }
    // The control: the same ports against random selection do not stick (so each
    // request above was balanced afresh, not kept by an old conntrack entry).
    let r = [
        curl_from_ports(lab, random, &ports),
        curl_from_ports(lab, random, &ports),
    ];
    assert!(
        ports.iter().any(|p| r[0][p] != r[1][p]),
        "random selection gave every port the same backend twice: {r:?}"
    );

    // Remove web-3 from the service (its pod stays and would still answer).
    apply(
        lab,
        "web-3.yaml",
        &netexec("web-3", "node-3", "app: gone", "", 1),
    );
    let web3 = lab.pod_ip(Some("demo"), "web-3");
    wait_until(
        "node-1 drops web-3 from Maglev",
        Duration::from_secs(10),
        || !kernel_endpoints(lab, "node-1", maglev, "tcp").contains(&web3),
    );
    let after: Vec<String> = kernel_backends(lab, "node-1", maglev, "tcp")
        .values()
        .map(name_of)
        .collect();
    assert_eq!(after.len() as u64, MAGLEV_SLOTS);
    let survivors_moved = (0..before.len())
        .filter(|s| before[*s] != "web-3" && before[*s] != after[*s])
        .count();
    let now = curl_from_ports(lab, maglev, &ports);
    // Every flow is where its slot now points; so a flow on a surviving backend moves
    // only when Maglev's refill gave its slot to another survivor (a few slots of 251).
    let (mut stayed, mut off_web3, mut slot_moved) = (0, 0, 0);
    for p in &ports {
        let slot = maglev_slot(client, *p) as usize;
        assert_eq!(now[p], after[slot], "port {p}: the backend of its slot");
        if before[slot] == "web-3" {
            off_web3 += 1;
        } else if before[slot] == after[slot] {
            assert_eq!(now[p], rounds[0][p], "port {p} on a survivor stays");
            stayed += 1;
        } else {
            slot_moved += 1;
        }
    }
    assert!(off_web3 > 0 && stayed > 0, "{now:?}");
    println!(
        "maglev: of {} flows {stayed} stayed, {off_web3} moved off the removed backend, {slot_moved} moved with their slot; {survivors_moved} of {MAGLEV_SLOTS} slots of surviving backends changed owner",
        ports.len()
    );
}

/// A UDP socket in the client pod's namespace with a fixed source port, as a resolver.
struct UdpClient {
    sock: UdpSocket,
    to: SocketAddr,
}

impl UdpClient {
    fn new(ns: &NetNs, port: u16, to: SocketAddr) -> UdpClient {
        let sock = ns
            .run(|| UdpSocket::bind(("0.0.0.0", port)))
            .unwrap()
            .unwrap();
        UdpClient { sock, to }
    }

    /// Sends `hostname`; the first answer within 1 s, if any: its source and text.
    fn ask_raw(&self) -> Option<(SocketAddr, String)> {
        // drop late answers to earlier datagrams
        self.sock.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        while self.sock.recv_from(&mut buf).is_ok() {}
        self.sock.set_nonblocking(false).unwrap();
        self.sock
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        self.sock.send_to(b"hostname", self.to).unwrap();
        let (n, from) = self.sock.recv_from(&mut buf).ok()?;
        Some((from, String::from_utf8_lossy(&buf[..n]).into_owned()))
    }

    /// Who answered within 1 s, if anyone; the answer must come from the ClusterIP.
    fn ask(&self) -> Option<String> {
        let (from, who) = self.ask_raw()?;
        assert_eq!(from, self.to, "{who}'s answer comes from the ClusterIP");
        Some(who)
    }
}

/// Behaviour 9: a UDP client keeping its source port moves to the remaining endpoint
/// when its endpoint leaves. Returns the client (its flow is used across the restart).
fn udp_flow_moves(lab: &Lab) -> UdpClient {
    let dns = cluster_ip(lab, "dns");
    let udp = UdpClient::new(&pod_netns(lab, "client"), 25353, (dns, 53).into());
    let first = udp.ask().expect("the UDP ClusterIP answers");
    for _ in 0..5 {
        assert_eq!(
            udp.ask().as_deref(),
            Some(first.as_str()),
            "one flow, one endpoint"
        );
    }
    let (gone, other) = if first == "dns-a" {
        ("dns-a", "dns-b")
    } else {
        ("dns-b", "dns-a")
    };
    let node = if gone == "dns-a" { "node-2" } else { "node-3" };
    let deleted_before = metric(
        &lab.agent_metrics("node-1"),
        "podnet_proxy_conntrack_deleted_total ",
    );
    // Its pod keeps running (and answering): only the slice drops it.
    apply(
        lab,
        "dns-gone.yaml",
        &netexec(gone, node, "app: gone", "", 1),
    );
    // One datagram every 20 ms (at most 500, at most 10 s) until `other` answers; the
    // answers of `gone` before that come while the proxy has not synced yet.
    let t0 = Instant::now();
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    let mut moved = false;
    for _ in 0..500 {
        // An answer already on its way when the flow was deleted finds no entry to
        // reverse its NAT and arrives from the endpoint's own address; a resolver
        // ignores it (its socket is connected to the ClusterIP), and so does this loop.
        let who = match udp.ask_raw() {
            Some((from, who)) if from == udp.to => who,
            Some((from, who)) => format!("{who} (from {from})"),
            None => "(none)".into(),
        };
        moved = who == other;
        *answers.entry(who).or_default() += 1;
        if moved || t0.elapsed() > Duration::from_secs(10) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        moved,
        "the same source port never reached {other} after {gone} left: {answers:?}"
    );
    for _ in 0..5 {
        assert_eq!(
            udp.ask().as_deref(),
            Some(other),
            "the flow stays on {other}"
        );
    }
    let deleted = metric(
        &lab.agent_metrics("node-1"),
        "podnet_proxy_conntrack_deleted_total ",
    );
    assert!(deleted > deleted_before, "node-1 deleted the stale flow");
    println!(
        "udp: {gone} left; the same source port reached {other} after {:?}, answers {answers:?}",
        t0.elapsed()
    );
    udp
}

/// One HTTP/1.1 keep-alive request on `s`: the body of the answer.
fn get_hostname(s: &mut TcpStream) -> String {
    s.write_all(b"GET /hostname HTTP/1.1\r\nHost: web\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = s.read(&mut buf).expect("the connection answers");
        assert!(n > 0, "the connection was closed");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .expect("a content-length");
            if body.len() >= len {
                return body[..len].to_string();
            }
        }
    }
}

/// The conntrack entry (`-o id` line) of the client's flow from `sport` on `node`.
fn conntrack(lab: &Lab, node: &str, proto: &str, client: &str, sport: u16) -> String {
    let out = lab.host(
        node,
        &format!("conntrack -L -p {proto} -s {client} --sport {sport} -o id 2>/dev/null"),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one {proto} flow from port {sport} on {node}: {out}"
    );
    lines[0].to_string()
}

/// The `id=` of a conntrack line.
fn ct_id(line: &str) -> &str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("id="))
        .unwrap_or_else(|| panic!("no id in {line}"))
}

/// Behaviour 9b: SIGKILL and restart of node-1's agent (the client's node, where the
/// flows are DNATed) leaves an established TCP connection and a UDP flow working, with
/// their conntrack entries (same ids).
fn restart_keeps_flows(lab: &Lab, udp: &UdpClient) {
    let client = lab.pod_ip(Some("demo"), "client");
    let random = cluster_ip(lab, "web-random");
    let ns = pod_netns(lab, "client");
    let mut tcp = ns
        .run(|| TcpStream::connect_timeout(&(random, 80).into(), Duration::from_secs(3)))
        .unwrap()
        .expect("a connection to the ClusterIP");
    tcp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let sport = tcp.local_addr().unwrap().port();
    let backend = get_hostname(&mut tcp);
    let udp_backend = udp.ask().expect("the UDP flow answers");
    let udp_port = udp.sock.local_addr().unwrap().port();
    let tcp_ct = conntrack(lab, "node-1", "tcp", &client, sport);
    let udp_ct = conntrack(lab, "node-1", "udp", &client, udp_port);
    assert!(tcp_ct.contains("ESTABLISHED"), "{tcp_ct}");

    lab.restart_agent("node-1");
    // The new proxy has replaced its table (a full sync) before we look again.
    wait_until("the restarted proxy syncs", Duration::from_secs(15), || {
        metric_value(
            &lab.agent_metrics("node-1"),
            "podnet_proxy_full_syncs_total ",
        )
        .is_some_and(|v| v >= 1)
    });
    let m = lab.agent_metrics("node-1");
    assert_eq!(metric(&m, "podnet_proxy_sync_errors_total "), 0, "{m}");
    for (proto, port, before) in [("tcp", sport, &tcp_ct), ("udp", udp_port, &udp_ct)] {
        let now = conntrack(lab, "node-1", proto, &client, port);
        assert_eq!(
            ct_id(&now),
            ct_id(before),
            "the {proto} flow's entry survived: {now}"
        );
    }
    assert_eq!(
        get_hostname(&mut tcp),
        backend,
        "the TCP connection still works"
    );
    assert_eq!(
        udp.ask(),
        Some(udp_backend),
        "the UDP flow still reaches its endpoint"
    );
}

/// The conditions of the endpoint with address `ip` in the demo namespace's slices.
fn conditions(lab: &Lab, ip: &str) -> Option<serde_json::Value> {
    let slices = lab.json(&["get", "endpointslices", "-n", "demo", "-o", "json"]);
    slices["items"]
        .as_array()?
        .iter()
        .flat_map(|s| s["endpoints"].as_array().into_iter().flatten())
        .find(|e| e["addresses"][0] == ip)
        .map(|e| e["conditions"].clone())
}

/// Behaviour 8: terminating endpoints.
/// Waits until node-1 no longer balances `ip`'s TCP port to `gone`, then makes `n`
/// requests: every one must be answered, by `want`.
fn left_out_then_all_answered_by(
    lab: &Lab,
    ip: Ipv4Addr,
    gone: &str,
    n: usize,
    want: &str,
    why: &str,
) {
    wait_until(
        &format!("node-1 stops balancing to {gone}"),
        Duration::from_secs(10),
        || !kernel_endpoints(lab, "node-1", ip, "tcp").contains(gone),
    );
    let answers = curl_n(lab, ip, n);
    assert!(
        answers.len() == n && answers.iter().all(|a| a == want),
        "{why}: {answers:?}"
    );
}

fn terminating(lab: &Lab) {
    let term = cluster_ip(lab, "term");
    let ips = [
        lab.pod_ip(Some("demo"), "term-1"),
        lab.pod_ip(Some("demo"), "term-2"),
    ];
    // both serve while both are ready
    let seen: BTreeSet<String> = curl_n(lab, term, 30).into_iter().collect();
    assert_eq!(
        seen,
        BTreeSet::from(["term-1".to_string(), "term-2".to_string()]),
        "both endpoints serve"
    );

    // term-1 terminating (SIGTERM; netexec serves 40 s more): while term-2 is ready,
    // term-1 gets nothing
    lab.ok(&["delete", "pod", "term-1", "-n", "demo", "--wait=false"]);
    let terminating = serde_json::json!({"ready": false, "serving": true, "terminating": true});
    wait_until(
        "term-1 serving and terminating",
        Duration::from_secs(10),
        || conditions(lab, &ips[0]) == Some(terminating.clone()),
    );
    left_out_then_all_answered_by(lab, term, &ips[0], 20, "term-2", "only the ready endpoint");

    // term-2 gone at once: only the serving-and-terminating term-1 is left, and it is
    // used (not rejected)
    lab.ok(&["delete", "pod", "term-2", "-n", "demo", "--force"]);
    left_out_then_all_answered_by(
        lab,
        term,
        &ips[1],
        10,
        "term-1",
        "the terminating endpoint serves when no ready one is left",
    );
}

#[test]
fn maglev_udp_conntrack_agent_restart_and_terminating_endpoints() {
    common::require_root_and_tools(&[
        ("ip", "iproute2"),
        ("curl", "curl"),
        ("nsenter", "util-linux"),
        ("nft", "nftables"),
        ("conntrack", "conntrack"),
        ("sysctl", "procps"),
    ]);
    let lab = Lab::new("svm");
    let lab_file = lab.root.path().join("lab.yaml");
    std::fs::write(&lab_file, LAB).unwrap();
    let manifest = lab.root.path().join("services.yaml");
    std::fs::write(&manifest, objects()).unwrap();
    let up = lab.ok(&[
        "lab",
        "up",
        "-f",
        lab_file.to_str().unwrap(),
        "--name",
        &lab.name,
        manifest.to_str().unwrap(),
    ]);
    assert!(up.contains(" 0 failed"), "{up}");
    // curl closes first, so its socket would wait in TIME_WAIT for 60 s and keep the
    // next `--local-port` of the same port from binding (curl exits 45). In the client
    // pod's own namespace, no TIME_WAIT sockets are kept (the kernel closes them at once).
    lab.ok(&[
        "exec",
        "client",
        "-n",
        "demo",
        "--",
        "sysctl",
        "-qw",
        "net.ipv4.tcp_max_tw_buckets=0",
    ]);

    maglev(&lab);
    let udp = udp_flow_moves(&lab);
    restart_keeps_flows(&lab, &udp);
    terminating(&lab);
}
