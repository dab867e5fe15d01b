//! Kernel tests of `podnet_linux::nft`: what is committed is what `nft`
//! lists, incremental applies send only the change, a failing operation is
//! named and leaves the kernel as it was. Each test works in its own fresh
//! network namespace (nothing touches the root namespace); these tests list
//! the kernel's state with `nft` as a probe, the library never does.

mod common;
mod nft_support;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::Namespaces;
use nft_support::{lines, nft_cmd, nft_ok};
use podnet_linux::nft::*;

fn ip4(a: u8, b: u8, c: u8, d: u8) -> Value {
    Value::Ipv4(Ipv4Addr::new(a, b, c, d))
}

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

/// A service-proxy-shaped table: a vmap keyed by `ip daddr . meta l4proto
/// . th dport`, a chain per service doing dnat via a numgen-keyed map, an
/// egress masquerade with an interval set, a reject, a dynset.
fn proxy_table() -> TableState {
    let mut st = TableState::new(Table::new(Family::Ip, "podnet"));
    let services = Set::map(
        "services",
        vec![
            DataType::Ipv4Addr,
            DataType::InetProto,
            DataType::InetService,
        ],
        SetData::Verdict,
    );
    st.add_set(services);
    st.insert_element(
        "services",
        Element::verdict(
            vec![
                ip4(10, 96, 0, 10),
                Value::Proto(proto::TCP),
                Value::Port(80),
            ],
            Verdict::Jump("svc-web".into()),
        ),
    );
    st.insert_element(
        "services",
        Element::verdict(
            vec![
                ip4(10, 96, 0, 11),
                Value::Proto(proto::TCP),
                Value::Port(80),
            ],
            Verdict::Goto("no-endpoints".into()),
        ),
    );
    st.add_set(Set::map(
        "web-backends",
        vec![DataType::Mark],
        SetData::Values(vec![DataType::Ipv4Addr, DataType::InetService]),
    ));
    for (i, last) in [2u8, 3].into_iter().enumerate() {
        st.insert_element(
            "web-backends",
            Element::map(
                vec![Value::U32(i as u32)],
                vec![ip4(10, 244, 1, last), Value::Port(8080)],
            ),
        );
    }
    let mut no_masq = Set::new("no-masquerade", vec![DataType::Ipv4Addr]);
    no_masq.flags.interval = true;
    st.add_set(no_masq);
    for cidr in ["10.244.0.0/16", "10.96.0.0/12"] {
        st.insert_element("no-masquerade", Element::prefix(net(cidr)));
    }
    let mut seen = Set::new("seen", vec![DataType::Ipv4Addr, DataType::InetService]);
    seen.flags.timeout = true;
    seen.flags.dynamic = true;
    seen.size = Some(1024);
    seen.timeout = Some(Duration::from_secs(60));
    st.add_set(seen);

    let lookup = Stmt::VerdictMap {
        fields: vec![Field::IpDaddr, Field::MetaL4Proto, Field::ThDport],
        map: "services".into(),
    };
    st.add_chain(
        Chain::base("prerouting", ChainType::Nat, Hook::Prerouting, -100),
        vec![Rule::new(vec![lookup.clone()]).with_comment("services")],
    );
    st.add_chain(
        Chain::base("output", ChainType::Nat, Hook::Output, -100),
        vec![Rule::new(vec![lookup])],
    );
    st.add_chain(
        Chain::regular("svc-web"),
        vec![Rule::new(vec![
            Stmt::DynsetUpdate {
                set: "seen".into(),
                key: vec![Field::IpSaddr, Field::ThDport],
                data: None,
                timeout: None,
            },
            Stmt::Dnat {
                to: NatTarget::Map {
                    fields: vec![Field::NumgenRandom {
                        modulus: 2,
                        offset: 0,
                    }],
                    map: "web-backends".into(),
                    data: NatData::Ip4Port,
                    remember: None,
                },
                flags: NatFlags::default(),
            },
        ])],
    );
    st.add_chain(Chain::regular("no-endpoints"), vec![]);
    st.add_chain(
        Chain::base("filter-output", ChainType::Filter, Hook::Output, 0),
        vec![Rule::new(vec![
            Stmt::Match {
                field: Field::IpDaddr,
                op: CmpOp::Eq,
                value: ip4(10, 96, 0, 11),
            },
            Stmt::Match {
                field: Field::MetaL4Proto,
                op: CmpOp::Eq,
                value: Value::Proto(proto::TCP),
            },
            Stmt::Counter,
            Stmt::Reject(Reject::TcpReset),
        ])],
    );
    st.add_chain(
        Chain::base("postrouting", ChainType::Nat, Hook::Postrouting, 100),
        vec![masquerade_pods_rule()],
    );
    st
}

#[test]
fn committed_table_is_what_nft_lists() {
    let mut guard = Namespaces::new();
    let (name, ns) = guard.create("nft-list");
    let nft = Nft::in_netns(&ns).unwrap();
    let mut applier = Applier::new();
    let stats = applier.apply(&nft, proxy_table()).unwrap();
    assert!(stats.full);

    let listed = lines(&nft_ok(&name, &["list", "table", "ip", "podnet"]));
    let want = [
        "map services {",
        "type ipv4_addr . inet_proto . inet_service : verdict",
        "elements = { 10.96.0.10 . tcp . 80 : jump svc-web,",
        "10.96.0.11 . tcp . 80 : goto no-endpoints }",
        "map web-backends {",
        "type mark : ipv4_addr . inet_service",
        "elements = { 0x00000000 : 10.244.1.2 . 8080, 0x00000001 : 10.244.1.3 . 8080 }",
        "set no-masquerade {",
        "type ipv4_addr",
        "flags interval",
        "elements = { 10.96.0.0/12, 10.244.0.0/16 }",
        "set seen {",
        "type ipv4_addr . inet_service",
        "size 1024",
        "flags dynamic,timeout",
        "timeout 1m",
        "chain prerouting {",
        "type nat hook prerouting priority dstnat; policy accept;",
        "ip daddr . meta l4proto . th dport vmap @services comment \"services\"",
        "chain svc-web {",
        "update @seen { ip saddr . th dport } dnat ip to numgen random mod 2 map @web-backends",
        "chain filter-output {",
        "type filter hook output priority filter; policy accept;",
        "ip daddr 10.96.0.11 meta l4proto tcp counter packets 0 bytes 0 reject with tcp reset",
        "chain postrouting {",
        "type nat hook postrouting priority srcnat; policy accept;",
        "ip saddr 10.244.0.0/16 ip daddr != @no-masquerade masquerade fully-random",
    ];
    for line in want {
        assert!(
            listed.iter().any(|l| l == line),
            "nft does not list {line:?}; it lists:\n{}",
            listed.join("\n")
        );
    }
    // Applying the same state again sends nothing.
    let again = applier.apply(&nft, proxy_table()).unwrap();
    assert_eq!((again.full, again.ops, again.messages), (false, 0, 0));
}

#[test]
fn incremental_apply_sends_only_the_change_to_a_large_map() {
    let mut guard = Namespaces::new();
    let (name, ns) = guard.create("nft-incr");
    let nft = Nft::in_netns(&ns).unwrap();
    let mut st = TableState::new(Table::new(Family::Ip, "podnet"));
    st.add_set(Set::map(
        "backends",
        vec![DataType::Ipv4Addr, DataType::InetService, DataType::Mark],
        SetData::Values(vec![DataType::Ipv4Addr, DataType::InetService]),
    ));
    for i in 0..100_000u32 {
        let vip = Ipv4Addr::from(0x0a60_0000 + i / 2);
        st.insert_element(
            "backends",
            Element::map(
                vec![Value::Ipv4(vip), Value::Port(80), Value::U32(i % 2)],
                vec![
                    Value::Ipv4(Ipv4Addr::from(0x0af4_0000 + i)),
                    Value::Port(8080),
                ],
            ),
        );
    }
    let mut applier = Applier::new();
    let full = applier.apply(&nft, st.clone()).unwrap();
    assert!(full.full);
    assert_eq!(full.elements_added, 100_000);
    assert!(full.messages > 10, "{full:?}");

    // One new element: one op, one message (plus batch begin/end).
    let key = vec![ip4(10, 200, 0, 1), Value::Port(443), Value::U32(0)];
    st.insert_element(
        "backends",
        Element::map(key, vec![ip4(10, 244, 9, 9), Value::Port(8443)]),
    );
    let one = applier.apply(&nft, st.clone()).unwrap();
    assert_eq!(
        (
            one.full,
            one.ops,
            one.messages,
            one.elements_added,
            one.elements_deleted
        ),
        (false, 1, 3, 1, 0),
        "{one:?}"
    );
    assert!(one.bytes < 300, "{one:?}");
    let got = nft_ok(
        &name,
        &[
            "get",
            "element",
            "ip",
            "podnet",
            "backends",
            "{ 10.200.0.1 . 443 . 0x0 }",
        ],
    );
    assert!(got.contains("10.244.9.9 . 8443"), "{got}");

    // A changed element is deleted and re-added in the same transaction.
    let changed = vec![
        Value::Ipv4(Ipv4Addr::from(0x0a60_0000)),
        Value::Port(80),
        Value::U32(0),
    ];
    st.insert_element(
        "backends",
        Element::map(changed, vec![ip4(10, 244, 7, 7), Value::Port(9090)]),
    );
    let change = applier.apply(&nft, st).unwrap();
    assert_eq!(
        (change.elements_deleted, change.elements_added),
        (1, 1),
        "{change:?}"
    );
    let got = nft_ok(
        &name,
        &[
            "get",
            "element",
            "ip",
            "podnet",
            "backends",
            "{ 10.96.0.0 . 80 . 0x0 }",
        ],
    );
    assert!(got.contains("10.244.7.7 . 9090"), "{got}");

    // The same through TableChange: no walk over the 100k elements.
    let key = vec![ip4(10, 96, 0, 0), Value::Port(80), Value::U32(0)];
    let gone = vec![ip4(10, 200, 0, 1), Value::Port(443), Value::U32(0)];
    let change = TableChange {
        upsert_elements: vec![(
            "backends".into(),
            Element::map(key.clone(), vec![ip4(10, 244, 6, 6), Value::Port(7070)]),
        )],
        remove_elements: vec![("backends".into(), gone)],
        ..TableChange::default()
    };
    let stats = applier.apply_change(&nft, change).unwrap();
    assert_eq!(
        (stats.ops, stats.elements_deleted, stats.elements_added),
        (2, 2, 1),
        "{stats:?}"
    );
    let get = |key: &str| nft_cmd(&name, &["get", "element", "ip", "podnet", "backends", key]);
    let (_, got) = get("{ 10.96.0.0 . 80 . 0x0 }");
    assert!(got.contains("10.244.6.6 . 7070"), "{got}");
    assert!(!get("{ 10.200.0.1 . 443 . 0x0 }").0);
    let applied = &applier.applied().unwrap().sets["backends"].elements[&key];
    assert_eq!(
        applied.data,
        Some(ElemData::Values(vec![
            ip4(10, 244, 6, 6),
            Value::Port(7070)
        ]))
    );
    // Without an applied state, a change is refused (the caller resyncs).
    applier.forget();
    let err = applier
        .apply_change(&nft, TableChange::default())
        .unwrap_err();
    assert!(
        err.to_string().contains("apply the full desired state"),
        "{err}"
    );
}

#[test]
fn chains_and_sets_come_and_go_in_a_valid_order() {
    let mut guard = Namespaces::new();
    let (name, ns) = guard.create("nft-order");
    let nft = Nft::in_netns(&ns).unwrap();
    let mut applier = Applier::new();
    applier.apply(&nft, proxy_table()).unwrap();

    // Remove the web service: its vmap element, its chain, its map; add
    // another service with a new chain reached through the vmap.
    let mut st = proxy_table();
    st.chains.remove("svc-web");
    st.sets.remove("web-backends");
    let services = st.sets.get_mut("services").unwrap();
    services.elements.remove(&vec![
        ip4(10, 96, 0, 10),
        Value::Proto(proto::TCP),
        Value::Port(80),
    ]);
    services.insert(Element::verdict(
        vec![
            ip4(10, 96, 0, 12),
            Value::Proto(proto::UDP),
            Value::Port(53),
        ],
        Verdict::Jump("svc-dns".into()),
    ));
    st.add_chain(
        Chain::regular("svc-dns"),
        vec![Rule::new(vec![Stmt::Dnat {
            to: NatTarget::AddrPort("10.244.1.53".parse().unwrap(), 53),
            flags: NatFlags::default(),
        }])],
    );
    let stats = applier.apply(&nft, st).unwrap();
    assert!(!stats.full, "{stats:?}");
    let listed = nft_ok(&name, &["list", "table", "ip", "podnet"]);
    assert!(
        !listed.contains("svc-web") && !listed.contains("web-backends"),
        "{listed}"
    );
    assert!(
        listed.contains("10.96.0.12 . udp . 53 : jump svc-dns"),
        "{listed}"
    );
    assert!(listed.contains("dnat to 10.244.1.53:53"), "{listed}");
}

#[test]
fn a_failing_operation_is_named_and_the_kernel_keeps_the_previous_state() {
    let mut guard = Namespaces::new();
    let (name, ns) = guard.create("nft-fail");
    let nft = Nft::in_netns(&ns).unwrap();
    let mut applier = Applier::new();
    applier.apply(&nft, proxy_table()).unwrap();

    // A good change (one more element) and a bad one (a jump to a chain
    // that does not exist) in the same transaction.
    let mut st = proxy_table();
    st.insert_element(
        "services",
        Element::verdict(
            vec![
                ip4(10, 96, 0, 99),
                Value::Proto(proto::TCP),
                Value::Port(80),
            ],
            Verdict::Drop,
        ),
    );
    st.push_rule(
        "svc-web",
        Rule::new(vec![Stmt::Verdict(Verdict::Jump("missing".into()))]),
    );
    let err = applier.apply(&nft, st).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("adding a rule to chain svc-web of table ip podnet")
            && text.contains("no such file or directory"),
        "{text}"
    );
    assert_eq!(err.errno(), Some(nix::errno::Errno::ENOENT));
    // Nothing of that transaction reached the kernel.
    let (found, out) = nft_cmd(
        &name,
        &[
            "get",
            "element",
            "ip",
            "podnet",
            "services",
            "{ 10.96.0.99 . tcp . 80 }",
        ],
    );
    assert!(
        !found,
        "the element of the failed transaction is there: {out}"
    );
    let listed = nft_ok(&name, &["list", "chain", "ip", "podnet", "svc-web"]);
    assert!(!listed.contains("missing"), "{listed}");
    // The applier forgot what it knew: the next apply is a full replace.
    assert!(applier.applied().is_none());
    let stats = applier.apply(&nft, proxy_table()).unwrap();
    assert!(stats.full);

    // Element errors name the set and the first element of the message.
    let mut b = Batch::new();
    let t = Table::new(Family::Ip, "podnet");
    let svc = proxy_table().sets["services"].set.clone();
    b.push(Op::DeleteElements(
        t,
        svc,
        vec![Element::key(vec![
            ip4(10, 1, 1, 1),
            Value::Proto(6),
            Value::Port(1),
        ])],
    ));
    let text = nft.commit(&b).unwrap_err().to_string();
    assert!(
        text.contains("deleting 1 element(s) from set services of table ip podnet")
            && text.contains("10.1.1.1")
            && text.contains("no such file or directory"),
        "{text}"
    );
}

#[test]
fn invalid_rules_are_refused_before_sending() {
    let mut guard = Namespaces::new();
    let (_name, ns) = guard.create("nft-invalid");
    let nft = Nft::in_netns(&ns).unwrap();
    let mut st = TableState::new(Table::new(Family::Ip, "podnet"));
    st.add_chain(
        Chain::regular("c"),
        vec![Rule::new(vec![Stmt::Match {
            field: Field::IpDaddr,
            op: CmpOp::Eq,
            value: Value::Port(80),
        }])],
    );
    let text = Applier::new().apply(&nft, st).unwrap_err().to_string();
    assert!(
        text.contains("adding a rule to chain c") && text.contains("nothing was sent"),
        "{text}"
    );
}

/// Issue 5's egress masquerade and anti-spoofing rules are expressible.
#[test]
fn egress_masquerade_and_bridge_anti_spoofing_are_expressible() {
    let mut guard = Namespaces::new();
    let (name, ns) = guard.create("nft-issue5");
    let nft = Nft::in_netns(&ns).unwrap();

    let mut egress = TableState::new(Table::new(Family::Ip, "podnet"));
    let mut no_masq = Set::new("no-masquerade", vec![DataType::Ipv4Addr]);
    no_masq.flags.interval = true;
    egress.add_set(no_masq);
    for cidr in ["10.244.0.0/16", "172.18.0.0/24", "192.168.7.7/32"] {
        egress.insert_element("no-masquerade", Element::prefix(net(cidr)));
    }
    egress.add_chain(
        Chain::base("postrouting", ChainType::Nat, Hook::Postrouting, 100),
        vec![masquerade_pods_rule()],
    );

    let mut bridge = TableState::new(Table::new(Family::Bridge, "podnet"));
    bridge.add_set(Set::new(
        "pod-sources",
        vec![DataType::IfName, DataType::Ipv4Addr],
    ));
    bridge.insert_element(
        "pod-sources",
        Element::key(vec![Value::IfName("veth1a2b".into()), ip4(10, 244, 1, 5)]),
    );
    let veth = Stmt::IfNamePrefix {
        field: Field::MetaIifName,
        op: CmpOp::Eq,
        prefix: "veth".into(),
    };
    bridge.add_chain(
        Chain::base("prerouting", ChainType::Filter, Hook::Prerouting, -200),
        vec![
            Rule::new(vec![
                veth.clone(),
                Stmt::InSet {
                    fields: vec![Field::MetaIifName, Field::IpSaddr],
                    set: "pod-sources".into(),
                    negate: true,
                },
                Stmt::Verdict(Verdict::Drop),
            ]),
            Rule::new(vec![
                veth,
                Stmt::InSet {
                    fields: vec![Field::MetaIifName, Field::ArpSaddrIp],
                    set: "pod-sources".into(),
                    negate: true,
                },
                Stmt::Verdict(Verdict::Drop),
            ]),
        ],
    );
    // Both tables in one transaction.
    let mut batch = full_replace(&egress);
    batch.ops.extend(full_replace(&bridge).ops);
    nft.commit(&batch).unwrap();

    let listed = lines(&nft_ok(&name, &["list", "ruleset"]));
    let want = [
        "elements = { 10.244.0.0/16, 172.18.0.0/24,",
        "192.168.7.7 }",
        "ip saddr 10.244.0.0/16 ip daddr != @no-masquerade masquerade fully-random",
        "type ifname . ipv4_addr",
        "elements = { \"veth1a2b\" . 10.244.1.5 }",
        // -200 is the bridge family's `filter` priority.
        "type filter hook prerouting priority filter; policy accept;",
        // The compiler adds `meta protocol ip` / `meta protocol arp`
        // before ip / arp fields; nft shows them as implied.
        "iifname \"veth*\" iifname . ip saddr != @pod-sources drop",
        "iifname \"veth*\" iifname . arp saddr ip != @pod-sources drop",
    ];
    for line in want {
        assert!(
            listed.iter().any(|l| l == line),
            "nft does not list {line:?}; it lists:\n{}",
            listed.join("\n")
        );
    }
}

/// IPv6 in an `inet` table: interval set of v6 prefixes, a vmap keyed by
/// `ip6 daddr . meta l4proto . th dport`, dnat through an `ipv6_addr .
/// inet_service` map, masquerade; `nft` lists what was planned.
#[test]
fn inet_table_with_ipv6_is_what_nft_lists() {
    let mut guard = Namespaces::new();
    let (name, ns) = guard.create("nft-inet6");
    let nft = Nft::in_netns(&ns).unwrap();
    let mut st = TableState::new(Table::new(Family::Inet, "podnet"));
    let mut no_masq = Set::new("no-masquerade6", vec![DataType::Ipv6Addr]);
    no_masq.flags.interval = true;
    st.add_set(no_masq);
    st.insert_element("no-masquerade6", Element::prefix(net("fd00:10:244::/56")));
    let vip: std::net::Ipv6Addr = "fd00:10:96::a".parse().unwrap();
    st.add_set(Set::map(
        "services6",
        vec![
            DataType::Ipv6Addr,
            DataType::InetProto,
            DataType::InetService,
        ],
        SetData::Verdict,
    ));
    st.insert_element(
        "services6",
        Element::verdict(
            vec![Value::Ipv6(vip), Value::Proto(proto::TCP), Value::Port(80)],
            Verdict::Jump("svc6".into()),
        ),
    );
    st.add_set(Set::map(
        "backends6",
        vec![DataType::Mark],
        SetData::Values(vec![DataType::Ipv6Addr, DataType::InetService]),
    ));
    st.insert_element(
        "backends6",
        Element::map(
            vec![Value::U32(0)],
            vec![
                Value::Ipv6("fd00:10:244:1::5".parse().unwrap()),
                Value::Port(8080),
            ],
        ),
    );
    st.add_chain(
        Chain::base("prerouting", ChainType::Nat, Hook::Prerouting, -100),
        vec![Rule::new(vec![Stmt::VerdictMap {
            fields: vec![Field::Ip6Daddr, Field::MetaL4Proto, Field::ThDport],
            map: "services6".into(),
        }])],
    );
    st.add_chain(
        Chain::regular("svc6"),
        vec![Rule::new(vec![Stmt::Dnat {
            to: NatTarget::Map {
                fields: vec![Field::NumgenRandom {
                    modulus: 1,
                    offset: 0,
                }],
                map: "backends6".into(),
                data: NatData::Ip6Port,
                remember: None,
            },
            flags: NatFlags::default(),
        }])],
    );
    st.add_chain(
        Chain::base("postrouting", ChainType::Nat, Hook::Postrouting, 100),
        vec![Rule::new(vec![
            Stmt::Prefix {
                field: Field::Ip6Saddr,
                op: CmpOp::Eq,
                net: net("fd00:10:244::/56"),
            },
            Stmt::InSet {
                fields: vec![Field::Ip6Daddr],
                set: "no-masquerade6".into(),
                negate: true,
            },
            Stmt::Masquerade {
                fully_random: false,
            },
        ])],
    );
    Applier::new().apply(&nft, st).unwrap();
    let listed = lines(&nft_ok(&name, &["list", "table", "inet", "podnet"]));
    let want = [
        "elements = { fd00:10:244::/56 }",
        "type ipv6_addr . inet_proto . inet_service : verdict",
        "elements = { fd00:10:96::a . tcp . 80 : jump svc6 }",
        "type mark : ipv6_addr . inet_service",
        "ip6 daddr . meta l4proto . th dport vmap @services6",
        "ip6 saddr fd00:10:244::/56 ip6 daddr != @no-masquerade6 masquerade",
    ];
    for line in want {
        assert!(
            listed.iter().any(|l| l == line),
            "nft does not list {line:?}; it lists:\n{}",
            listed.join("\n")
        );
    }
    assert!(
        listed
            .iter()
            .any(|l| l.contains("dnat ip6 to numgen random mod 1 map @backends6")),
        "{}",
        listed.join("\n")
    );
}

/// `ip saddr 10.244.0.0/16 ip daddr != @no-masquerade masquerade fully-random`: the
/// agent's egress rule, in both the listing and the issue-5 test.
fn masquerade_pods_rule() -> Rule {
    Rule::new(vec![
        Stmt::Prefix {
            field: Field::IpSaddr,
            op: CmpOp::Eq,
            net: net("10.244.0.0/16"),
        },
        Stmt::InSet {
            fields: vec![Field::IpDaddr],
            set: "no-masquerade".into(),
            negate: true,
        },
        Stmt::Masquerade { fully_random: true },
    ])
}
