use super::*;

fn t(
    name: &str,
    node: &str,
    ip: &str,
    port: Option<i32>,
    netexec: bool,
    containers: usize,
) -> Target {
    Target {
        name: name.into(),
        netns: format!("ns-{name}"),
        node: node.into(),
        ip: ip.into(),
        port,
        netexec,
        udp_port: netexec.then_some(8081),
        containers,
    }
}

#[test]
fn service_probes_cover_cluster_ip_node_port_and_no_endpoints() {
    let pods = [
        t("a", "n1", "10.0.1.2", None, false, 1),
        t("b", "n2", "10.0.2.2", Some(8080), true, 1),
    ];
    let svc = |name: &str, ip: &str, np: Option<i32>, eps: &[&str]| ServiceTarget {
        name: name.into(),
        cluster_ip: ip.into(),
        port: 80,
        node_port: np,
        endpoints: eps.iter().map(|e| e.to_string()).collect(),
    };
    let services = [
        svc("demo/web", "10.96.0.20", Some(30080), &["10.0.2.2"]),
        svc("demo/nobody", "10.96.0.21", None, &[]),
    ];
    let nodes = [("n1".to_string(), "172.18.0.2".to_string())];
    let p = service_probes(&pods, &services, &nodes, Some("ext-ns"));
    let checks: Vec<&str> = p.iter().map(|p| p.check).collect();
    assert_eq!(
        checks,
        [
            "service ClusterIP",
            "service NodePort (from external)",
            "service without endpoints (rejected)"
        ]
    );
    assert_eq!(
        p[0].how,
        How::ClientIp {
            from_netns: "ns-a".into(),
            addr: "10.96.0.20".into(),
            port: 80,
            expect_ip: "10.0.1.2".into()
        }
    );
    assert_eq!(
        p[1].how,
        How::Connect {
            from_netns: "ext-ns".into(),
            addr: "172.18.0.2".into(),
            port: 30080
        }
    );
    assert!(matches!(&p[2].how, How::Refused { addr, .. } if addr == "10.96.0.21"));
    // no external host: no NodePort probe
    assert_eq!(service_probes(&pods, &services, &nodes, None).len(), 2);
}

#[test]
fn probes_cover_same_node_cross_node_node_and_localhost() {
    let pods = [
        t("a", "n1", "10.0.1.2", None, false, 1),
        t("b", "n1", "10.0.1.3", Some(8080), true, 1),
        t("c", "n2", "10.0.2.2", Some(9376), false, 2),
    ];
    let nodes = [
        ("n1".to_string(), "ns-n1".to_string()),
        ("n2".to_string(), "ns-n2".to_string()),
    ];
    let probes = plan(&pods, &nodes);
    let checks: Vec<&str> = probes.iter().map(|p| p.check).collect();
    assert_eq!(
        checks,
        [
            "container-to-container (localhost)",
            "pod-to-pod, same node",
            "pod-to-pod, across nodes",
            "pod-to-pod, across nodes",
            "node-to-pod",
            "node-to-pod"
        ]
    );
    // A netexec server is asked who it saw.
    assert!(matches!(&probes[1].how, How::ClientIp { expect_ip, .. } if expect_ip == "10.0.1.2"));
    // Across nodes from n2's client c to n1's server b.
    assert!(matches!(&probes[3].how, How::ClientIp { from_netns, .. } if from_netns == "ns-c"));
}

#[test]
fn udp_probe_between_netexec_pods_on_different_nodes() {
    let pods = [
        t("a", "n1", "10.0.1.2", Some(8080), true, 1),
        t("b", "n2", "10.0.2.2", Some(8080), true, 1),
    ];
    let nodes = [
        ("n1".to_string(), "ns-n1".to_string()),
        ("n2".to_string(), "ns-n2".to_string()),
    ];
    let probes = plan(&pods, &nodes);
    let udp: Vec<&Probe> = probes
        .iter()
        .filter(|p| p.check == "pod-to-pod UDP, across nodes")
        .collect();
    assert_eq!(udp.len(), 2);
    assert!(
        matches!(&udp[0].how, How::UdpClientIp { from_netns, via_port: 8080, addr, port: 8081, expect_ip }
        if from_netns == "ns-a" && addr == "10.0.2.2" && expect_ip == "10.0.1.2")
    );
}

#[test]
fn one_internet_probe_per_node_expecting_its_node_ip() {
    let pods = [
        t("a", "n1", "10.0.1.2", None, false, 1),
        t("c", "n2", "10.0.2.2", Some(9376), false, 1),
    ];
    let nodes = [
        ("n1".to_string(), "172.18.0.2".to_string()),
        ("n2".to_string(), "172.18.0.3".to_string()),
        ("n3".to_string(), "172.18.0.4".to_string()),
    ];
    let p = internet_probes(&pods, &nodes, "203.0.113.10", 8080);
    assert_eq!(p.len(), 2, "n3 has no pod");
    assert!(
        matches!(&p[1].how, How::ClientIp { from_netns, addr, expect_ip, .. }
        if from_netns == "ns-c" && addr == "203.0.113.10" && expect_ip == "172.18.0.3")
    );
}
