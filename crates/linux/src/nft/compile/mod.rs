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

mod load;
mod nat;
#[cfg(test)]
mod tests;

use ipnet::IpNet;

use super::expr::{ct, meta, nat_flags, Expr, REG32_00, REG32_COUNT, REG_VERDICT};
use super::model::{prefix_bounds, DataType, Family, Value};
use super::rule::{CmpOp, Field, Rule, Stmt};

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
