//! NAT (fixed, or through a map with optional affinity) and reject.

use std::net::IpAddr;

use super::{CompileError, Compiler};
use crate::nft::expr::{nat_flags, Expr};
use crate::nft::model::{Family, Value};
use crate::nft::rule::{Field, NatData, NatFlags, NatTarget, Reject, Remember};

impl Compiler {
    pub(super) fn nat(
        &mut self,
        kind: u32,
        to: &NatTarget,
        flags: NatFlags,
    ) -> Result<(), CompileError> {
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
    pub(super) fn nat_map(
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
    pub(super) fn reject(&self, kind: Reject) -> (u32, Option<u8>) {
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
