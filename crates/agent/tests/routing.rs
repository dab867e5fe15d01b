//! Kernel tests of the routing planner + applier, and of the whole agent, each in
//! namespaces of its own (created and removed by a guard; root needed). Nothing
//! touches the machine's root namespace.
#![allow(clippy::print_stderr)] // convergence times are printed; asserted only against the 1 s bound

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use podnet_agent::apply::{self, Applier};
use podnet_agent::plan::{self, Local, Peer, Settings, PODNET_PROTO};
use podnet_linux::model::{
    FdbEntry, LinkKind, Mac, Neighbour, NeighbourState, Route, RouteProtocol, VethSpec, VxlanSpec,
    TABLE_MAIN,
};
use podnet_linux::{netns, Handle, NetNs};
use podnet_model::config::{ClusterConfigSpec, OverlayMode};
use podnet_model::k8s_openapi::api::core::v1::{Node, NodeAddress, NodeSpec, NodeStatus};
use podnet_model::{Kind, Object, ObjectRef};
use podnet_store::embedded::SqliteStore;
use podnet_store::{Api, Store};

fn require_root() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
        })
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "these tests need root (network namespaces): run them as root"
    );
}

/// Deletes the namespaces it made, also when the test fails.
struct Namespaces(Vec<String>);

impl Namespaces {
    fn create(&mut self, purpose: &str) -> NetNs {
        let name = format!("pnag-{}-{purpose}", std::process::id());
        self.0.push(name.clone());
        netns::create(&name).unwrap_or_else(|e| panic!("creating {name}: {e}"))
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = netns::delete(n);
        }
    }
}

/// A node namespace `me` whose `eth0` (172.18.0.2/24) is a veth to `other`.
async fn node_ns(me: &NetNs, other: &NetNs) -> Handle {
    let h = me.handle().unwrap();
    h.add_veth(&VethSpec::new("eth0", "eth0"), Some(other))
        .await
        .unwrap();
    h.add_address("eth0", "172.18.0.2/24".parse().unwrap())
        .await
        .unwrap();
    h.set_up("eth0").await.unwrap();
    h.set_up("lo").await.unwrap();
    h
}

fn peer(name: &str, ip: &str, cidr: &str, mac: &str) -> Peer {
    Peer {
        name: name.into(),
        ip: ip.parse().unwrap(),
        public_ip: ip.parse().unwrap(),
        pod_cidr: Some(cidr.parse().unwrap()),
        vtep_mac: Some(mac.parse().unwrap()),
    }
}

fn settings(mode: OverlayMode) -> Settings {
    let mut c = ClusterConfigSpec::default();
    c.overlay.mode = mode;
    Settings::from(&c)
}

async fn local(h: &Handle) -> Local {
    let ip: IpAddr = "172.18.0.2".parse().unwrap();
    let (dev, onlink) = apply::local_facts(h, ip).await.unwrap().unwrap();
    Local {
        name: "node-1".into(),
        ip,
        dev,
        onlink,
    }
}

async fn podnet_routes(h: &Handle) -> Vec<Route> {
    h.routes(TABLE_MAIN)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.protocol == PODNET_PROTO)
        .collect()
}

#[tokio::test]
async fn applier_owns_only_its_objects_and_applying_twice_changes_nothing() {
    require_root();
    let mut nss = Namespaces(Vec::new());
    let n1 = nss.create("apply-n1");
    let n2 = nss.create("apply-n2");
    let h = node_ns(&n1, &n2).await;

    // Foreign state the agent must never touch: a route of another protocol, a
    // permanent neighbour on eth0, a VXLAN device not named podnet.*; and a stale
    // podnet device of another VNI, which is the agent's to remove.
    let foreign_route = Route::new("10.99.0.0/24".parse().unwrap())
        .via("172.18.0.3".parse().unwrap())
        .dev("eth0")
        .protocol(RouteProtocol::STATIC);
    h.add_route(&foreign_route).await.unwrap();
    let foreign_neigh = Neighbour::permanent(
        "eth0",
        "172.18.0.77".parse().unwrap(),
        "02:00:00:00:00:77".parse().unwrap(),
    );
    h.replace_neighbour(&foreign_neigh).await.unwrap();
    let mut other = VxlanSpec::new("flannel.1", 1);
    other.port = 8473;
    h.add_vxlan(&other).await.unwrap();
    h.add_vxlan(&VxlanSpec::new("podnet.7", 7)).await.unwrap();

    let local = local(&h).await;
    assert_eq!(local.dev, "eth0");
    let mut nodes = vec![
        peer("node-1", "172.18.0.2", "10.244.0.0/24", "0e:50:ac:12:00:02"),
        peer("node-2", "172.18.0.3", "10.244.1.0/24", "0e:50:ac:12:00:03"),
        peer("node-3", "172.18.0.4", "10.244.2.0/24", "0e:50:ac:12:00:04"),
    ];
    let applier = Applier::new(h.clone());
    let vx = settings(OverlayMode::Vxlan);

    let desired = plan::plan(&vx, &local, &nodes).desired;
    let first = applier.apply(&desired).await.unwrap();
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    // link, address, 2 x (route, neighbour, fdb), the stale podnet.7.
    assert_eq!(first.changes.routes, 2);
    assert_eq!(first.changes.neighbours, 2);
    assert_eq!(first.changes.fdb, 2);
    assert_eq!(first.changes.addresses, 1);

    // What the kernel holds now, in its own words.
    let link = h.link("podnet.1").await.unwrap().expect("podnet.1 exists");
    assert_eq!(link.kind, LinkKind::Vxlan);
    assert_eq!(link.mtu, 1450);
    assert!(link.up);
    assert_eq!(link.mac, Some("0e:50:ac:12:00:02".parse().unwrap()));
    let v = link.vxlan.unwrap();
    assert_eq!((v.vni, v.port, v.learning), (1, 8472, false));
    assert_eq!(v.local, Some("172.18.0.2".parse().unwrap()));
    assert_eq!(v.dev.as_deref(), Some("eth0"));
    assert!(
        h.link("podnet.7").await.unwrap().is_none(),
        "stale podnet.7 removed"
    );
    let addrs = h.addresses("podnet.1").await.unwrap();
    assert!(
        addrs.iter().any(|a| a.addr.to_string() == "10.244.0.0/32"),
        "{addrs:?}"
    );
    let routes = podnet_routes(&h).await;
    let r1 = routes
        .iter()
        .find(|r| r.dst.to_string() == "10.244.1.0/24")
        .expect("route to node-2");
    assert_eq!(r1.gateway, Some("10.244.1.0".parse().unwrap()));
    assert_eq!(r1.dev.as_deref(), Some("podnet.1"));
    assert!(r1.onlink);
    let neigh = h.neighbours(Some("podnet.1")).await.unwrap();
    assert!(neigh.contains(&Neighbour::permanent(
        "podnet.1",
        "10.244.2.0".parse().unwrap(),
        "0e:50:ac:12:00:04".parse().unwrap()
    )));
    let fdb = h.fdb("podnet.1").await.unwrap();
    assert!(fdb.iter().any(|f| f.mac.to_string() == "0e:50:ac:12:00:03"
        && f.dst == Some("172.18.0.3".parse().unwrap())));

    let second = applier.apply(&desired).await.unwrap();
    assert_eq!(
        second.changes.total(),
        0,
        "second apply: {:?}",
        second.changes
    );
    assert!(second.errors.is_empty());
    let ifindex = link.index;

    // node-3 leaves; node-2 gets a new VTEP MAC and a new public IP.
    nodes.retain(|p| p.name != "node-3");
    nodes[1].vtep_mac = Some("0e:50:00:00:00:99".parse().unwrap());
    nodes[1].public_ip = "172.18.0.33".parse().unwrap();
    let desired = plan::plan(&vx, &local, &nodes).desired;
    let third = applier.apply(&desired).await.unwrap();
    assert!(third.errors.is_empty(), "{:?}", third.errors);
    let routes = podnet_routes(&h).await;
    assert_eq!(routes.len(), 1, "{routes:?}");
    let neigh: Vec<Neighbour> = h
        .neighbours(Some("podnet.1"))
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.state == NeighbourState::Permanent)
        .collect();
    assert_eq!(
        neigh,
        [Neighbour::permanent(
            "podnet.1",
            "10.244.1.0".parse().unwrap(),
            "0e:50:00:00:00:99".parse().unwrap()
        )]
    );
    let fdb: Vec<FdbEntry> = h.fdb("podnet.1").await.unwrap();
    let remotes: Vec<(Mac, Option<IpAddr>)> = fdb
        .iter()
        .filter(|f| f.mac != Mac::ZERO)
        .map(|f| (f.mac, f.dst))
        .collect();
    assert_eq!(
        remotes,
        [(
            "0e:50:00:00:00:99".parse().unwrap(),
            Some("172.18.0.33".parse().unwrap())
        )]
    );
    assert_eq!(applier.apply(&desired).await.unwrap().changes.total(), 0);
    assert_eq!(
        h.link("podnet.1").await.unwrap().unwrap().index,
        ifindex,
        "the device was kept, not recreated"
    );

    // Switching to host-gw: routes via node IPs, the VXLAN device removed.
    let hg = plan::plan(&settings(OverlayMode::HostGw), &local, &nodes).desired;
    let r = applier.apply(&hg).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(h.link("podnet.1").await.unwrap().is_none());
    let routes = podnet_routes(&h).await;
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].gateway, Some("172.18.0.3".parse().unwrap()));
    assert_eq!(routes[0].dev.as_deref(), Some("eth0"));
    assert_eq!(applier.apply(&hg).await.unwrap().changes.total(), 0);

    // The foreign objects are all still there.
    assert!(h
        .routes(TABLE_MAIN)
        .await
        .unwrap()
        .iter()
        .any(|r| r.dst == foreign_route.dst && r.protocol == RouteProtocol::STATIC));
    assert!(h
        .neighbours(Some("eth0"))
        .await
        .unwrap()
        .contains(&foreign_neigh));
    assert!(h.link("flannel.1").await.unwrap().is_some());
}

fn node(name: &str, ip: &str, cidr: &str, mac: Option<&str>) -> Object {
    let mut n = Node::default();
    n.metadata.name = Some(name.into());
    let mut ann = BTreeMap::new();
    if let Some(m) = mac {
        ann.insert("podnet.io/vtep-mac".to_string(), m.to_string());
    }
    n.metadata.annotations = Some(ann);
    n.spec = Some(NodeSpec {
        pod_cidr: Some(cidr.into()),
        ..Default::default()
    });
    n.status = Some(NodeStatus {
        addresses: Some(vec![NodeAddress {
            type_: "InternalIP".into(),
            address: ip.into(),
        }]),
        ..Default::default()
    });
    Object::Node(n)
}

/// The agent running in namespace `ns` on its own thread, until dropped.
struct RunningAgent {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningAgent {
    fn start(ns: &NetNs, store: Arc<dyn Store>, mode: OverlayMode) -> RunningAgent {
        let ns = NetNs::from_path(netns::path_of(ns.label())).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            ns.run(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let mut cluster = ClusterConfigSpec::default();
                    cluster.overlay.mode = mode;
                    let ip: IpAddr = "172.18.0.2".parse().unwrap();
                    let opts = podnet_agent::AgentOptions {
                        node: podnet_agent::NodeIdentity {
                            name: "node-1".into(),
                            ip,
                            labels: BTreeMap::new(),
                            annotations: podnet_agent::annotations::published(mode, ip),
                        },
                        cni: None,
                        routing: true,
                        masquerade: false,
                        anti_spoofing: false,
                        cluster,
                        metrics: Some("127.0.0.1:9150".parse().unwrap()),
                        service_proxy: false,
                        runtime: None,
                    };
                    podnet_agent::run(Api::new(store), opts, async {
                        let _ = rx.await;
                    })
                    .await
                    .expect("agent run");
                })
            })
            .unwrap();
        });
        RunningAgent {
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Polls `f` every 5 ms until it is true; returns how long that took.
async fn until<F, Fut>(what: &str, limit: Duration, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t0 = Instant::now();
    while !f().await {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    t0.elapsed()
}

/// `GET /metrics` from inside `ns` (the endpoint listens on the namespace's loopback).
fn scrape(ns: &NetNs) -> String {
    use std::io::{Read, Write};
    ns.run(|| {
        let mut s = std::net::TcpStream::connect("127.0.0.1:9150").expect("metrics endpoint");
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .unwrap()
}

fn metric(text: &str, line_prefix: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{line_prefix} missing in\n{text}"))
}

fn condition(api_node: Option<Object>) -> Option<(String, String)> {
    let Some(Object::Node(n)) = api_node else {
        return None;
    };
    n.status?
        .conditions?
        .into_iter()
        .find(|c| c.type_ == "podnet.io/HostGwUnreachablePeers")
        .map(|c| (c.status, c.message.unwrap_or_default()))
}

/// The whole agent in host-gw mode: a joining node is routed within 1 s, a node that
/// is not on this node's L2 network gets no route but a Node condition naming it, a
/// leaving node's route is removed within 1 s; the metrics endpoint counts it all; a
/// restarted agent changes nothing in the kernel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_host_gw_converges_and_reports_off_link_peers() {
    require_root();
    let mut nss = Namespaces(Vec::new());
    let n1 = nss.create("agent-hg-n1");
    let n2 = nss.create("agent-hg-n2");
    let h = node_ns(&n1, &n2).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let api = Api::new(store.clone());
    let agent = RunningAgent::start(&n1, store.clone(), OverlayMode::HostGw);
    until("node-1 registered", Duration::from_secs(10), || async {
        api.get(Kind::Node, None, "node-1").await.unwrap().is_some()
    })
    .await;

    api.put(&node("node-2", "172.18.0.3", "10.244.1.0/24", None))
        .await
        .unwrap();
    let took = until("route to node-2", Duration::from_secs(1), || async {
        podnet_routes(&h).await.iter().any(|r| {
            r.dst.to_string() == "10.244.1.0/24" && r.gateway == Some("172.18.0.3".parse().unwrap())
        })
    })
    .await;
    eprintln!("join converged in {took:?}");

    // A node on another network: no route, a condition on node-1, an error logged.
    api.put(&node("far", "10.9.0.5", "10.244.9.0/24", None))
        .await
        .unwrap();
    until(
        "condition True naming far",
        Duration::from_secs(5),
        || async {
            matches!(condition(api.get(Kind::Node, None, "node-1").await.unwrap()),
            Some((s, m)) if s == "True" && m.contains("far (10.9.0.5)"))
        },
    )
    .await;
    assert!(!podnet_routes(&h)
        .await
        .iter()
        .any(|r| r.dst.to_string() == "10.244.9.0/24"));
    let m = scrape(&n1);
    assert_eq!(metric(&m, "podnet_agent_unreachable_peers "), 1, "{m}");
    api.delete(&ObjectRef::new(Kind::Node, None, "far"))
        .await
        .unwrap();
    until("condition False", Duration::from_secs(5), || async {
        matches!(condition(api.get(Kind::Node, None, "node-1").await.unwrap()), Some((s, _)) if s == "False")
    })
    .await;

    // node-2 leaves.
    api.delete(&ObjectRef::new(Kind::Node, None, "node-2"))
        .await
        .unwrap();
    let took = until("node-2's route removed", Duration::from_secs(1), || async {
        podnet_routes(&h).await.is_empty()
    })
    .await;
    eprintln!("leave converged in {took:?}");
    api.put(&node("node-2", "172.18.0.3", "10.244.1.0/24", None))
        .await
        .unwrap();
    until("route to node-2 again", Duration::from_secs(1), || async {
        podnet_routes(&h).await.len() == 1
    })
    .await;

    // A heartbeat-like update of node-2 (labels, conditions) changes nothing routing
    // depends on: counted as skipped, the kernel is not even dumped.
    let m = scrape(&n1);
    let (reconciles, skipped) = (
        metric(&m, "podnet_agent_reconciles_total "),
        metric(&m, "podnet_agent_reconciles_skipped_total "),
    );
    let Some(Object::Node(mut n2)) = api.get(Kind::Node, None, "node-2").await.unwrap() else {
        panic!("node-2 is gone")
    };
    n2.metadata.labels = Some([("beat".to_string(), "1".to_string())].into());
    api.put(&Object::Node(n2)).await.unwrap();
    until(
        "the update counted as skipped",
        Duration::from_secs(2),
        || async { metric(&scrape(&n1), "podnet_agent_reconciles_skipped_total ") > skipped },
    )
    .await;
    assert_eq!(
        metric(&scrape(&n1), "podnet_agent_reconciles_total "),
        reconciles,
        "a heartbeat made the agent dump the kernel"
    );

    let m = scrape(&n1);
    assert!(m.starts_with("HTTP/1.1 200"), "{m}");
    assert!(metric(&m, "podnet_agent_reconciles_total ") >= 3, "{m}");
    assert_eq!(
        metric(&m, "podnet_agent_managed{kind=\"route\"} "),
        1,
        "{m}"
    );
    assert!(
        metric(&m, "podnet_agent_kernel_changes_total{kind=\"route\"} ") >= 3,
        "{m}"
    );
    assert!(
        m.contains("podnet_agent_reconcile_duration_seconds_count"),
        "{m}"
    );

    // Restart: the new agent finds everything in place and changes nothing.
    drop(agent);
    let _agent = RunningAgent::start(&n1, store.clone(), OverlayMode::HostGw);
    let t0 = Instant::now();
    let m = loop {
        let m = std::panic::catch_unwind(|| scrape(&n1)).unwrap_or_default();
        if m.contains("podnet_agent_reconciles_total 1") {
            break m;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "restarted agent never reconciled:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for kind in ["link", "address", "route", "neighbour", "fdb"] {
        assert_eq!(
            metric(
                &m,
                &format!("podnet_agent_kernel_changes_total{{kind=\"{kind}\"}} ")
            ),
            0,
            "restart changed {kind}s:\n{m}"
        );
    }
    assert_eq!(
        metric(&m, "podnet_agent_managed{kind=\"route\"} "),
        1,
        "{m}"
    );
}

/// The whole agent in vxlan mode: device, VTEP address, and per peer the route,
/// neighbour and FDB entry within 1 s of the Node appearing; 100 nodes at once
/// converge; removal cleans everything; a changed MAC is followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_vxlan_converges_on_join_leave_and_mac_change() {
    require_root();
    let mut nss = Namespaces(Vec::new());
    let n1 = nss.create("agent-vx-n1");
    let n2 = nss.create("agent-vx-n2");
    let h = node_ns(&n1, &n2).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let api = Api::new(store.clone());
    let _agent = RunningAgent::start(&n1, store.clone(), OverlayMode::Vxlan);
    until("node-1 registered", Duration::from_secs(10), || async {
        api.get(Kind::Node, None, "node-1").await.unwrap().is_some()
    })
    .await;
    // The controller's part: node-1's pod CIDR.
    let Some(Object::Node(mut me)) = api.get(Kind::Node, None, "node-1").await.unwrap() else {
        panic!()
    };
    assert_eq!(
        me.metadata.annotations.as_ref().unwrap()["podnet.io/vtep-mac"],
        "0e:50:ac:12:00:02"
    );
    me.spec = Some(NodeSpec {
        pod_cidr: Some("10.244.0.0/24".into()),
        ..Default::default()
    });
    api.put(&Object::Node(me)).await.unwrap();
    until("VTEP address", Duration::from_secs(2), || async {
        h.addresses("podnet.1")
            .await
            .map(|a| a.iter().any(|a| a.addr.to_string() == "10.244.0.0/32"))
            .unwrap_or(false)
    })
    .await;

    let n = 100;
    let t0 = Instant::now();
    for i in 0..n {
        api.put(&node(
            &format!("peer-{i}"),
            &format!("172.18.1.{}", i + 1),
            &format!("10.244.{}.0/24", i + 1),
            Some(&format!("0e:50:ac:12:01:{:02x}", i + 1)),
        ))
        .await
        .unwrap();
    }
    let written = t0.elapsed();
    let took = until("100 peers programmed", Duration::from_secs(5), || async {
        podnet_routes(&h).await.len() == n
            && h.fdb("podnet.1").await.unwrap().len() >= n
            && h.neighbours(Some("podnet.1")).await.unwrap().len() >= n
    })
    .await;
    eprintln!("100 nodes written in {written:?}, kernel complete {took:?} after the last write");

    // A changed VTEP MAC is followed.
    api.put(&node(
        "peer-0",
        "172.18.1.1",
        "10.244.1.0/24",
        Some("0e:50:00:00:00:42"),
    ))
    .await
    .unwrap();
    until(
        "new MAC in neighbour and FDB",
        Duration::from_secs(1),
        || async {
            let want: Mac = "0e:50:00:00:00:42".parse().unwrap();
            let ip: IpAddr = "10.244.1.0".parse().unwrap();
            h.neighbours(Some("podnet.1"))
                .await
                .unwrap()
                .iter()
                .any(|x| x.ip == ip && x.mac == Some(want))
                && h.fdb("podnet.1")
                    .await
                    .unwrap()
                    .iter()
                    .any(|f| f.mac == want)
                && !h
                    .fdb("podnet.1")
                    .await
                    .unwrap()
                    .iter()
                    .any(|f| f.mac.to_string() == "0e:50:ac:12:01:01")
        },
    )
    .await;

    // All leave at once.
    for i in 0..n {
        api.delete(&ObjectRef::new(Kind::Node, None, &format!("peer-{i}")))
            .await
            .unwrap();
    }
    until("every peer removed", Duration::from_secs(2), || async {
        podnet_routes(&h).await.is_empty()
            && h.fdb("podnet.1").await.unwrap().is_empty()
            && !h
                .neighbours(Some("podnet.1"))
                .await
                .unwrap()
                .iter()
                .any(|x| x.state == NeighbourState::Permanent)
    })
    .await;
    let m = scrape(&n1);
    assert_eq!(metric(&m, "podnet_agent_managed{kind=\"fdb\"} "), 0, "{m}");
    assert_eq!(metric(&m, "podnet_agent_reconcile_errors_total "), 0, "{m}");
    let _: IpNet = "10.244.0.0/24".parse().unwrap();
}
