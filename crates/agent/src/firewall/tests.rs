//! Golden tests of the firewall planner (no root).

use super::*;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn egress_masquerades_pods_to_outside_only() {
    let t = egress(
        net("10.244.0.0/16"),
        &[net("10.244.3.0/24"), net("172.18.0.0/24"), net("fd00::/8")],
    )
    .unwrap();
    let set = &t.sets[NO_MASQUERADE];
    let mut els: Vec<String> = set
        .elements
        .values()
        .map(|e| format!("{:?}", e.key))
        .collect();
    els.sort();
    // The overlapping 10.244.3.0/24 merged into the cluster CIDR, v6 left out.
    assert_eq!(set.elements.len(), 3, "{els:?}");
    let chain = &t.chains["postrouting"];
    let base = chain.chain.base.as_ref().unwrap();
    assert_eq!((base.hook, base.priority), (Hook::Postrouting, 100));
    assert_eq!(chain.rules.len(), 1);
    assert_eq!(
        chain.rules[0].exprs,
        vec![
            Stmt::Prefix {
                field: Field::IpSaddr,
                op: CmpOp::Eq,
                net: net("10.244.0.0/16")
            },
            Stmt::InSet {
                fields: vec![Field::IpDaddr],
                set: NO_MASQUERADE.into(),
                negate: true
            },
            Stmt::Masquerade { fully_random: true },
        ]
    );
    assert!(egress(net("fd00::/48"), &[]).is_none());
}

#[test]
fn anti_spoofing_allows_exactly_the_attachments() {
    let key = "/registry/podnet.io/ipam-attachments/node-1/abc123/eth0";
    let a = attachment_of("node-1", key, b"10.244.0.5").unwrap();
    assert_eq!(a.veth, host_veth_name("abc123", "eth0"));
    assert!(a.veth.starts_with("veth") && a.veth.len() == 12);
    assert_eq!(a.ip, Ipv4Addr::new(10, 244, 0, 5));
    assert!(attachment_of("node-2", key, b"10.244.0.5").is_none());
    assert!(attachment_of(
        "node-1",
        "/registry/podnet.io/ipam-attachments/node-10/x/eth0",
        b"10.1.1.1"
    )
    .is_none());
    let t = anti_spoofing(std::slice::from_ref(&a));
    let set = &t.sets[POD_SOURCES];
    assert_eq!(set.elements.len(), 1);
    let rules = &t.chains["prerouting"].rules;
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].exprs.last(), Some(&Stmt::Verdict(Verdict::Drop)));
    assert!(
        matches!(&rules[1].exprs[1], Stmt::InSet { fields, negate: true, .. } if fields == &vec![Field::MetaIifName, Field::ArpSaddrIp])
    );
    // Deterministic: the same attachments give the same state.
    assert_eq!(anti_spoofing(std::slice::from_ref(&a)), anti_spoofing(&[a]));
}

#[test]
fn overlay_untracks_only_vxlan_between_this_node_and_its_peers() {
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    let t = overlay_untracked(
        ip("172.18.0.2"),
        8472,
        &[
            ip("172.18.0.4"),
            ip("172.18.0.3"),
            ip("172.18.0.3"),
            ip("172.18.0.2"),
            ip("fd00::1"),
        ],
    )
    .unwrap();
    assert_eq!(t.table.name, OVERLAY_TABLE);
    // Peers deduplicated, this node and IPv6 left out.
    let mut peers: Vec<String> = t.sets[OVERLAY_PEERS]
        .elements
        .values()
        .map(|e| format!("{:?}", e.key))
        .collect();
    peers.sort();
    assert_eq!(peers.len(), 2, "{peers:?}");
    assert!(peers[0].contains("172.18.0.3") && peers[1].contains("172.18.0.4"));
    for (chain, hook, me, them) in [
        (
            "prerouting",
            Hook::Prerouting,
            Field::IpDaddr,
            Field::IpSaddr,
        ),
        ("output", Hook::Output, Field::IpSaddr, Field::IpDaddr),
    ] {
        let c = &t.chains[chain];
        let base = c.chain.base.as_ref().unwrap();
        assert_eq!((base.hook, base.priority), (hook, RAW_PRIORITY));
        assert_eq!(c.rules.len(), 1);
        assert_eq!(
            c.rules[0].exprs,
            vec![
                Stmt::Match {
                    field: me,
                    op: CmpOp::Eq,
                    value: Value::Ipv4(Ipv4Addr::new(172, 18, 0, 2)),
                },
                Stmt::Match {
                    field: Field::MetaL4Proto,
                    op: CmpOp::Eq,
                    value: Value::Proto(17),
                },
                Stmt::Match {
                    field: Field::ThDport,
                    op: CmpOp::Eq,
                    value: Value::Port(8472),
                },
                Stmt::InSet {
                    fields: vec![them],
                    set: OVERLAY_PEERS.into(),
                    negate: false,
                },
                Stmt::Notrack,
            ]
        );
    }
    assert!(overlay_untracked(ip("fd00::2"), 8472, &[]).is_none());
}
