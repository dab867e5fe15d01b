//! The rule compiler: typed statements to kernel expressions.
//!
//! Register use: the 16 four-byte registers (`NFT_REG32_00..15`) form a
//! stack. A statement loads what it needs from the first free register on
//! (each field of a concatenation at the next 4-byte boundary, as set keys
//! are laid out), and gives the registers back when it ends, so the next
//! statement reuses them. The verdict register is only written by verdicts
//! and vmap lookups. Protocol dependencies (`meta nfproto ipv4` before `ip
//! saddr` in an `inet` table, `ether type ip` in a `bridge` table, ...) are
//! added once per rule, first.

use std::net::IpAddr;

use ipnet::IpNet;

use super::expr::{ct, meta, nat_flags, Expr, PayloadBase, REG32_00, REG32_COUNT, REG_VERDICT};
use super::model::{ethertype, prefix_bounds, DataType, Family, Value};
use super::rule::{CmpOp, Field, NatData, NatFlags, NatTarget, Reject, Remember, Rule, Stmt};

/// A rule the compiler cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CompileError(pub String);

/// Compile `rule` for a table of `family`.
pub(crate) fn compile(family: Family, rule: &Rule) -> Result<Vec<Expr>, CompileError> {
    let mut c = Compiler {
        family,
        out: Vec::new(),
        top: 0,
    };
    c.dependencies(rule);
    for stmt in &rule.exprs {
        let saved = c.top;
        c.stmt(stmt)?;
        c.top = saved;
    }
    Ok(c.out)
}

struct Compiler {
    family: Family,
    out: Vec<Expr>,
    /// First free four-byte register (0..16).
    top: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Dep {
    Ip4,
    Ip6,
    Arp,
}

fn cmp_op(op: CmpOp) -> u32 {
    match op {
        CmpOp::Eq => 0,
        CmpOp::Ne => 1,
    }
}

impl Compiler {
    /// Reserve `bytes` (rounded up to registers); returns the register number.
    fn alloc(&mut self, bytes: usize) -> Result<u32, CompileError> {
        let regs = bytes.div_ceil(4) as u32;
        if self.top + regs > REG32_COUNT {
            return Err(CompileError(format!(
                "rule needs more than the kernel's {} bytes of registers",
                REG32_COUNT * 4
            )));
        }
        let reg = REG32_00 + self.top;
        self.top += regs;
        Ok(reg)
    }

    fn dependencies(&mut self, rule: &Rule) {
        let mut deps = Vec::new();
        for stmt in &rule.exprs {
            for field in stmt_fields(stmt) {
                collect_deps(field, &mut deps);
            }
        }
        deps.sort();
        deps.dedup();
        for dep in deps {
            let (field, value) = match (self.family, dep) {
                (Family::Inet, Dep::Ip4) => (Field::MetaNfProto, Value::NfProto(2)),
                (Family::Inet, Dep::Ip6) => (Field::MetaNfProto, Value::NfProto(10)),
                (Family::Bridge | Family::Netdev, Dep::Ip4) => {
                    (Field::MetaProtocol, Value::EtherType(ethertype::IPV4))
                }
                (Family::Bridge | Family::Netdev, Dep::Ip6) => {
                    (Field::MetaProtocol, Value::EtherType(ethertype::IPV6))
                }
                (Family::Bridge | Family::Netdev, Dep::Arp) => {
                    (Field::MetaProtocol, Value::EtherType(ethertype::ARP))
                }
                _ => continue,
            };
            let reg = REG32_00;
            self.load_into(&field, reg).expect("dependency fields load");
            self.out.push(Expr::Cmp {
                sreg: reg,
                op: 0,
                data: value.to_bytes(),
            });
        }
    }

    /// Load `field` into registers starting at `reg`.
    fn load_into(&mut self, field: &Field, reg: u32) -> Result<(), CompileError> {
        use Field::*;
        use PayloadBase::*;
        let payload = |base, offset, len| Expr::Payload {
            dreg: reg,
            base,
            offset,
            len,
        };
        let meta_key = |key| Expr::Meta { dreg: reg, key };
        let ct_key = |key, dir| Expr::Ct {
            dreg: reg,
            key,
            dir,
        };
        let expr = match field {
            IpSaddr => payload(Network, 12, 4),
            IpDaddr => payload(Network, 16, 4),
            IpProtocol => payload(Network, 9, 1),
            Ip6Saddr => payload(Network, 8, 16),
            Ip6Daddr => payload(Network, 24, 16),
            Ip6Nexthdr => payload(Network, 6, 1),
            ThSport => payload(Transport, 0, 2),
            ThDport => payload(Transport, 2, 2),
            EtherDaddr => payload(Link, 0, 6),
            EtherSaddr => payload(Link, 6, 6),
            EtherType => payload(Link, 12, 2),
            ArpSaddrIp => payload(Network, 14, 4),
            ArpDaddrIp => payload(Network, 24, 4),
            MetaL4Proto => meta_key(meta::L4PROTO),
            MetaNfProto => meta_key(meta::NFPROTO),
            MetaProtocol => meta_key(meta::PROTOCOL),
            MetaIifName => meta_key(meta::IIFNAME),
            MetaOifName => meta_key(meta::OIFNAME),
            MetaIif => meta_key(meta::IIF),
            MetaOif => meta_key(meta::OIF),
            MetaMark => meta_key(meta::MARK),
            MetaPktType => meta_key(meta::PKTTYPE),
            CtState => ct_key(ct::STATE, None),
            CtStatus => ct_key(ct::STATUS, None),
            CtMark => ct_key(ct::MARK, None),
            CtDirection => ct_key(ct::DIRECTION, None),
            CtOriginalIpSaddr => ct_key(ct::SRC_IP, Some(0)),
            CtOriginalIpDaddr => ct_key(ct::DST_IP, Some(0)),
            CtOriginalProtoDst => ct_key(ct::PROTO_DST, Some(0)),
            FibDaddrType => Expr::FibDaddrType { dreg: reg },
            NumgenRandom { modulus, offset } => Expr::Numgen {
                dreg: reg,
                modulus: *modulus,
                offset: *offset,
            },
            Jhash {
                fields,
                modulus,
                seed,
                offset,
            } => {
                // The inputs go to registers from `reg` on (past the end of
                // the current stack if needed), the hash into `reg`.
                let saved = self.top;
                self.top = self.top.max(reg - REG32_00);
                let len = self.load_concat_at(fields, reg)?;
                self.top = saved;
                Expr::Jhash {
                    sreg: reg,
                    dreg: reg,
                    len: len as u32,
                    modulus: *modulus,
                    seed: *seed,
                    offset: *offset,
                }
            }
        };
        self.out.push(expr);
        Ok(())
    }

    /// Load a concatenation at `reg` (registers must be reserved by the
    /// caller); returns its length in bytes.
    fn load_concat_at(&mut self, fields: &[Field], reg: u32) -> Result<usize, CompileError> {
        let len: usize = fields.iter().map(Field::reg_len).sum();
        let end = reg - REG32_00 + (len / 4) as u32;
        if end > REG32_COUNT {
            return Err(CompileError(format!(
                "key of {len} bytes does not fit in the kernel's registers"
            )));
        }
        self.top = self.top.max(end);
        let mut at = reg;
        for field in fields {
            self.load_into(field, at)?;
            at += (field.reg_len() / 4) as u32;
        }
        Ok(len)
    }

    /// Reserve registers for and load a concatenation; returns its register.
    fn load_concat(&mut self, fields: &[Field]) -> Result<u32, CompileError> {
        if fields.is_empty() {
            return Err(CompileError("empty key".into()));
        }
        let len: usize = fields.iter().map(Field::reg_len).sum();
        let reg = self.alloc(len)?;
        self.load_concat_at(fields, reg)?;
        Ok(reg)
    }

    fn stmt(&mut self, stmt: &Stmt) -> Result<(), CompileError> {
        match stmt {
            Stmt::Match { field, op, value } => {
                check_type(field, value)?;
                let reg = self.load_concat(std::slice::from_ref(field))?;
                self.out.push(Expr::Cmp {
                    sreg: reg,
                    op: cmp_op(*op),
                    data: value.to_bytes(),
                });
            }
            Stmt::Prefix { field, op, net } => self.prefix(field, *op, net)?,
            Stmt::IfNamePrefix { field, op, prefix } => {
                if prefix.is_empty() || prefix.len() > 15 {
                    return Err(CompileError(format!(
                        "interface name prefix {prefix:?} must be 1 to 15 bytes"
                    )));
                }
                let reg = self.load_concat(std::slice::from_ref(field))?;
                self.out.push(Expr::Cmp {
                    sreg: reg,
                    op: cmp_op(*op),
                    data: prefix.as_bytes().to_vec(),
                });
            }
            Stmt::Range {
                field,
                op,
                from,
                to,
            } => {
                check_type(field, from)?;
                check_type(field, to)?;
                let reg = self.load_concat(std::slice::from_ref(field))?;
                let (mut from, mut to) = (from.to_bytes(), to.to_bytes());
                if field.data_type().host_order() && field.len() == 4 {
                    // `range` compares bytes: make host-order integers big-endian.
                    self.out.push(Expr::Hton {
                        reg,
                        len: 4,
                        size: 4,
                    });
                    from.reverse_if_le();
                    to.reverse_if_le();
                }
                self.out.push(Expr::Range {
                    sreg: reg,
                    op: cmp_op(*op),
                    from,
                    to,
                });
            }
            Stmt::FlagsAny {
                field,
                flags,
                negate,
            } => {
                let reg = self.load_concat(std::slice::from_ref(field))?;
                self.out.push(Expr::Bitwise {
                    sreg: reg,
                    dreg: reg,
                    mask: flags.to_ne_bytes().to_vec(),
                    xor: vec![0; 4],
                });
                self.out.push(Expr::Cmp {
                    sreg: reg,
                    op: if *negate { 0 } else { 1 },
                    data: vec![0; 4],
                });
            }
            Stmt::InSet {
                fields,
                set,
                negate,
            } => {
                let reg = self.load_concat(fields)?;
                self.out.push(Expr::Lookup {
                    set: set.clone(),
                    sreg: reg,
                    dreg: None,
                    invert: *negate,
                });
            }
            Stmt::VerdictMap { fields, map } => {
                let reg = self.load_concat(fields)?;
                self.out.push(Expr::Lookup {
                    set: map.clone(),
                    sreg: reg,
                    dreg: Some(REG_VERDICT),
                    invert: false,
                });
            }
            Stmt::Dnat { to, flags } => self.nat(1, to, *flags)?,
            Stmt::Snat { to, flags } => self.nat(0, to, *flags)?,
            Stmt::Masquerade { fully_random } => self.out.push(Expr::Masq {
                flags: if *fully_random {
                    nat_flags::PROTO_RANDOM_FULLY
                } else {
                    0
                },
            }),
            Stmt::Reject(kind) => {
                let (kind, code) = self.reject(*kind);
                self.out.push(Expr::Reject { kind, code });
            }
            Stmt::Counter => self.out.push(Expr::Counter),
            Stmt::Verdict(v) => self.out.push(Expr::ImmediateVerdict(v.clone())),
            Stmt::SetMark(value) => {
                let reg = self.alloc(4)?;
                self.out.push(Expr::ImmediateData {
                    dreg: reg,
                    data: value.to_ne_bytes().to_vec(),
                });
                self.out.push(Expr::MetaSet {
                    sreg: reg,
                    key: meta::MARK,
                });
            }
            Stmt::OrMark(bits) => {
                let reg = self.load_concat(&[Field::MetaMark])?;
                // (mark & !bits) ^ bits == mark | bits
                self.out.push(Expr::Bitwise {
                    sreg: reg,
                    dreg: reg,
                    mask: (!bits).to_ne_bytes().to_vec(),
                    xor: bits.to_ne_bytes().to_vec(),
                });
                self.out.push(Expr::MetaSet {
                    sreg: reg,
                    key: meta::MARK,
                });
            }
            Stmt::SetCtMark(value) => {
                let reg = self.alloc(4)?;
                self.out.push(Expr::ImmediateData {
                    dreg: reg,
                    data: value.to_ne_bytes().to_vec(),
                });
                self.out.push(Expr::CtSet {
                    sreg: reg,
                    key: ct::MARK,
                });
            }
            Stmt::Notrack => self.out.push(Expr::Notrack),
            Stmt::DynsetUpdate {
                set,
                key,
                data,
                timeout,
            } => {
                let sreg_key = self.load_concat(key)?;
                let sreg_data = match data {
                    Some(fields) => Some(self.load_concat(fields)?),
                    None => None,
                };
                self.out.push(Expr::Dynset {
                    set: set.clone(),
                    sreg_key,
                    sreg_data,
                    timeout_ms: timeout.map(|t| t.as_millis() as u64),
                });
            }
        }
        Ok(())
    }

    fn prefix(&mut self, field: &Field, op: CmpOp, net: &IpNet) -> Result<(), CompileError> {
        let expected = match net {
            IpNet::V4(_) => DataType::Ipv4Addr,
            IpNet::V6(_) => DataType::Ipv6Addr,
        };
        if field.data_type() != expected {
            return Err(CompileError(format!(
                "prefix {net} does not fit field {field:?} ({:?})",
                field.data_type()
            )));
        }
        let reg = self.load_concat(std::slice::from_ref(field))?;
        let (network, _) = prefix_bounds(*net);
        let mask = match net {
            IpNet::V4(n) => n.netmask().octets().to_vec(),
            IpNet::V6(n) => n.netmask().octets().to_vec(),
        };
        if net.prefix_len() != net.max_prefix_len() {
            let xor = vec![0; mask.len()];
            self.out.push(Expr::Bitwise {
                sreg: reg,
                dreg: reg,
                mask,
                xor,
            });
        }
        self.out.push(Expr::Cmp {
            sreg: reg,
            op: cmp_op(op),
            data: network.to_bytes(),
        });
        Ok(())
    }

    fn nat(&mut self, kind: u32, to: &NatTarget, flags: NatFlags) -> Result<(), CompileError> {
        let mut bits = 0;
        if flags.persistent {
            bits |= nat_flags::PERSISTENT;
        }
        if flags.random {
            bits |= nat_flags::PROTO_RANDOM;
        }
        if flags.fully_random {
            bits |= nat_flags::PROTO_RANDOM_FULLY;
        }
        let (addr, proto, v6) = match to {
            NatTarget::Addr(ip) | NatTarget::AddrPort(ip, _) => {
                let value = match ip {
                    IpAddr::V4(a) => Value::Ipv4(*a),
                    IpAddr::V6(a) => Value::Ipv6(*a),
                };
                let addr = self.alloc(value.data_type().len())?;
                self.out.push(Expr::ImmediateData {
                    dreg: addr,
                    data: value.to_bytes(),
                });
                let proto = match to {
                    NatTarget::AddrPort(_, port) => {
                        let reg = self.alloc(4)?;
                        self.out.push(Expr::ImmediateData {
                            dreg: reg,
                            data: port.to_be_bytes().to_vec(),
                        });
                        Some(reg)
                    }
                    _ => None,
                };
                (addr, proto, ip.is_ipv6())
            }
            NatTarget::Map {
                fields,
                map,
                data,
                remember,
            } => self.nat_map(fields, map, *data, remember.as_ref())?,
        };
        self.out.push(Expr::Nat {
            kind,
            nfproto: if v6 { 10 } else { 2 },
            addr,
            proto,
            flags: bits,
        });
        Ok(())
    }

    /// Key lookup into a NAT map; the backend stays in registers (and is
    /// recorded in `remember`'s set) for the NAT expression.
    fn nat_map(
        &mut self,
        fields: &[Field],
        map: &str,
        data: NatData,
        remember: Option<&Remember>,
    ) -> Result<(u32, Option<u32>, bool), CompileError> {
        let data_len: usize = data.types().iter().map(|t| t.reg_len()).sum();
        // The data goes where the key was loaded; the key may be longer.
        let saved = self.top;
        let key = self.load_concat(fields)?;
        self.top = saved;
        let dreg = self.alloc(data_len)?;
        debug_assert_eq!(key, dreg);
        self.out.push(Expr::Lookup {
            set: map.to_string(),
            sreg: key,
            dreg: Some(dreg),
            invert: false,
        });
        if let Some(remember) = remember {
            let saved = self.top;
            let key = self.load_concat(&remember.key)?;
            self.out.push(Expr::Dynset {
                set: remember.set.clone(),
                sreg_key: key,
                sreg_data: Some(dreg),
                timeout_ms: remember.timeout.map(|t| t.as_millis() as u64),
            });
            self.top = saved;
        }
        Ok(match data {
            NatData::Ip4 => (dreg, None, false),
            NatData::Ip4Port => (dreg, Some(dreg + 1), false),
            NatData::Ip6 => (dreg, None, true),
            NatData::Ip6Port => (dreg, Some(dreg + 4), true),
        })
    }

    /// `(NFTA_REJECT_TYPE, NFTA_REJECT_ICMP_CODE)` for this family.
    fn reject(&self, kind: Reject) -> (u32, Option<u8>) {
        const ICMP_UNREACH: u32 = 0;
        const TCP_RST: u32 = 1;
        const ICMPX_UNREACH: u32 = 2;
        use Reject::*;
        let icmpx = |code| (ICMPX_UNREACH, Some(code));
        match (self.family, kind) {
            (_, TcpReset) => (TCP_RST, None),
            (Family::Ip, IcmpPortUnreachable) => (ICMP_UNREACH, Some(3)),
            (Family::Ip, IcmpHostUnreachable) => (ICMP_UNREACH, Some(1)),
            (Family::Ip, IcmpAdminProhibited) => (ICMP_UNREACH, Some(13)),
            (Family::Ip6, IcmpPortUnreachable) => (ICMP_UNREACH, Some(4)),
            (Family::Ip6, IcmpHostUnreachable) => (ICMP_UNREACH, Some(3)),
            (Family::Ip6, IcmpAdminProhibited) => (ICMP_UNREACH, Some(1)),
            (_, IcmpxNoRoute) => icmpx(0),
            (_, IcmpPortUnreachable | IcmpxPortUnreachable) => icmpx(1),
            (_, IcmpHostUnreachable | IcmpxHostUnreachable) => icmpx(2),
            (_, IcmpAdminProhibited | IcmpxAdminProhibited) => icmpx(3),
        }
    }
}

trait ReverseIfLe {
    fn reverse_if_le(&mut self);
}

impl ReverseIfLe for Vec<u8> {
    fn reverse_if_le(&mut self) {
        if cfg!(target_endian = "little") {
            self.reverse();
        }
    }
}

fn check_type(field: &Field, value: &Value) -> Result<(), CompileError> {
    if field.len() != value.data_type().len() {
        return Err(CompileError(format!(
            "value {value:?} ({} bytes) does not fit field {field:?} ({} bytes)",
            value.data_type().len(),
            field.len()
        )));
    }
    Ok(())
}

/// Every field a statement reads (for dependencies).
fn stmt_fields(stmt: &Stmt) -> Vec<&Field> {
    match stmt {
        Stmt::Match { field, .. }
        | Stmt::Prefix { field, .. }
        | Stmt::IfNamePrefix { field, .. }
        | Stmt::Range { field, .. }
        | Stmt::FlagsAny { field, .. } => vec![field],
        Stmt::InSet { fields, .. } | Stmt::VerdictMap { fields, .. } => fields.iter().collect(),
        Stmt::Dnat { to, .. } | Stmt::Snat { to, .. } => match to {
            NatTarget::Map {
                fields, remember, ..
            } => fields
                .iter()
                .chain(remember.iter().flat_map(|r| r.key.iter()))
                .collect(),
            _ => vec![],
        },
        Stmt::DynsetUpdate { key, data, .. } => key.iter().chain(data.iter().flatten()).collect(),
        _ => vec![],
    }
}

fn collect_deps(field: &Field, deps: &mut Vec<Dep>) {
    match field {
        Field::IpSaddr | Field::IpDaddr | Field::IpProtocol => deps.push(Dep::Ip4),
        Field::Ip6Saddr | Field::Ip6Daddr | Field::Ip6Nexthdr => deps.push(Dep::Ip6),
        Field::ArpSaddrIp | Field::ArpDaddrIp => deps.push(Dep::Arp),
        Field::Jhash { fields, .. } => fields.iter().for_each(|f| collect_deps(f, deps)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::model::Verdict;
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
}
