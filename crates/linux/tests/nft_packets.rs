//! Behaviour of committed rules with real TCP connections between test
//! namespaces: DNAT of a virtual IP to backends chosen by numgen, session
//! affinity (both ways of expressing it), reject, masquerade.
//!
//! Topology (all in namespaces this test creates):
//! `client` 10.244.2.2 — 10.244.2.1 `node` 10.244.1.1 — 10.244.1.2/.3 `server`.
//! The tables live in `node`; clients connect from `node` (output hook) or
//! from `client` (prerouting, forwarded).

mod common;
mod nft_support;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::{ip, Namespaces};
use nft_support::{connect, nft_ok, Server};
use podnet_linux::nft::*;
use podnet_linux::{sysctl, NetNs};

struct Topo {
    _guard: Namespaces,
    node_name: String,
    node: NetNs,
    server_name: String,
    client: NetNs,
}

fn topo(tag: &str) -> Topo {
    let mut guard = Namespaces::new();
    let (node_name, node) = guard.create(&format!("{tag}-node"));
    let (server_name, _server) = guard.create(&format!("{tag}-srv"));
    let (client_name, client) = guard.create(&format!("{tag}-cli"));
    let n = node_name.as_str();
    ip(
        n,
        &[
            "link",
            "add",
            "v0",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &server_name,
        ],
    );
    ip(
        n,
        &[
            "link",
            "add",
            "v1",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &client_name,
        ],
    );
    for (ns, dev, addr) in [
        (n, "v0", "10.244.1.1/24"),
        (n, "v1", "10.244.2.1/24"),
        (server_name.as_str(), "eth0", "10.244.1.2/24"),
        (server_name.as_str(), "eth0", "10.244.1.3/24"),
        (client_name.as_str(), "eth0", "10.244.2.2/24"),
    ] {
        ip(ns, &["addr", "add", addr, "dev", dev]);
    }
    for (ns, dev) in [
        (n, "v0"),
        (n, "v1"),
        (n, "lo"),
        (server_name.as_str(), "eth0"),
        (server_name.as_str(), "lo"),
        (client_name.as_str(), "eth0"),
        (client_name.as_str(), "lo"),
    ] {
        ip(ns, &["link", "set", dev, "up"]);
    }
    ip(
        &server_name,
        &["route", "add", "default", "via", "10.244.1.1"],
    );
    ip(
        &client_name,
        &["route", "add", "default", "via", "10.244.2.1"],
    );
    // The service CIDR is routed towards the backends, as on a node.
    ip(n, &["route", "add", "10.96.0.0/12", "dev", "v0"]);
    sysctl::set(&node, "net.ipv4.ip_forward", "1").unwrap();
    Topo {
        _guard: guard,
        node_name,
        node,
        server_name,
        client,
    }
}

fn sa(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(ip), port))
}

const VIP: [u8; 4] = [10, 96, 0, 10];

/// `ip daddr . meta l4proto . th dport vmap @services` from prerouting and
/// output, the service's chain `svc` doing `rules`, backends
/// 10.244.1.2:8080 and 10.244.1.3:8081 in map `backends` (by index).
fn service_table(rules: Vec<Rule>) -> TableState {
    let mut st = TableState::new(Table::new(Family::Ip, "podnet"));
    st.add_set(Set::map(
        "services",
        vec![
            DataType::Ipv4Addr,
            DataType::InetProto,
            DataType::InetService,
        ],
        SetData::Verdict,
    ));
    st.insert_element(
        "services",
        Element::verdict(
            vec![
                Value::Ipv4(VIP.into()),
                Value::Proto(proto::TCP),
                Value::Port(80),
            ],
            Verdict::Jump("svc".into()),
        ),
    );
    st.add_set(Set::map(
        "backends",
        vec![DataType::Mark],
        SetData::Values(vec![DataType::Ipv4Addr, DataType::InetService]),
    ));
    for (i, (last, port)) in [(2u8, 8080u16), (3, 8081)].into_iter().enumerate() {
        st.insert_element(
            "backends",
            Element::map(
                vec![Value::U32(i as u32)],
                vec![
                    Value::Ipv4(Ipv4Addr::new(10, 244, 1, last)),
                    Value::Port(port),
                ],
            ),
        );
    }
    let lookup = Rule::new(vec![Stmt::VerdictMap {
        fields: vec![Field::IpDaddr, Field::MetaL4Proto, Field::ThDport],
        map: "services".into(),
    }]);
    st.add_chain(
        Chain::base("prerouting", ChainType::Nat, Hook::Prerouting, -100),
        vec![lookup.clone()],
    );
    st.add_chain(
        Chain::base("output", ChainType::Nat, Hook::Output, -100),
        vec![lookup],
    );
    st.add_chain(Chain::regular("svc"), rules);
    st
}

fn dnat_random(remember: Option<Remember>) -> Stmt {
    Stmt::Dnat {
        to: NatTarget::Map {
            fields: vec![Field::NumgenRandom {
                modulus: 2,
                offset: 0,
            }],
            map: "backends".into(),
            data: NatData::Ip4Port,
            remember,
        },
        flags: NatFlags::default(),
    }
}

fn affinity_key() -> Vec<Field> {
    vec![Field::IpSaddr, Field::IpDaddr, Field::ThDport]
}

fn affinity_map() -> Set {
    let mut aff = Set::map(
        "affinity",
        vec![
            DataType::Ipv4Addr,
            DataType::Ipv4Addr,
            DataType::InetService,
        ],
        SetData::Values(vec![DataType::Ipv4Addr, DataType::InetService]),
    );
    aff.flags.timeout = true;
    aff.flags.dynamic = true;
    aff.size = Some(65_535);
    aff
}

/// `dnat to ip saddr . ip daddr . th dport map @affinity` (no dnat, and
/// the rule stops, when the client has no entry yet).
fn dnat_from_affinity() -> Stmt {
    Stmt::Dnat {
        to: NatTarget::Map {
            fields: affinity_key(),
            map: "affinity".into(),
            data: NatData::Ip4Port,
            remember: None,
        },
        flags: NatFlags::default(),
    }
}

fn backends_seen(from: &NetNs, n: usize) -> Vec<u16> {
    (0..n)
        .map(|_| connect(from, sa(VIP, 80)).expect("connecting to the virtual IP"))
        .collect()
}

#[test]
fn dnat_spreads_connections_to_a_virtual_ip_over_the_backends() {
    let t = topo("dnat");
    let _a = Server::start(&t.server_name, sa([10, 244, 1, 2], 8080));
    let _b = Server::start(&t.server_name, sa([10, 244, 1, 3], 8081));
    // Before the table: nothing answers on the virtual IP.
    assert!(connect(&t.node, sa(VIP, 80)).is_err());

    let nft = Nft::in_netns(&t.node).unwrap();
    let mut applier = Applier::new();
    applier
        .apply(
            &nft,
            service_table(vec![Rule::new(vec![dnat_random(None)])]),
        )
        .unwrap();
    for from in [&t.node, &t.client] {
        let ports = backends_seen(from, 24);
        assert!(
            ports.contains(&8080) && ports.contains(&8081),
            "numgen should spread 24 connections over both backends: {ports:?}"
        );
    }
    // The server sees the real client address (no masquerade).
    assert!(_a
        .peers()
        .iter()
        .chain(_b.peers().iter())
        .any(|p| p.ip() == Ipv4Addr::new(10, 244, 2, 2)));
}

#[test]
fn affinity_in_one_rule_pins_a_client_to_its_backend() {
    let t = topo("aff1");
    let _a = Server::start(&t.server_name, sa([10, 244, 1, 2], 8080));
    let _b = Server::start(&t.server_name, sa([10, 244, 1, 3], 8081));
    let mut st = service_table(vec![
        Rule::new(vec![dnat_from_affinity()]),
        Rule::new(vec![dnat_random(Some(Remember {
            set: "affinity".into(),
            key: affinity_key(),
            timeout: Some(Duration::from_secs(600)),
        }))]),
    ]);
    st.add_set(affinity_map());
    let nft = Nft::in_netns(&t.node).unwrap();
    Applier::new().apply(&nft, st).unwrap();

    for from in [&t.node, &t.client] {
        let ports = backends_seen(from, 12);
        assert!(
            ports.iter().all(|p| *p == ports[0]),
            "one client, one backend: {ports:?}"
        );
    }
    // The map holds one entry per client, pointing at its backend. (The
    // chain itself is not listed: nft 1.0.6 cannot print this rule.)
    let listed = nft_ok(&t.node_name, &["list", "map", "ip", "podnet", "affinity"]);
    assert!(
        listed.contains("10.244.1.1 . 10.96.0.10 . 80 ")
            && listed.contains("10.244.2.2 . 10.96.0.10 . 80 "),
        "{listed}"
    );
}

#[test]
fn affinity_recorded_after_nat_pins_a_client_and_lists_cleanly() {
    let t = topo("aff2");
    let _a = Server::start(&t.server_name, sa([10, 244, 1, 2], 8080));
    let _b = Server::start(&t.server_name, sa([10, 244, 1, 3], 8081));
    let mut st = service_table(vec![
        Rule::new(vec![dnat_from_affinity()]),
        Rule::new(vec![dnat_random(None)]),
    ]);
    st.add_set(affinity_map());
    // After the nat hooks the packet carries the chosen backend: remember
    // it for new DNATed connections.
    let remember = Rule::new(vec![
        Stmt::FlagsAny {
            field: Field::CtState,
            flags: ct_state::NEW,
            negate: false,
        },
        Stmt::FlagsAny {
            field: Field::CtStatus,
            flags: ct_status::DNAT,
            negate: false,
        },
        Stmt::DynsetUpdate {
            set: "affinity".into(),
            key: vec![
                Field::IpSaddr,
                Field::CtOriginalIpDaddr,
                Field::CtOriginalProtoDst,
            ],
            data: Some(vec![Field::IpDaddr, Field::ThDport]),
            timeout: Some(Duration::from_secs(600)),
        },
    ]);
    for (name, hook) in [
        ("remember-fwd", Hook::Forward),
        ("remember-out", Hook::Output),
    ] {
        st.add_chain(
            Chain::base(name, ChainType::Filter, hook, 0),
            vec![remember.clone()],
        );
    }
    let nft = Nft::in_netns(&t.node).unwrap();
    Applier::new().apply(&nft, st).unwrap();

    for from in [&t.node, &t.client] {
        let ports = backends_seen(from, 12);
        assert!(
            ports.iter().all(|p| *p == ports[0]),
            "one client, one backend: {ports:?}"
        );
    }
    let listed = nft_ok(&t.node_name, &["list", "table", "ip", "podnet"]);
    assert!(
        listed.contains(
            "ct state new ct status dnat update @affinity { ip saddr . ct original ip daddr . ct original proto-dst timeout 10m : ip daddr . th dport }"
        ),
        "{listed}"
    );
    assert!(listed.contains("10.244.2.2 . 10.96.0.10 . 80 "), "{listed}");
}

#[test]
fn reject_refuses_a_connection_at_once() {
    let t = topo("reject");
    let _a = Server::start(&t.server_name, sa([10, 244, 1, 2], 8080));
    let mut st = TableState::new(Table::new(Family::Inet, "podnet"));
    let rule = |kind| {
        Rule::new(vec![
            Stmt::Match {
                field: Field::IpDaddr,
                op: CmpOp::Eq,
                value: Value::Ipv4(Ipv4Addr::new(10, 244, 1, 2)),
            },
            Stmt::Match {
                field: Field::MetaL4Proto,
                op: CmpOp::Eq,
                value: Value::Proto(proto::TCP),
            },
            Stmt::Reject(kind),
        ])
    };
    st.add_chain(
        Chain::base("output", ChainType::Filter, Hook::Output, 0),
        vec![rule(Reject::TcpReset)],
    );
    st.add_chain(
        Chain::base("forward", ChainType::Filter, Hook::Forward, 0),
        vec![rule(Reject::IcmpxPortUnreachable)],
    );
    // Reachable before.
    assert_eq!(connect(&t.node, sa([10, 244, 1, 2], 8080)).unwrap(), 8080);
    let nft = Nft::in_netns(&t.node).unwrap();
    Applier::new().apply(&nft, st).unwrap();
    for from in [&t.node, &t.client] {
        let started = Instant::now();
        let err = connect(from, sa([10, 244, 1, 2], 8080)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        assert!(started.elapsed() < Duration::from_millis(500));
    }
}

#[test]
fn masquerade_changes_the_source_the_server_sees_unless_excluded() {
    let t = topo("masq");
    let server = Server::start(&t.server_name, sa([10, 244, 1, 2], 8080));
    let last_peer = |server: &Server| server.peers().last().unwrap().ip();
    connect(&t.client, sa([10, 244, 1, 2], 8080)).unwrap();
    assert_eq!(last_peer(&server), Ipv4Addr::new(10, 244, 2, 2));

    let mut st = TableState::new(Table::new(Family::Ip, "podnet"));
    let mut no_masq = Set::new("no-masquerade", vec![DataType::Ipv4Addr]);
    no_masq.flags.interval = true;
    st.add_set(no_masq);
    st.insert_element(
        "no-masquerade",
        Element::prefix("10.96.0.0/12".parse().unwrap()),
    );
    st.add_chain(
        Chain::base("postrouting", ChainType::Nat, Hook::Postrouting, 100),
        vec![Rule::new(vec![
            Stmt::Prefix {
                field: Field::IpSaddr,
                op: CmpOp::Eq,
                net: "10.244.2.0/24".parse().unwrap(),
            },
            Stmt::InSet {
                fields: vec![Field::IpDaddr],
                set: "no-masquerade".into(),
                negate: true,
            },
            Stmt::Masquerade { fully_random: true },
        ])],
    );
    let nft = Nft::in_netns(&t.node).unwrap();
    let mut applier = Applier::new();
    applier.apply(&nft, st.clone()).unwrap();
    connect(&t.client, sa([10, 244, 1, 2], 8080)).unwrap();
    assert_eq!(last_peer(&server), Ipv4Addr::new(10, 244, 1, 1));

    // Excluding the destination is one element in one small transaction.
    st.insert_element(
        "no-masquerade",
        Element::prefix("10.244.1.0/24".parse().unwrap()),
    );
    let stats = applier.apply(&nft, st).unwrap();
    assert_eq!((stats.ops, stats.elements_added), (1, 1), "{stats:?}");
    connect(&t.client, sa([10, 244, 1, 2], 8080)).unwrap();
    assert_eq!(last_peer(&server), Ipv4Addr::new(10, 244, 2, 2));
}

/// `ip netns exec NS ping -c1 -W1 [-I SRC] DST`, up to `attempts` times.
fn ping_from(netns: &str, src: Option<&str>, dst: &str, attempts: usize) -> bool {
    common::require_tool("ping", "iputils-ping");
    (0..attempts).any(|_| {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", netns, "ping", "-c1", "-W1"]);
        if let Some(src) = src {
            cmd.args(["-I", src]);
        }
        cmd.arg(dst)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("running ping")
            .success()
    })
}

/// Issue 5's anti-spoofing in a `bridge` table, with real packets: pods on
/// a node bridge; a pod using an address that is not its own is dropped
/// (IP rule), and so are its ARP answers for it (ARP rule).
#[test]
fn bridge_anti_spoofing_drops_packets_from_a_foreign_source() {
    let mut guard = Namespaces::new();
    let (node, node_ns) = guard.create("spoof-node");
    let (pod_a, _a) = guard.create("spoof-a");
    let (pod_b, _b) = guard.create("spoof-b");
    ip(&node, &["link", "add", "br0", "type", "bridge"]);
    for (dev, pod, addr) in [
        ("vethA", &pod_a, "10.244.1.2/24"),
        ("vethB", &pod_b, "10.244.1.3/24"),
    ] {
        ip(
            &node,
            &[
                "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", pod,
            ],
        );
        ip(&node, &["link", "set", dev, "master", "br0"]);
        ip(&node, &["link", "set", dev, "up"]);
        ip(pod, &["addr", "add", addr, "dev", "eth0"]);
        ip(pod, &["link", "set", "eth0", "up"]);
    }
    ip(&node, &["link", "set", "br0", "up"]);
    // Pod A also claims an address that is not its own.
    ip(&pod_a, &["addr", "add", "10.244.1.99/24", "dev", "eth0"]);
    assert!(ping_from(&pod_a, Some("10.244.1.2"), "10.244.1.3", 3));
    // Without rules, the foreign address works both ways (the control).
    assert!(ping_from(&pod_a, Some("10.244.1.99"), "10.244.1.3", 2));
    assert!(ping_from(&pod_b, None, "10.244.1.99", 2));
    ip(&pod_b, &["neigh", "flush", "all"]);

    let table = |rule: Rule| {
        let mut st = TableState::new(Table::new(Family::Bridge, "podnet"));
        st.add_set(Set::new(
            "pod-sources",
            vec![DataType::IfName, DataType::Ipv4Addr],
        ));
        for (dev, last) in [("vethA", 2), ("vethB", 3)] {
            st.insert_element(
                "pod-sources",
                Element::key(vec![
                    Value::IfName(dev.into()),
                    Value::Ipv4(Ipv4Addr::new(10, 244, 1, last)),
                ]),
            );
        }
        st.add_chain(
            Chain::base("prerouting", ChainType::Filter, Hook::Prerouting, -200),
            vec![rule],
        );
        st
    };
    let spoof_rule = |source: Field| {
        Rule::new(vec![
            Stmt::IfNamePrefix {
                field: Field::MetaIifName,
                op: CmpOp::Eq,
                prefix: "veth".into(),
            },
            Stmt::InSet {
                fields: vec![Field::MetaIifName, source],
                set: "pod-sources".into(),
                negate: true,
            },
            Stmt::Counter,
            Stmt::Verdict(Verdict::Drop),
        ])
    };
    let nft = Nft::in_netns(&node_ns).unwrap();
    let mut applier = Applier::new();

    // The IP rule: A's own address passes, the foreign one is dropped.
    applier
        .apply(&nft, table(spoof_rule(Field::IpSaddr)))
        .unwrap();
    assert!(ping_from(&pod_a, Some("10.244.1.2"), "10.244.1.3", 2));
    assert!(!ping_from(&pod_a, Some("10.244.1.99"), "10.244.1.3", 1));

    // The ARP rule alone (the chain is flushed and refilled): B cannot
    // learn where 10.244.1.99 is, because A's ARP answer is dropped.
    let stats = applier
        .apply(&nft, table(spoof_rule(Field::ArpSaddrIp)))
        .unwrap();
    assert_eq!((stats.full, stats.chains_flushed), (false, 1), "{stats:?}");
    ip(&pod_b, &["neigh", "flush", "all"]);
    assert!(ping_from(&pod_b, None, "10.244.1.2", 2));
    assert!(!ping_from(&pod_b, None, "10.244.1.99", 2));
    let listed = nft_ok(&node, &["list", "chain", "bridge", "podnet", "prerouting"]);
    assert!(
        !listed.contains("packets 0 bytes 0"),
        "the drop rule counted nothing: {listed}"
    );
}
