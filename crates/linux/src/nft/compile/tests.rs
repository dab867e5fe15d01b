//! Golden tests of the compiler: expressions and registers.

use super::*;
use crate::nft::expr::{meta, Expr, PayloadBase};
use crate::nft::model::Verdict;
use crate::nft::model::{Family, Value};
use crate::nft::rule::{CmpOp, Field, NatData, NatFlags, NatTarget, Remember, Rule, Stmt};
use std::net::Ipv4Addr;

#[test]
fn golden_match_and_verdict() {
    let rule = Rule::new(vec![
        Stmt::Match {
            field: Field::IpDaddr,
            op: CmpOp::Eq,
            value: Value::Ipv4(Ipv4Addr::new(10, 96, 0, 1)),
        },
        Stmt::Verdict(Verdict::Accept),
    ]);
    let exprs = compile(Family::Inet, &rule).unwrap();
    assert_eq!(
        exprs,
        vec![
            // The dependency an inet table needs before `ip daddr`.
            Expr::Meta {
                dreg: 8,
                key: meta::NFPROTO
            },
            Expr::Cmp {
                sreg: 8,
                op: 0,
                data: vec![2]
            },
            Expr::Payload {
                dreg: 8,
                base: PayloadBase::Network,
                offset: 16,
                len: 4
            },
            Expr::Cmp {
                sreg: 8,
                op: 0,
                data: vec![10, 96, 0, 1]
            },
            Expr::ImmediateVerdict(Verdict::Accept),
        ]
    );
    // Byte-level: the payload expression as the kernel reads it.
    let mut b = crate::nft::wire::Buf::default();
    exprs[2].encode(&mut b);
    let mut want = vec![52, 0, 1, 0x80, 12, 0, 1, 0];
    want.extend(b"payload\0");
    want.extend([36, 0, 2, 0x80]);
    for (attr, v) in [(1u8, 8u32), (2, 1), (3, 16), (4, 4)] {
        want.extend([8, 0, attr, 0]);
        want.extend(v.to_be_bytes());
    }
    assert_eq!(b.bytes, want);
}

#[test]
fn affinity_keeps_the_backend_in_registers_for_dynset_and_nat() {
    let rule = Rule::new(vec![Stmt::Dnat {
        to: NatTarget::Map {
            fields: vec![Field::NumgenRandom {
                modulus: 3,
                offset: 0,
            }],
            map: "backends".into(),
            data: NatData::Ip4Port,
            remember: Some(Remember {
                set: "affinity".into(),
                key: vec![Field::IpSaddr, Field::IpDaddr, Field::ThDport],
                timeout: Some(std::time::Duration::from_secs(60)),
            }),
        },
        flags: NatFlags::default(),
    }]);
    let exprs = compile(Family::Ip, &rule).unwrap();
    assert_eq!(
        exprs,
        vec![
            Expr::Numgen {
                dreg: 8,
                modulus: 3,
                offset: 0
            },
            Expr::Lookup {
                set: "backends".into(),
                sreg: 8,
                dreg: Some(8),
                invert: false
            },
            Expr::Payload {
                dreg: 10,
                base: PayloadBase::Network,
                offset: 12,
                len: 4
            },
            Expr::Payload {
                dreg: 11,
                base: PayloadBase::Network,
                offset: 16,
                len: 4
            },
            Expr::Payload {
                dreg: 12,
                base: PayloadBase::Transport,
                offset: 2,
                len: 2
            },
            Expr::Dynset {
                set: "affinity".into(),
                sreg_key: 10,
                sreg_data: Some(8),
                timeout_ms: Some(60_000)
            },
            Expr::Nat {
                kind: 1,
                nfproto: 2,
                addr: 8,
                proto: Some(9),
                flags: 0
            },
        ]
    );
}

#[test]
fn registers_run_out_clearly() {
    let fields = vec![
        Field::Ip6Saddr,
        Field::Ip6Daddr,
        Field::Ip6Saddr,
        Field::Ip6Daddr,
        Field::ThDport,
    ];
    let rule = Rule::new(vec![Stmt::InSet {
        fields,
        set: "s".into(),
        negate: false,
    }]);
    let err = compile(Family::Ip6, &rule).unwrap_err();
    assert!(err.0.contains("registers"), "{err}");
}
