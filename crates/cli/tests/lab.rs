//! The lab end to end, as a user runs it: `podnet lab up` of the quickstart (podnet's
//! own CNI plugin) plus an upstream-style manifest (agnhost netexec pods pinned to
//! nodes), real clients from inside pods, then `podnet lab down` leaving no trace; and
//! a lab on etcd with Debian's reference CNI plugins. Needs root (CI is root).

mod common;

use std::path::Path;
use std::process::Command;

use common::{require_root_and_tools, trace, Lab};

fn require_root() {
    require_root_and_tools(&[
        ("ip", "iproute2"),
        ("curl", "curl"),
        ("nsenter", "util-linux"),
    ]);
    assert!(
        Path::new("/usr/lib/cni/bridge").exists() && Path::new("/usr/lib/cni/host-local").exists(),
        "the lab tests need Debian's reference CNI plugins: apt-get install containernetworking-plugins"
    );
}

/// `lab up` of the quickstart plus the upstream-style manifest, with `extra`
/// options; returns its output.
fn up_quickstart(lab: &Lab, extra: &[&str]) -> String {
    let upstream = lab.root.path().join("upstream.yaml");
    std::fs::write(&upstream, UPSTREAM_STYLE).unwrap();
    lab.up(
        extra,
        &["examples/quickstart/manifests/", upstream.to_str().unwrap()],
    )
}

const UPSTREAM_STYLE: &str = r#"
# Shaped like the upstream e2e networking tests: one agnhost netexec "netserver" per
# node, pinned by the kubernetes.io/hostname label, and a test client pod.
apiVersion: v1
kind: Pod
metadata: {name: netserver-0, namespace: default, labels: {selector-netserver: "true"}}
spec:
  nodeSelector: {kubernetes.io/hostname: node-1}
  containers:
  - name: webserver
    image: registry.k8s.io/e2e-test-images/agnhost:2.47
    args: [netexec, --http-port=8083, --udp-port=8081]
    ports: [{name: http, containerPort: 8083}, {name: udp, containerPort: 8081, protocol: UDP}]
    readinessProbe: {httpGet: {path: /healthz, port: 8083}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: netserver-1, namespace: default, labels: {selector-netserver: "true"}}
spec:
  nodeSelector: {kubernetes.io/hostname: node-3}
  containers:
  - name: webserver
    image: registry.k8s.io/e2e-test-images/agnhost:2.47
    args: [netexec, --http-port=8083, --udp-port=8081]
    ports: [{name: http, containerPort: 8083}, {name: udp, containerPort: 8081, protocol: UDP}]
    readinessProbe: {httpGet: {path: /healthz, port: 8083}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: chatty, namespace: default}
spec:
  containers:
  - name: talk
    image: busybox:1.36
    command: [sh, -c, "echo hello from chatty; while true; do sleep 1; done"]
---
apiVersion: v1
kind: Pod
metadata: {name: test-container-pod, namespace: default}
spec:
  nodeSelector: {kubernetes.io/hostname: node-1}
  containers:
  - name: webserver
    image: registry.k8s.io/e2e-test-images/agnhost:2.47
    args: [netexec, --http-port=9080]
    ports: [{containerPort: 9080}]
"#;

fn pod_ip(lab: &Lab, name: &str) -> String {
    lab.pod_ip(None, name)
}

#[test]
fn quickstart_and_upstream_manifest_then_no_trace() {
    require_root();
    let lab = Lab::new("t");
    let prefix = lab.prefix();
    let before = trace(&prefix, lab.root.path());
    let up = up_quickstart(&lab, &[]);
    assert!(up.contains("lab check"), "{up}");
    assert!(up.contains(" 0 failed"), "{up}");
    assert!(
        up.contains("pod-to-pod, across nodes") && up.contains("the client's own IP"),
        "{up}"
    );

    // Every node's agent serves the CNI shim in its own network namespace, and the
    // pods were wired by it: the runtime ran the shim, the agent did the ADD.
    let mut wired_by_agents = 0;
    for node in ["node-1", "node-2", "node-3"] {
        let listening = lab.host(node, "ss -xl");
        assert!(listening.contains("@podnet-cni"), "{node}: {listening}");
        let log = lab.state().join("logs").join(format!("agent-{node}.log"));
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        wired_by_agents += log.matches("podnet_cni::plugin::add").count();
    }
    assert!(
        wired_by_agents >= 5,
        "pods wired by the agents' CNI servers: {wired_by_agents}"
    );

    // From the client pod on node-1 to the netserver on node-3: the server sees the
    // client's own pod IP (no NAT) and answers with its own name.
    let client_ip = pod_ip(&lab, "test-container-pod");
    let server_ip = pod_ip(&lab, "netserver-1");
    let seen = lab.ok(&[
        "exec",
        "test-container-pod",
        "--",
        "curl",
        "-s",
        "-m",
        "3",
        &format!("http://{server_ip}:8083/clientip"),
    ]);
    assert_eq!(seen.rsplit_once(':').unwrap().0, client_ip, "{seen}");
    let host = lab.ok(&[
        "exec",
        "test-container-pod",
        "--",
        "curl",
        "-s",
        "-m",
        "3",
        &format!("http://{server_ip}:8083/hostname"),
    ]);
    assert_eq!(host.trim(), "netserver-1");
    // UDP echo across nodes through the agnhost dial endpoint, as upstream tests do.
    let dial = lab.ok(&[
        "exec",
        "test-container-pod",
        "--",
        "curl",
        "-s",
        "-m",
        "5",
        &format!("http://127.0.0.1:9080/dial?request=hostname&protocol=udp&host={server_ip}&port=8081&tries=1"),
    ]);
    assert!(dial.contains("netserver-1"), "{dial}");
    // The scheduler honoured the nodeSelector.
    let wide = lab.ok(&["get", "po", "-o", "wide"]);
    let line = wide.lines().find(|l| l.starts_with("netserver-1")).unwrap();
    assert!(line.ends_with("node-3"), "{wide}");
    // Containers of one pod share localhost; the pod has its own resolv.conf.
    let hn = lab.ok(&[
        "exec",
        "duo",
        "-n",
        "demo",
        "-c",
        "sidecar",
        "--",
        "curl",
        "-s",
        "-m",
        "3",
        "http://127.0.0.1:9376",
    ]);
    assert_eq!(hn.trim(), "duo");
    let resolv = lab.ok(&[
        "exec",
        "client",
        "-n",
        "demo",
        "--",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(
        resolv.contains("nameserver 10.96.0.10")
            && resolv.contains("search demo.svc.cluster.local"),
        "{resolv}"
    );
    // Hosts outside the cluster exist and reach the nodes.
    lab.ok(&[
        "lab",
        "exec",
        "--name",
        &lab.name,
        "external",
        "--",
        "ping",
        "-c1",
        "-W2",
        "172.18.0.2",
    ]);
    lab.ok(&[
        "lab",
        "exec",
        "--name",
        &lab.name,
        "internet",
        "--",
        "ping",
        "-c1",
        "-W2",
        "203.0.113.1",
    ]);
    // Container output is kept for `podnet logs`.
    let logs = lab.ok(&["logs", "chatty"]);
    assert!(logs.contains("hello from chatty"), "{logs}");
    // The check can be run again on demand.
    let check = lab.ok(&["lab", "check", "--name", &lab.name]);
    assert!(check.contains(" 0 failed"), "{check}");

    // Graceful deletion: the node's runtime stops the containers, releases the
    // network and removes the pod; `delete` waits for that.
    let uid = {
        let v: serde_json::Value =
            serde_json::from_str(&lab.ok(&["get", "po", "client", "-n", "demo", "-o", "json"]))
                .unwrap();
        v["metadata"]["uid"].as_str().unwrap().to_string()
    };
    let short: String = uid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect();
    let pod_ns = format!("{prefix}pod-{short}");
    assert!(Path::new("/run/netns").join(&pod_ns).exists(), "{pod_ns}");
    let del = lab.ok(&["delete", "pod", "client", "-n", "demo"]);
    assert!(del.contains("deleted"), "{del}");
    assert!(!lab
        .podnet(&["get", "po", "client", "-n", "demo"])
        .status
        .success());
    assert!(
        !Path::new("/run/netns").join(&pod_ns).exists(),
        "{pod_ns} still there after delete"
    );

    let down = lab.ok(&["lab", "down", "--name", &lab.name]);
    assert!(down.contains("removed"), "{down}");
    let after = trace(&prefix, lab.root.path());
    assert_eq!(before, after, "lab down left something behind");
    assert!(
        !lab.root.path().join(&lab.name).exists(),
        "the lab's state directory is still there"
    );
}

/// A lab with `store: etcd` and Debian's reference CNI plugins (the quickstart uses
/// podnet's own): three etcd members on the underlay, the agents and the controller
/// reaching them over it, `podnet` outside reaching them through the members' unix
/// sockets; `lab down` stops them too.
#[test]
fn etcd_store_lab() {
    require_root();
    assert!(
        Command::new("sh")
            .args(["-c", "command -v etcd"])
            .output()
            .unwrap()
            .status
            .success(),
        "the etcd lab needs etcd: apt-get install etcd-server"
    );
    let lab = Lab::new("e");
    let prefix = lab.prefix();
    let before = trace(&prefix, lab.root.path());
    // The quickstart lab again, now on etcd and with Debian's reference plugins,
    // chosen on the command line.
    let up = up_quickstart(&lab, &["--store", "etcd", "--cni", "reference"]);
    assert!(up.contains(" 0 failed"), "{up}");
    assert!(up.contains("the client's own IP"), "{up}");
    let conf = std::fs::read_to_string(
        lab.root
            .path()
            .join(&lab.name)
            .join("nodes/node-1/net.d/10-podnet.conflist"),
    )
    .unwrap();
    assert!(
        conf.contains("\"type\": \"bridge\"") && !conf.contains("\"type\": \"podnet\""),
        "{conf}"
    );
    let url_line = up
        .lines()
        .find(|l| l.contains("export PODNET_STORE="))
        .unwrap();
    let url = url_line.trim().trim_start_matches("export PODNET_STORE=");
    assert!(url.starts_with("etcd+unix://"), "{url}");
    let o = Command::new(env!("CARGO_BIN_EXE_podnet"))
        .args(["--store", url, "get", "no", "-o", "name"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "node/node-1\nnode/node-2\nnode/node-3\n"
    );
    // The members run in their own namespaces, as separate hosts.
    let members = lab.ok(&[
        "lab",
        "exec",
        "--name",
        &lab.name,
        "node-1",
        "--",
        "ping",
        "-c1",
        "-W2",
        "172.18.0.203",
    ]);
    assert!(members.contains("1 received"), "{members}");
    lab.ok(&["lab", "down", "--name", &lab.name]);
    assert_eq!(
        before,
        trace(&prefix, lab.root.path()),
        "lab down left something behind"
    );
}
