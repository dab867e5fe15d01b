//! Loading fields into registers, and the protocol dependencies of a rule.

use super::{CompileError, Compiler, Dep};
use crate::nft::expr::{ct, meta, Expr, PayloadBase, REG32_00, REG32_COUNT};
use crate::nft::model::{ethertype, Family, Value};
use crate::nft::rule::{Field, NatTarget, Rule, Stmt};

impl Compiler {
    pub(super) fn dependencies(&mut self, rule: &Rule) {
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
    pub(super) fn load_into(&mut self, field: &Field, reg: u32) -> Result<(), CompileError> {
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
    pub(super) fn load_concat_at(
        &mut self,
        fields: &[Field],
        reg: u32,
    ) -> Result<usize, CompileError> {
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
    pub(super) fn load_concat(&mut self, fields: &[Field]) -> Result<u32, CompileError> {
        if fields.is_empty() {
            return Err(CompileError("empty key".into()));
        }
        let len: usize = fields.iter().map(Field::reg_len).sum();
        let reg = self.alloc(len)?;
        self.load_concat_at(fields, reg)?;
        Ok(reg)
    }
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
