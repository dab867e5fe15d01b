//! Kernel expressions (what `nft --debug=netlink` prints) and their
//! netlink encoding. Internal: the compiler produces these from typed
//! statements; registers appear only here.

use super::model::Verdict;
use super::wire::{Buf, NFTA_DATA_VERDICT, NFTA_EXPR_DATA, NFTA_EXPR_NAME, NFTA_LIST_ELEM};

/// `NFT_REG_VERDICT`.
pub(crate) const REG_VERDICT: u32 = 0;
/// `NFT_REG32_00`: the first of the 16 four-byte registers.
pub(crate) const REG32_00: u32 = 8;
pub(crate) const REG32_COUNT: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayloadBase {
    Link = 0,
    Network = 1,
    Transport = 2,
}

/// `NFT_META_*`.
pub(crate) mod meta {
    pub const PROTOCOL: u32 = 1;
    pub const MARK: u32 = 3;
    pub const IIF: u32 = 4;
    pub const OIF: u32 = 5;
    pub const IIFNAME: u32 = 6;
    pub const OIFNAME: u32 = 7;
    pub const NFPROTO: u32 = 15;
    pub const L4PROTO: u32 = 16;
    pub const PKTTYPE: u32 = 19;
}

/// `NFT_CT_*`.
pub(crate) mod ct {
    pub const STATE: u32 = 0;
    pub const DIRECTION: u32 = 1;
    pub const STATUS: u32 = 2;
    pub const MARK: u32 = 3;
    pub const PROTO_DST: u32 = 12;
    pub const SRC_IP: u32 = 19;
    pub const DST_IP: u32 = 20;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    Payload {
        dreg: u32,
        base: PayloadBase,
        offset: u32,
        len: u32,
    },
    Meta {
        dreg: u32,
        key: u32,
    },
    MetaSet {
        sreg: u32,
        key: u32,
    },
    Ct {
        dreg: u32,
        key: u32,
        /// 0 original, 1 reply; `None` for keys without direction.
        dir: Option<u8>,
    },
    CtSet {
        sreg: u32,
        key: u32,
    },
    /// `NFT_CMP_EQ` = 0, `NFT_CMP_NEQ` = 1.
    Cmp {
        sreg: u32,
        op: u32,
        data: Vec<u8>,
    },
    Bitwise {
        sreg: u32,
        dreg: u32,
        mask: Vec<u8>,
        xor: Vec<u8>,
    },
    /// `NFT_BYTEORDER_HTON` of `len` bytes in units of `size`.
    Hton {
        reg: u32,
        len: u32,
        size: u32,
    },
    /// `NFT_RANGE_EQ` = 0, `NFT_RANGE_NEQ` = 1.
    Range {
        sreg: u32,
        op: u32,
        from: Vec<u8>,
        to: Vec<u8>,
    },
    Lookup {
        set: String,
        sreg: u32,
        dreg: Option<u32>,
        invert: bool,
    },
    ImmediateData {
        dreg: u32,
        data: Vec<u8>,
    },
    ImmediateVerdict(Verdict),
    Numgen {
        dreg: u32,
        modulus: u32,
        offset: u32,
    },
    Jhash {
        sreg: u32,
        dreg: u32,
        len: u32,
        modulus: u32,
        seed: u32,
        offset: u32,
    },
    /// `NFT_FIB_RESULT_ADDRTYPE` of the destination address.
    FibDaddrType {
        dreg: u32,
    },
    Nat {
        /// `NFT_NAT_SNAT` = 0, `NFT_NAT_DNAT` = 1.
        kind: u32,
        nfproto: u32,
        addr: u32,
        proto: Option<u32>,
        flags: u32,
    },
    Masq {
        flags: u32,
    },
    Reject {
        kind: u32,
        code: Option<u8>,
    },
    Counter,
    Notrack,
    Dynset {
        set: String,
        sreg_key: u32,
        sreg_data: Option<u32>,
        timeout_ms: Option<u64>,
    },
}

/// `NF_NAT_RANGE_*` flags.
pub(crate) mod nat_flags {
    pub const PROTO_RANDOM: u32 = 1 << 2;
    pub const PERSISTENT: u32 = 1 << 3;
    pub const PROTO_RANDOM_FULLY: u32 = 1 << 4;
}

/// The kernel's encoding of a verdict code (`NF_DROP`, `NF_ACCEPT`, `NFT_*`).
pub(crate) fn verdict_code(v: &Verdict) -> i32 {
    match v {
        Verdict::Drop => 0,
        Verdict::Accept => 1,
        Verdict::Continue => -1,
        Verdict::Jump(_) => -3,
        Verdict::Goto(_) => -4,
        Verdict::Return => -5,
    }
}

/// `NFTA_DATA_VERDICT { CODE, CHAIN }` nested in `kind`.
pub(crate) fn put_verdict(buf: &mut Buf, kind: u16, v: &Verdict) {
    use super::wire::{NFTA_VERDICT_CHAIN, NFTA_VERDICT_CODE};
    let outer = buf.begin_nest(kind);
    let inner = buf.begin_nest(NFTA_DATA_VERDICT);
    buf.u32(NFTA_VERDICT_CODE, verdict_code(v) as u32);
    if let Some(chain) = v.chain() {
        buf.str(NFTA_VERDICT_CHAIN, chain);
    }
    buf.end_nest(inner);
    buf.end_nest(outer);
}

impl Expr {
    fn name(&self) -> &'static str {
        match self {
            Expr::Payload { .. } => "payload",
            Expr::Meta { .. } | Expr::MetaSet { .. } => "meta",
            Expr::Ct { .. } | Expr::CtSet { .. } => "ct",
            Expr::Cmp { .. } => "cmp",
            Expr::Bitwise { .. } => "bitwise",
            Expr::Hton { .. } => "byteorder",
            Expr::Range { .. } => "range",
            Expr::Lookup { .. } => "lookup",
            Expr::ImmediateData { .. } | Expr::ImmediateVerdict(_) => "immediate",
            Expr::Numgen { .. } => "numgen",
            Expr::Jhash { .. } => "hash",
            Expr::FibDaddrType { .. } => "fib",
            Expr::Nat { .. } => "nat",
            Expr::Masq { .. } => "masq",
            Expr::Reject { .. } => "reject",
            Expr::Counter => "counter",
            Expr::Notrack => "notrack",
            Expr::Dynset { .. } => "dynset",
        }
    }

    /// Append `NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA {...} }`.
    pub(crate) fn encode(&self, b: &mut Buf) {
        let elem = b.begin_nest(NFTA_LIST_ELEM);
        b.str(NFTA_EXPR_NAME, self.name());
        if !matches!(self, Expr::Counter | Expr::Notrack) {
            let data = b.begin_nest(NFTA_EXPR_DATA);
            self.encode_data(b);
            b.end_nest(data);
        }
        b.end_nest(elem);
    }

    fn encode_data(&self, b: &mut Buf) {
        match self {
            Expr::Payload {
                dreg,
                base,
                offset,
                len,
            } => {
                b.u32(1, *dreg); // NFTA_PAYLOAD_DREG
                b.u32(2, *base as u32);
                b.u32(3, *offset);
                b.u32(4, *len);
            }
            Expr::Meta { dreg, key } => {
                b.u32(1, *dreg); // NFTA_META_DREG
                b.u32(2, *key);
            }
            Expr::MetaSet { sreg, key } => {
                b.u32(2, *key); // NFTA_META_KEY
                b.u32(3, *sreg); // NFTA_META_SREG
            }
            Expr::Ct { dreg, key, dir } => {
                b.u32(1, *dreg); // NFTA_CT_DREG
                b.u32(2, *key);
                if let Some(dir) = dir {
                    b.attr(3, &[*dir]); // NFTA_CT_DIRECTION (u8)
                }
            }
            Expr::CtSet { sreg, key } => {
                b.u32(2, *key); // NFTA_CT_KEY
                b.u32(4, *sreg); // NFTA_CT_SREG
            }
            Expr::Cmp { sreg, op, data } => {
                b.u32(1, *sreg); // NFTA_CMP_SREG
                b.u32(2, *op);
                b.data_value(3, data);
            }
            Expr::Bitwise {
                sreg,
                dreg,
                mask,
                xor,
            } => {
                b.u32(1, *sreg); // NFTA_BITWISE_SREG
                b.u32(2, *dreg);
                b.u32(3, mask.len() as u32);
                b.data_value(4, mask);
                b.data_value(5, xor);
            }
            Expr::Hton { reg, len, size } => {
                b.u32(1, *reg); // NFTA_BYTEORDER_SREG
                b.u32(2, *reg);
                b.u32(3, 1); // NFT_BYTEORDER_HTON
                b.u32(4, *len);
                b.u32(5, *size);
            }
            Expr::Range { sreg, op, from, to } => {
                b.u32(1, *sreg); // NFTA_RANGE_SREG
                b.u32(2, *op);
                b.data_value(3, from);
                b.data_value(4, to);
            }
            Expr::Lookup {
                set,
                sreg,
                dreg,
                invert,
            } => {
                b.str(1, set); // NFTA_LOOKUP_SET
                b.u32(2, *sreg);
                if let Some(dreg) = dreg {
                    b.u32(3, *dreg);
                }
                if *invert {
                    b.u32(5, 1); // NFTA_LOOKUP_FLAGS: NFT_LOOKUP_F_INV
                }
            }
            Expr::ImmediateData { dreg, data } => {
                b.u32(1, *dreg); // NFTA_IMMEDIATE_DREG
                b.data_value(2, data);
            }
            Expr::ImmediateVerdict(v) => {
                b.u32(1, REG_VERDICT);
                put_verdict(b, 2, v);
            }
            Expr::Numgen {
                dreg,
                modulus,
                offset,
            } => {
                b.u32(1, *dreg); // NFTA_NG_DREG
                b.u32(2, *modulus);
                b.u32(3, 1); // NFT_NG_RANDOM
                if *offset != 0 {
                    b.u32(4, *offset);
                }
            }
            Expr::Jhash {
                sreg,
                dreg,
                len,
                modulus,
                seed,
                offset,
            } => {
                b.u32(1, *sreg); // NFTA_HASH_SREG
                b.u32(2, *dreg);
                b.u32(3, *len);
                b.u32(4, *modulus);
                b.u32(5, *seed);
                if *offset != 0 {
                    b.u32(6, *offset);
                }
                b.u32(7, 0); // NFT_HASH_JENKINS
            }
            Expr::FibDaddrType { dreg } => {
                b.u32(1, *dreg); // NFTA_FIB_DREG
                b.u32(2, 3); // NFT_FIB_RESULT_ADDRTYPE
                b.u32(3, 1 << 1); // NFTA_FIB_F_DADDR
            }
            Expr::Nat {
                kind,
                nfproto,
                addr,
                proto,
                flags,
            } => {
                b.u32(1, *kind); // NFTA_NAT_TYPE
                b.u32(2, *nfproto);
                b.u32(3, *addr); // REG_ADDR_MIN
                if let Some(proto) = proto {
                    b.u32(5, *proto); // REG_PROTO_MIN
                }
                if *flags != 0 {
                    b.u32(7, *flags);
                }
            }
            Expr::Masq { flags } => {
                if *flags != 0 {
                    b.u32(1, *flags); // NFTA_MASQ_FLAGS
                }
            }
            Expr::Reject { kind, code } => {
                b.u32(1, *kind); // NFTA_REJECT_TYPE
                if let Some(code) = code {
                    b.attr(2, &[*code]); // NFTA_REJECT_ICMP_CODE (u8)
                }
            }
            Expr::Counter | Expr::Notrack => {}
            Expr::Dynset {
                set,
                sreg_key,
                sreg_data,
                timeout_ms,
            } => {
                b.str(1, set); // NFTA_DYNSET_SET_NAME
                b.u32(3, 1); // NFTA_DYNSET_OP: NFT_DYNSET_OP_UPDATE
                b.u32(4, *sreg_key);
                if let Some(data) = sreg_data {
                    b.u32(5, *data);
                }
                if let Some(ms) = timeout_ms {
                    b.u64(6, *ms);
                }
            }
        }
    }
}
