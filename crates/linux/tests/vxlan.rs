//! Kernel test: a flannel-style VXLAN overlay between two node namespaces
//! joined by a veth underlay, with a pod on each node. No learning: each node
//! gets, per remote node, a route to its pod /24 via its VTEP address
//! (onlink), a permanent neighbour entry for that address and an FDB entry
//! sending the VTEP's MAC to the remote node IP. Proven with real pings.

mod common;

use std::net::IpAddr;

use common::{ping, Namespaces};
use ipnet::IpNet;
use podnet_linux::model::{
    BridgeSpec, FdbEntry, FdbOwner, Mac, Neighbour, NeighbourState, Route, VethSpec, VxlanInfo,
    VxlanSpec, VXLAN_PORT_LINUX,
};
use podnet_linux::{sysctl, Handle, NetNs};

const UNDERLAY_MTU: u32 = 1500;
const OVERLAY_MTU: u32 = UNDERLAY_MTU - 50;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Node `n` (1 or 2): node IP 172.18.0.(n+1), pod CIDR 10.244.n.0/24.
struct Node {
    handle: Handle,
    node_ip: IpAddr,
    vtep_ip: IpAddr,
    vtep_mac: Mac,
    pod_cidr: IpNet,
}

/// Bridge, vxlan device and one pod (at 10.244.n.2) on node `n`.
async fn set_up_node(n: u8, node_ns: &NetNs, pod_ns: &NetNs) -> Node {
    let h = node_ns.handle().unwrap();
    let node_ip = addr(&format!("172.18.0.{}", n + 1));
    sysctl::set_all(
        node_ns,
        &[
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
        ],
    )
    .unwrap();
    h.add_address("eth0", IpNet::new(node_ip, 24).unwrap())
        .await
        .unwrap();
    h.set_up("eth0").await.unwrap();
    h.set_up("lo").await.unwrap();

    let bridge = BridgeSpec {
        name: "pnbr0".into(),
        mtu: Some(OVERLAY_MTU),
        mac: None,
    };
    h.add_bridge(&bridge).await.unwrap();
    h.add_address("pnbr0", net(&format!("10.244.{n}.1/24")))
        .await
        .unwrap();
    h.set_up("pnbr0").await.unwrap();

    let vtep_mac: Mac = format!("0a:58:0a:f4:0{n}:00").parse().unwrap();
    let vtep_ip = addr(&format!("10.244.{n}.0"));
    let mut vxlan = VxlanSpec::new("pnvx0", 1);
    vxlan.local = Some(node_ip);
    vxlan.dev = Some("eth0".into());
    vxlan.mtu = Some(OVERLAY_MTU);
    vxlan.mac = Some(vtep_mac);
    h.add_vxlan(&vxlan).await.unwrap();
    h.add_address("pnvx0", IpNet::new(vtep_ip, 32).unwrap())
        .await
        .unwrap();
    h.set_up("pnvx0").await.unwrap();

    let host_end = format!("vethpod{n}");
    let mut veth = VethSpec::new(host_end.clone(), "eth0");
    veth.mtu = Some(OVERLAY_MTU);
    h.add_veth(&veth, Some(pod_ns)).await.unwrap();
    h.set_master(&host_end, "pnbr0").await.unwrap();
    h.set_up(&host_end).await.unwrap();

    let pod = pod_ns.handle().unwrap();
    pod.add_address("eth0", net(&format!("10.244.{n}.2/24")))
        .await
        .unwrap();
    pod.set_up("lo").await.unwrap();
    pod.set_up("eth0").await.unwrap();
    pod.add_route(&Route::default_via(addr(&format!("10.244.{n}.1"))).dev("eth0"))
        .await
        .unwrap();

    Node {
        handle: h,
        node_ip,
        vtep_ip,
        vtep_mac,
        pod_cidr: net(&format!("10.244.{n}.0/24")),
    }
}

/// On `local`, what flannel programs for `remote`.
async fn program_remote(local: &Node, remote: &Node) {
    let h = &local.handle;
    let route = Route::new(remote.pod_cidr)
        .via(remote.vtep_ip)
        .dev("pnvx0")
        .onlink();
    h.replace_route(&route).await.unwrap();
    h.replace_neighbour(&Neighbour::permanent(
        "pnvx0",
        remote.vtep_ip,
        remote.vtep_mac,
    ))
    .await
    .unwrap();
    h.append_fdb(&FdbEntry::vxlan_remote(
        "pnvx0",
        remote.vtep_mac,
        remote.node_ip,
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn pods_on_two_nodes_talk_over_a_static_vxlan_overlay() {
    let mut guard = Namespaces::new();
    let (_, node_a_ns) = guard.create("node-a");
    let (_, node_b_ns) = guard.create("node-b");
    let (pod_a, pod_a_ns) = guard.create("pod-a");
    let (pod_b, pod_b_ns) = guard.create("pod-b");

    // Underlay: a veth between the two nodes, eth0 on both sides.
    let underlay = node_a_ns.handle().unwrap();
    let mut wire = VethSpec::new("eth0", "eth0");
    wire.mtu = Some(UNDERLAY_MTU);
    underlay.add_veth(&wire, Some(&node_b_ns)).await.unwrap();

    let a = set_up_node(1, &node_a_ns, &pod_a_ns).await;
    let b = set_up_node(2, &node_b_ns, &pod_b_ns).await;

    // The vxlan device as the kernel reports it.
    let vx = a.handle.link("pnvx0").await.unwrap().unwrap();
    let expected = VxlanInfo {
        vni: 1,
        local: Some(a.node_ip),
        dev: Some("eth0".into()),
        port: VXLAN_PORT_LINUX,
        learning: false,
    };
    assert_eq!(
        (vx.vxlan, vx.mtu, vx.mac),
        (Some(expected), OVERLAY_MTU, Some(a.vtep_mac))
    );

    // Before programming the remotes, the overlay carries nothing.
    assert!(!ping(&pod_a, "10.244.2.2", 1));

    program_remote(&a, &b).await;
    program_remote(&b, &a).await;
    // Programming twice changes nothing (the agent re-applies).
    program_remote(&a, &b).await;

    let fdb = a.handle.fdb("pnvx0").await.unwrap();
    let to_b = FdbEntry::vxlan_remote("pnvx0", b.vtep_mac, b.node_ip);
    assert_eq!(
        fdb.iter()
            .filter(|e| e.mac == b.vtep_mac)
            .collect::<Vec<_>>(),
        vec![&to_b],
        "{fdb:#?}"
    );
    assert_eq!(to_b.owner, FdbOwner::Device);
    let neigh = a.handle.neighbours(Some("pnvx0")).await.unwrap();
    assert!(
        neigh.contains(&Neighbour::permanent("pnvx0", b.vtep_ip, b.vtep_mac)),
        "{neigh:?}"
    );

    assert!(
        ping(&pod_a, "10.244.2.2", 3),
        "pod a -> pod b over the overlay failed"
    );
    assert!(
        ping(&pod_b, "10.244.1.2", 3),
        "pod b -> pod a over the overlay failed"
    );

    // The FDB entry is what carries the traffic: without it, nothing passes.
    a.handle.delete_fdb(&to_b).await.unwrap();
    a.handle.delete_fdb(&to_b).await.unwrap();
    assert!(!a
        .handle
        .fdb("pnvx0")
        .await
        .unwrap()
        .iter()
        .any(|e| e.mac == b.vtep_mac));
    assert!(
        !ping(&pod_a, "10.244.2.2", 1),
        "traffic passed without an fdb entry"
    );
    a.handle.append_fdb(&to_b).await.unwrap();
    assert!(
        ping(&pod_a, "10.244.2.2", 3),
        "restoring the fdb entry did not restore traffic"
    );

    // Removing one node's neighbour entry leaves the other's intact.
    a.handle.delete_neighbour("pnvx0", b.vtep_ip).await.unwrap();
    let neigh = a.handle.neighbours(Some("pnvx0")).await.unwrap();
    assert!(!neigh
        .iter()
        .any(|n| n.ip == b.vtep_ip && n.state == NeighbourState::Permanent));
}
