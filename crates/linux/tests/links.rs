//! Kernel tests: a node bridge and a pod veth, proven with a real ping;
//! link changes, addresses, index-based requests pipelined on one socket,
//! and the errors' wording.

mod common;

use common::{ip, ping, Namespaces};
use ipnet::IpNet;
use podnet_linux::model::{Address, BridgeSpec, LinkKind, Mac, Route, VethSpec, TABLE_MAIN};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[tokio::test]
async fn pod_reaches_its_gateway_through_a_bridge() {
    let mut guard = Namespaces::new();
    let (_node_name, node_ns) = guard.create("node");
    let (pod_name, pod_ns) = guard.create("pod");
    let node = node_ns.handle().unwrap();
    let pod = pod_ns.handle().unwrap();

    let bridge_mac: Mac = "0a:58:0a:f4:01:01".parse().unwrap();
    let bridge = BridgeSpec {
        name: "pnbr0".into(),
        mtu: Some(1500),
        mac: Some(bridge_mac),
    };
    node.add_bridge(&bridge).await.unwrap();
    node.add_address("pnbr0", net("10.244.1.1/24"))
        .await
        .unwrap();
    node.set_up("pnbr0").await.unwrap();

    let mut veth = VethSpec::new("vethpod1", "eth0");
    veth.mtu = Some(1500);
    veth.peer_mac = Some("0a:58:0a:f4:01:02".parse().unwrap());
    node.add_veth(&veth, Some(&pod_ns)).await.unwrap();
    node.set_master("vethpod1", "pnbr0").await.unwrap();
    node.set_up("vethpod1").await.unwrap();

    pod.add_address("eth0", net("10.244.1.2/24")).await.unwrap();
    pod.set_up("lo").await.unwrap();
    pod.set_up("eth0").await.unwrap();
    let default = Route::default_via("10.244.1.1".parse().unwrap()).dev("eth0");
    pod.add_route(&default).await.unwrap();

    // Observed state, in the model's vocabulary.
    let host_end = node
        .link("vethpod1")
        .await
        .unwrap()
        .expect("host end of the veth");
    assert_eq!(host_end.kind, LinkKind::Veth);
    assert_eq!(host_end.master.as_deref(), Some("pnbr0"));
    assert_eq!(host_end.hairpin, Some(false));
    assert!(
        node.link("eth0").await.unwrap().is_none(),
        "the peer never exists in the node"
    );
    let br = node.link("pnbr0").await.unwrap().unwrap();
    assert_eq!(
        (br.kind.clone(), br.mac, br.mtu, br.up),
        (LinkKind::Bridge, Some(bridge_mac), 1500, true)
    );
    let eth0 = pod.link("eth0").await.unwrap().unwrap();
    assert_eq!(eth0.mac, veth.peer_mac);
    assert!(
        pod.routes(TABLE_MAIN).await.unwrap().contains(&default),
        "desired default route is observed as-is"
    );
    let v4: Vec<Address> = pod
        .addresses("eth0")
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.addr.addr().is_ipv4())
        .collect();
    assert_eq!(
        v4,
        vec![Address {
            link: "eth0".into(),
            addr: net("10.244.1.2/24")
        }]
    );

    // A real packet: pod -> bridge address and back.
    assert!(
        ping(&pod_name, "10.244.1.1", 3),
        "ping from the pod to its gateway failed"
    );

    // Hairpin on the bridge port.
    node.set_hairpin("vethpod1", true).await.unwrap();
    assert_eq!(
        node.link("vethpod1").await.unwrap().unwrap().hairpin,
        Some(true)
    );

    // Deleting the host end removes the pod's end too; deleting again is Ok.
    node.delete_link("vethpod1").await.unwrap();
    node.delete_link("vethpod1").await.unwrap();
    assert!(pod.link("eth0").await.unwrap().is_none());
    assert!(!ping(&pod_name, "10.244.1.1", 1));
}

#[tokio::test]
async fn link_changes_are_observed() {
    let mut guard = Namespaces::new();
    let (name, ns) = guard.create("links");
    let h = ns.handle().unwrap();

    let links = h.links().await.unwrap();
    assert!(
        links
            .iter()
            .any(|l| l.name == "lo" && l.kind == LinkKind::Loopback),
        "{links:?}"
    );

    // A veth pair stands in for a plain device (some kernels lack dummy).
    h.add_veth(&VethSpec::new("pnv0", "pnv0p"), None)
        .await
        .unwrap();
    let mac: Mac = "02:00:00:00:00:2a".parse().unwrap();
    h.set_mtu("pnv0", 1400).await.unwrap();
    h.set_mac("pnv0", mac).await.unwrap();
    h.rename("pnv0", "pndev").await.unwrap();
    assert!(h.link("pnv0").await.unwrap().is_none());
    let d = h.link("pndev").await.unwrap().unwrap();
    assert_eq!(
        (d.kind.clone(), d.mtu, d.mac, d.up, d.master.clone()),
        (LinkKind::Veth, 1400, Some(mac), false, None)
    );
    assert_eq!(h.link_by_index(d.index).await.unwrap(), Some(d.clone()));
    assert_eq!(h.index_of("pndev").await.unwrap(), d.index);
    h.set_up("pndev").await.unwrap();
    assert!(h.link("pndev").await.unwrap().unwrap().up);
    assert!(ip(&name, &["link", "show", "pndev"]).contains("mtu 1400"));
    h.set_down("pndev").await.unwrap();
    assert!(!h.link("pndev").await.unwrap().unwrap().up);

    // master / nomaster
    h.add_bridge(&BridgeSpec::new("pnbr1")).await.unwrap();
    h.set_master("pndev", "pnbr1").await.unwrap();
    assert_eq!(
        h.link("pndev").await.unwrap().unwrap().master.as_deref(),
        Some("pnbr1")
    );
    h.set_nomaster("pndev").await.unwrap();
    assert_eq!(h.link("pndev").await.unwrap().unwrap().master, None);

    // Dummy devices, where the kernel has them.
    match h.add_dummy("pndummy").await {
        Ok(()) => {
            assert_eq!(
                h.link("pndummy").await.unwrap().unwrap().kind,
                LinkKind::Dummy
            );
            let err = h.add_dummy("pndummy").await.unwrap_err();
            assert!(err.is_exists());
            assert_eq!(
                err.to_string(),
                format!("creating dummy pndummy in netns {name}: file exists")
            );
            h.delete_link("pndummy").await.unwrap();
        }
        Err(err) => assert_eq!(
            err.to_string(),
            format!("creating dummy pndummy in netns {name}: operation not supported")
        ),
    }

    // Errors name the operation, the object and the namespace.
    let err = h.add_bridge(&BridgeSpec::new("pnbr1")).await.unwrap_err();
    assert!(err.is_exists());
    assert_eq!(
        err.to_string(),
        format!("creating bridge pnbr1 in netns {name}: file exists")
    );
    let err = h.set_up("nosuch0").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = h
        .add_address("nosuch0", net("10.9.9.9/24"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("adding address 10.9.9.9/24 to nosuch0 in netns {name}: no such device")
    );
    let err = h.set_master("pndev", "nosuch0").await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("attaching link pndev to nosuch0 in netns"),
        "{err}"
    );

    h.delete_link("pndev").await.unwrap();
    h.delete_link("pndev").await.unwrap();
    assert!(
        h.link("pnv0p").await.unwrap().is_none(),
        "deleting one end deletes the peer"
    );
    h.delete_link("pnbr1").await.unwrap();
    let left = h.links().await.unwrap();
    assert!(
        !left.iter().any(|l| l.name == "pndev" || l.name == "pnbr1"),
        "{left:?}"
    );
}

#[tokio::test]
async fn addresses_are_idempotent() {
    let mut guard = Namespaces::new();
    let (name, ns) = guard.create("addrs");
    let h = ns.handle().unwrap();
    h.add_veth(&VethSpec::new("d0", "d0p"), None).await.unwrap();
    h.set_up("d0").await.unwrap();
    h.set_up("d0p").await.unwrap();

    let v4 = net("10.244.3.1/24");
    let v6 = net("fd00:244::1/64");
    h.add_address("d0", v4).await.unwrap();
    h.add_address("d0", v4).await.unwrap();
    h.add_address("d0", v6).await.unwrap();
    let addrs = h.addresses("d0").await.unwrap();
    assert!(
        addrs.contains(&Address {
            link: "d0".into(),
            addr: v4
        }),
        "{addrs:?}"
    );
    assert!(
        addrs.contains(&Address {
            link: "d0".into(),
            addr: v6
        }),
        "{addrs:?}"
    );
    assert_eq!(addrs.iter().filter(|a| a.addr == v4).count(), 1);
    assert!(ip(&name, &["-4", "addr", "show", "dev", "d0"]).contains("10.244.3.1/24"));
    assert!(h
        .all_addresses()
        .await
        .unwrap()
        .iter()
        .any(|a| a.link == "d0" && a.addr == v4));

    h.delete_address("d0", v4).await.unwrap();
    h.delete_address("d0", v4).await.unwrap();
    h.delete_address("nosuch0", v4).await.unwrap();
    assert!(!h
        .addresses("d0")
        .await
        .unwrap()
        .iter()
        .any(|a| a.addr == v4));
}

#[tokio::test]
async fn move_to_netns_renames_there() {
    let mut guard = Namespaces::new();
    let (_, node_ns) = guard.create("move-node");
    let (pod_name, pod_ns) = guard.create("move-pod");
    let node = node_ns.handle().unwrap();
    let pod = pod_ns.handle().unwrap();

    node.add_veth(&VethSpec::new("vethmv", "tmpmv"), None)
        .await
        .unwrap();
    node.move_to_netns("tmpmv", &pod_ns, Some("eth1"))
        .await
        .unwrap();
    assert!(node.link("tmpmv").await.unwrap().is_none());
    let moved = pod.link("eth1").await.unwrap().expect("eth1 in the pod");
    assert_eq!(moved.kind, LinkKind::Veth);
    assert!(ip(&pod_name, &["link", "show", "eth1"]).contains("eth1"));

    let err = node
        .move_to_netns("nosuch0", &pod_ns, None)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn current_handle_works_in_the_calling_threads_namespace() {
    let mut guard = Namespaces::new();
    let (_, ns) = guard.create("current");
    let h = ns.handle().unwrap();
    h.add_bridge(&BridgeSpec::new("pnmark0")).await.unwrap();
    let names = |links: Vec<podnet_linux::model::Link>| {
        let mut names: Vec<String> = links.into_iter().map(|l| l.name).collect();
        names.sort();
        names
    };
    let expected = names(h.links().await.unwrap());
    let seen = ns
        .run(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                podnet_linux::Handle::current()
                    .unwrap()
                    .links()
                    .await
                    .unwrap()
            })
        })
        .unwrap();
    assert_eq!(names(seen), expected);
    assert!(expected.contains(&"pnmark0".to_string()));
}

/// A veth pair created attached to a bridge and up in one request: the host end is
/// the bridge's port and up, the peer is in the pod namespace (down, as the kernel
/// cannot open it before the pair is joined); a master that does not exist fails the
/// creation and leaves no link in either namespace.
#[tokio::test]
async fn veth_created_attached_and_up() {
    let mut guard = Namespaces::new();
    let (_node_name, node_ns) = guard.create("node");
    let (_pod_name, pod_ns) = guard.create("pod");
    let node = node_ns.handle().unwrap();
    let pod = pod_ns.handle().unwrap();
    node.add_bridge(&BridgeSpec::new("pnbr2")).await.unwrap();
    let bridge = node.link("pnbr2").await.unwrap().unwrap();

    let mut veth = VethSpec::new("vethatt", "eth0");
    veth.master = Some(bridge.index);
    veth.up = true;
    node.add_veth(&veth, Some(&pod_ns)).await.unwrap();
    let host_end = node.link("vethatt").await.unwrap().unwrap();
    assert_eq!(host_end.master.as_deref(), Some("pnbr2"));
    assert!(host_end.up, "{host_end:?}");
    let peer = pod.link("eth0").await.unwrap().expect("peer in the pod");
    assert!(!peer.up, "{peer:?}");

    let mut bad = VethSpec::new("vethbad", "eth1");
    bad.master = Some(bridge.index + 1000);
    assert!(node.add_veth(&bad, Some(&pod_ns)).await.is_err());
    assert!(node.link("vethbad").await.unwrap().is_none());
    assert!(pod.link("eth1").await.unwrap().is_none());
}

/// The index-based requests, queued together on one connection as the CNI
/// plugin does: they reach the kernel in order, so the default route (which
/// needs the address and the link up) is accepted.
#[tokio::test]
async fn index_based_requests_pipeline_in_order() {
    let mut guard = Namespaces::new();
    let (name, ns) = guard.create("pipeline");
    let h = ns.handle().unwrap();
    let mac: Mac = "02:00:00:00:00:2b".parse().unwrap();
    let mut spec = VethSpec::new("pnp0", "pnp0h");
    spec.peer_mac = Some(mac);
    h.add_veth(&spec, None).await.unwrap();
    h.set_up("pnp0h").await.unwrap();
    let index = h.index_of("pnp0").await.unwrap();

    let route = Route::default_via("10.244.7.1".parse().unwrap()).dev("pnp0");
    let (address, up, lo, default, peer_mac) = tokio::join!(
        h.add_address_index(index, "pnp0", net("10.244.7.5/24")),
        h.set_up_index(index, "pnp0"),
        h.set_up("lo"),
        h.replace_route_oif(&route, index),
        h.mac_of("pnp0h"),
    );
    address.unwrap();
    up.unwrap();
    lo.unwrap();
    default.unwrap();
    assert_eq!(peer_mac.unwrap(), Some(mac));
    assert!(ip(&name, &["-4", "addr", "show", "dev", "pnp0"]).contains("10.244.7.5/24"));
    assert!(ip(&name, &["link", "show", "pnp0"]).contains(",UP"));
    assert!(ip(&name, &["link", "show", "lo"]).contains(",UP"));
    assert!(
        ip(&name, &["route", "show", "default"]).contains("via 10.244.7.1 dev pnp0"),
        "{}",
        ip(&name, &["route"])
    );
    assert!(h.routes(TABLE_MAIN).await.unwrap().contains(&route));

    // Out of order (route first, on a fresh device) the kernel refuses: the
    // test above proves the order, not luck.
    h.add_veth(&VethSpec::new("pnp1", "pnp1h"), None)
        .await
        .unwrap();
    let index1 = h.index_of("pnp1").await.unwrap();
    let route1 = Route::new(net("10.9.0.0/16"))
        .via("10.244.8.1".parse().unwrap())
        .dev("pnp1");
    let err = h.replace_route_oif(&route1, index1).await.unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "replacing route 10.9.0.0/16 via 10.244.8.1 dev pnp1 in netns {name}: "
        )),
        "{err}"
    );

    // Errors name the interface and the namespace; a missing link has no mac.
    let err = h
        .add_address_index(9999, "ghost0", net("10.9.9.9/24"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("adding address 10.9.9.9/24 to ghost0 in netns {name}: no such device")
    );
    let err = h.set_up_index(9999, "ghost0").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(
        err.to_string(),
        format!("setting link ghost0 up in netns {name}: no such device")
    );
    assert_eq!(h.mac_of("ghost0").await.unwrap(), None);
}
