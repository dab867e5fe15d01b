//! Golden tests of the planner: the whole desired state as iproute2-like text.

use super::*;

fn peer(name: &str, ip: &str, cidr: Option<&str>, mac: Option<&str>) -> Peer {
    Peer {
        name: name.into(),
        ip: ip.parse().unwrap(),
        public_ip: ip.parse().unwrap(),
        pod_cidr: cidr.map(|c| c.parse().unwrap()),
        vtep_mac: mac.map(|m| m.parse().unwrap()),
    }
}

fn local() -> Local {
    Local {
        name: "node-1".into(),
        ip: "172.18.0.2".parse().unwrap(),
        dev: "eth0".into(),
        onlink: vec!["172.18.0.0/24".parse().unwrap()],
    }
}

fn cluster() -> Vec<Peer> {
    vec![
        peer(
            "node-3",
            "172.18.0.4",
            Some("10.244.2.0/24"),
            Some("0e:50:ac:12:00:04"),
        ),
        peer(
            "node-1",
            "172.18.0.2",
            Some("10.244.0.0/24"),
            Some("0e:50:ac:12:00:02"),
        ),
        peer(
            "node-2",
            "172.18.0.3",
            Some("10.244.1.0/24"),
            Some("0e:50:ac:12:00:03"),
        ),
    ]
}

fn settings(mode: OverlayMode) -> Settings {
    Settings::from(&ClusterConfigSpec {
        overlay: podnet_model::config::OverlayConfig {
            mode,
            ..Default::default()
        },
        ..Default::default()
    })
}

#[test]
fn vxlan_golden() {
    let p = plan(&settings(OverlayMode::Vxlan), &local(), &cluster());
    assert_eq!(
        p.desired.render(),
        "\
link podnet.1 type vxlan id 1 local 172.18.0.2 dev eth0 dstport 8472 nolearning mtu 1450 address 0e:50:ac:12:00:02
addr 10.244.0.0/32 dev podnet.1
route 10.244.1.0/24 via 10.244.1.0 dev podnet.1 onlink proto 0x50
route 10.244.2.0/24 via 10.244.2.0 dev podnet.1 onlink proto 0x50
neigh 10.244.1.0 lladdr 0e:50:ac:12:00:03 dev podnet.1 nud permanent
neigh 10.244.2.0 lladdr 0e:50:ac:12:00:04 dev podnet.1 nud permanent
fdb 0e:50:ac:12:00:03 dev podnet.1 dst 172.18.0.3 self permanent
fdb 0e:50:ac:12:00:04 dev podnet.1 dst 172.18.0.4 self permanent
nft ip podnet-overlay: vxlan with 172.18.0.3 172.18.0.4 untracked
"
    );
    assert!(p.skipped.is_empty());
}

#[test]
fn vxlan_follows_config_and_public_ip() {
    let mut s = settings(OverlayMode::Vxlan);
    s.vni = 42;
    s.port = 4789;
    s.mtu = 9000;
    let mut nodes = cluster();
    nodes[0].public_ip = "192.0.2.4".parse().unwrap();
    let p = plan(&s, &local(), &nodes);
    let text = p.desired.render();
    assert!(text.starts_with("link podnet.42 type vxlan id 42 local 172.18.0.2 dev eth0 dstport 4789 nolearning mtu 8950 "), "{text}");
    assert!(
        text.contains("fdb 0e:50:ac:12:00:04 dev podnet.42 dst 192.0.2.4 self permanent"),
        "{text}"
    );
}

#[test]
fn vxlan_skips_peers_without_mac_or_cidr_and_waits_for_own_cidr() {
    let nodes = vec![
        peer("node-1", "172.18.0.2", None, None),
        peer("node-2", "172.18.0.3", Some("10.244.1.0/24"), None),
        peer("node-3", "172.18.0.4", None, Some("0e:50:ac:12:00:04")),
    ];
    let p = plan(&settings(OverlayMode::Vxlan), &local(), &nodes);
    assert!(p.desired.vxlan.is_some());
    assert!(p.desired.addresses.is_empty() && p.desired.routes.is_empty());
    let reasons: Vec<_> = p
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            ("node-3", SkipReason::NoPodCidr),
            ("node-2", SkipReason::NoVtepMac)
        ]
    );
    assert!(p.unreachable().is_empty());
}

#[test]
fn host_gw_golden_and_off_link_peer() {
    let mut nodes = cluster();
    nodes.push(peer("far", "10.9.0.5", Some("10.244.9.0/24"), None));
    let p = plan(&settings(OverlayMode::HostGw), &local(), &nodes);
    assert_eq!(
        p.desired.render(),
        "\
route 10.244.1.0/24 via 172.18.0.3 dev eth0 proto 0x50
route 10.244.2.0/24 via 172.18.0.4 dev eth0 proto 0x50
"
    );
    let u = p.unreachable();
    assert_eq!(u.len(), 1);
    assert_eq!(
        (u[0].name.as_str(), u[0].ip.to_string()),
        ("far", "10.9.0.5".into())
    );
}

#[test]
fn deterministic_whatever_the_input_order() {
    let mut a = cluster();
    let b = plan(&settings(OverlayMode::Vxlan), &local(), &a);
    a.reverse();
    assert_eq!(plan(&settings(OverlayMode::Vxlan), &local(), &a), b);
}

#[test]
fn peer_of_reads_only_routing_fields() {
    use podnet_model::k8s_openapi::api::core::v1::{NodeAddress, NodeSpec, NodeStatus};
    let mut n = Node::default();
    n.metadata.name = Some("node-2".into());
    n.metadata.annotations = Some(
        [
            (
                annotations::VTEP_MAC.to_string(),
                "0e:50:ac:12:00:03".to_string(),
            ),
            (annotations::PUBLIC_IP.to_string(), "192.0.2.3".to_string()),
        ]
        .into(),
    );
    n.spec = Some(NodeSpec {
        pod_cidr: Some("10.244.1.0/24".into()),
        ..Default::default()
    });
    n.status = Some(NodeStatus {
        addresses: Some(vec![NodeAddress {
            type_: "InternalIP".into(),
            address: "172.18.0.3".into(),
        }]),
        ..Default::default()
    });
    let p = peer_of(&n).unwrap();
    assert_eq!(p.public_ip.to_string(), "192.0.2.3");
    assert_eq!(p.vtep_mac.unwrap().to_string(), "0e:50:ac:12:00:03");
    // A heartbeat (conditions, labels) leaves the routing view unchanged.
    let mut beat = n.clone();
    beat.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
    beat.status.as_mut().unwrap().conditions = Some(vec![Default::default()]);
    assert_eq!(peer_of(&beat), Some(p));
}
