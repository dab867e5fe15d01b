//! Kernel tests: routes (add, replace, delete, list; onlink, tables, IPv6)
//! and permanent neighbour entries.

mod common;

use std::net::IpAddr;

use common::{ip, Namespaces};
use ipnet::IpNet;
use podnet_linux::model::{
    Neighbour, NeighbourState, Route, RouteProtocol, RouteScope, VethSpec, TABLE_MAIN,
};
use podnet_linux::Handle;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An up device `d0` (one end of a veth pair, both ends up) carrying
/// 10.1.0.1/24 and fd00:1::1/64.
async fn with_device(h: &Handle) {
    h.add_veth(&VethSpec::new("d0", "d0p"), None).await.unwrap();
    h.set_up("d0p").await.unwrap();
    h.set_up("d0").await.unwrap();
    h.add_address("d0", net("10.1.0.1/24")).await.unwrap();
    h.add_address("d0", net("fd00:1::1/64")).await.unwrap();
}

#[tokio::test]
async fn routes_add_replace_delete() {
    let mut guard = Namespaces::new();
    let (name, ns) = guard.create("routes");
    let h = ns.handle().unwrap();
    with_device(&h).await;

    let via_a = Route::new(net("10.2.0.0/24"))
        .via(addr("10.1.0.254"))
        .dev("d0");
    h.add_route(&via_a).await.unwrap();
    let err = h.add_route(&via_a).await.unwrap_err();
    assert!(err.is_exists(), "{err}");
    assert_eq!(
        err.to_string(),
        format!("adding route 10.2.0.0/24 via 10.1.0.254 dev d0 in netns {name}: file exists")
    );
    assert!(h.routes(TABLE_MAIN).await.unwrap().contains(&via_a));

    // Replace: same destination, new gateway; exactly one route remains.
    let via_b = Route::new(net("10.2.0.0/24"))
        .via(addr("10.1.0.253"))
        .dev("d0");
    h.replace_route(&via_b).await.unwrap();
    h.replace_route(&via_b).await.unwrap();
    let main = h.routes(TABLE_MAIN).await.unwrap();
    let to_dst: Vec<_> = main
        .iter()
        .filter(|r| r.dst == net("10.2.0.0/24"))
        .collect();
    assert_eq!(to_dst, vec![&via_b]);

    // The kernel's own connected route, as observed.
    let connected = main
        .iter()
        .find(|r| r.dst == net("10.1.0.0/24"))
        .expect("connected route");
    assert_eq!(
        (connected.protocol, connected.scope),
        (RouteProtocol::KERNEL, RouteScope::Link)
    );
    assert_eq!(connected.src, Some(addr("10.1.0.1")));

    // Onlink: a gateway no address of d0 covers.
    let onlink = Route::new(net("10.3.0.0/24"))
        .via(addr("192.168.99.1"))
        .dev("d0")
        .onlink();
    h.add_route(&onlink).await.unwrap();
    let off_link = Route::new(net("10.4.0.0/24"))
        .via(addr("192.168.99.1"))
        .dev("d0");
    let err = h.add_route(&off_link).await.unwrap_err();
    assert!(
        err.to_string().ends_with("network is unreachable"),
        "an off-link gateway needs onlink: {err}"
    );
    assert!(h.routes(TABLE_MAIN).await.unwrap().contains(&onlink));
    assert!(ip(&name, &["route", "show", "10.3.0.0/24"]).contains("onlink"));

    // Another table, a metric, a preferred source, a custom protocol.
    let custom = Route::new(net("10.5.0.0/16"))
        .dev("d0")
        .table(100)
        .metric(50)
        .src(addr("10.1.0.1"))
        .protocol(RouteProtocol(77));
    h.add_route(&custom).await.unwrap();
    assert_eq!(h.routes(100).await.unwrap(), vec![custom.clone()]);
    assert!(!h.routes(TABLE_MAIN).await.unwrap().contains(&custom));

    // IPv6: the kernel reports metric 1024 for metric 0.
    let v6 = Route::new(net("fd00:2::/64"))
        .via(addr("fd00:1::2"))
        .dev("d0");
    h.add_route(&v6).await.unwrap();
    let observed = h.routes(TABLE_MAIN).await.unwrap();
    assert!(observed.contains(&v6.clone().metric(1024)), "{observed:#?}");

    // Delete: each once, then again (idempotent).
    for route in [&via_b, &onlink, &custom, &v6.clone().metric(1024)] {
        h.delete_route(route).await.unwrap();
        h.delete_route(route).await.unwrap();
    }
    let left = h.all_routes().await.unwrap();
    for dst in ["10.2.0.0/24", "10.3.0.0/24", "10.5.0.0/16", "fd00:2::/64"] {
        assert!(
            !left.iter().any(|r| r.dst == net(dst)),
            "{dst} still there: {left:#?}"
        );
    }
    // A route on a device that is gone is gone too.
    h.delete_route(&Route::new(net("10.6.0.0/24")).dev("nosuch0"))
        .await
        .unwrap();
}

#[tokio::test]
async fn default_route_via_gateway() {
    let mut guard = Namespaces::new();
    let (_, ns) = guard.create("default");
    let h = ns.handle().unwrap();
    with_device(&h).await;
    let default = Route::default_via(addr("10.1.0.254")).dev("d0");
    h.replace_route(&default).await.unwrap();
    let main = h.routes(TABLE_MAIN).await.unwrap();
    assert_eq!(
        main.iter().filter(|r| r.is_default()).collect::<Vec<_>>(),
        vec![&default]
    );
    h.delete_route(&default).await.unwrap();
    assert!(!h
        .routes(TABLE_MAIN)
        .await
        .unwrap()
        .iter()
        .any(|r| r.is_default()));
}

#[tokio::test]
async fn permanent_neighbours() {
    let mut guard = Namespaces::new();
    let (name, ns) = guard.create("neigh");
    let h = ns.handle().unwrap();
    with_device(&h).await;

    let first = Neighbour::permanent("d0", addr("10.1.0.7"), "0a:58:0a:01:00:07".parse().unwrap());
    h.add_neighbour(&first).await.unwrap();
    assert!(h.add_neighbour(&first).await.unwrap_err().is_exists());
    assert!(h.neighbours(Some("d0")).await.unwrap().contains(&first));

    let moved = Neighbour::permanent("d0", addr("10.1.0.7"), "0a:58:0a:01:00:99".parse().unwrap());
    h.replace_neighbour(&moved).await.unwrap();
    h.replace_neighbour(&moved).await.unwrap();
    let on_d0 = h.neighbours(Some("d0")).await.unwrap();
    assert_eq!(
        on_d0
            .iter()
            .filter(|n| n.ip == addr("10.1.0.7"))
            .collect::<Vec<_>>(),
        vec![&moved]
    );
    assert!(ip(&name, &["neigh", "show", "dev", "d0"]).contains("0a:58:0a:01:00:99 PERMANENT"));

    let v6 = Neighbour::permanent(
        "d0",
        addr("fd00:1::7"),
        "0a:58:00:00:00:07".parse().unwrap(),
    );
    h.replace_neighbour(&v6).await.unwrap();
    let all = h.neighbours(None).await.unwrap();
    assert!(
        all.iter()
            .any(|n| *n == v6 && n.state == NeighbourState::Permanent),
        "{all:?}"
    );

    for n in [&moved, &v6] {
        h.delete_neighbour("d0", n.ip).await.unwrap();
        h.delete_neighbour("d0", n.ip).await.unwrap();
    }
    h.delete_neighbour("nosuch0", addr("10.1.0.7"))
        .await
        .unwrap();
    assert!(h
        .neighbours(Some("d0"))
        .await
        .unwrap()
        .iter()
        .all(|n| n.state != NeighbourState::Permanent));
}
