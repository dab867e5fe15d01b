//! Rules as typed, high-level statements. The compiler ([`super::compile`])
//! turns them into kernel expressions and allocates the registers: a
//! planner never sees a register.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use super::model::{DataType, Value, Verdict};

/// One rule of a chain: statements evaluated in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Rule {
    pub exprs: Vec<Stmt>,
    /// Shown by `nft list` as `comment "..."` (at most 255 bytes).
    pub comment: Option<String>,
}

impl Rule {
    pub fn new(exprs: Vec<Stmt>) -> Rule {
        Rule {
            exprs,
            comment: None,
        }
    }

    pub fn with_comment(mut self, comment: impl Into<String>) -> Rule {
        self.comment = Some(comment.into());
        self
    }
}

/// A comparison of a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CmpOp {
    #[default]
    Eq,
    Ne,
}

/// A statement of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Stmt {
    /// `FIELD [!=] VALUE`.
    Match {
        field: Field,
        op: CmpOp,
        value: Value,
    },
    /// `ip saddr [!=] 10.244.0.0/16` (a prefix of an address field).
    Prefix { field: Field, op: CmpOp, net: IpNet },
    /// `iifname [!=] "veth*"` (a name starting with `prefix`).
    IfNamePrefix {
        field: Field,
        op: CmpOp,
        prefix: String,
    },
    /// `FIELD [!=] FROM-TO` (inclusive).
    Range {
        field: Field,
        op: CmpOp,
        from: Value,
        to: Value,
    },
    /// Any of the bits `flags` set in a 32-bit field (`ct state
    /// established,related`), or none when `negate`. See [`ct_state`] and
    /// [`ct_status`].
    FlagsAny {
        field: Field,
        flags: u32,
        negate: bool,
    },
    /// `a . b . c [!=] @set` (concatenated key when several fields).
    InSet {
        fields: Vec<Field>,
        set: String,
        negate: bool,
    },
    /// `a . b vmap @map`: the verdict of the element found; no verdict
    /// (the rule goes on) when there is none.
    VerdictMap { fields: Vec<Field>, map: String },
    /// Destination NAT.
    Dnat { to: NatTarget, flags: NatFlags },
    /// Source NAT.
    Snat { to: NatTarget, flags: NatFlags },
    /// `masquerade [fully-random]`.
    Masquerade { fully_random: bool },
    /// `reject with ...`.
    Reject(Reject),
    /// `counter`.
    Counter,
    /// `accept`, `drop`, `jump C`, ...
    Verdict(Verdict),
    /// `meta mark set VALUE`.
    SetMark(u32),
    /// `meta mark set meta mark or BITS`.
    OrMark(u32),
    /// `ct mark set VALUE`.
    SetCtMark(u32),
    /// `notrack` (in a `raw`-priority prerouting/output chain).
    Notrack,
    /// `update @set { key [: data] } [timeout T]`: add the key built from
    /// the packet (or refresh its timeout). The set needs `flags.dynamic`
    /// (and `flags.timeout` for a timeout).
    DynsetUpdate {
        set: String,
        key: Vec<Field>,
        data: Option<Vec<Field>>,
        timeout: Option<Duration>,
    },
}

/// Where NAT sends the packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NatTarget {
    /// A fixed address.
    Addr(IpAddr),
    /// A fixed address and port.
    AddrPort(IpAddr, u16),
    /// Look the key `fields` up in `map`, which yields `data` (an address,
    /// or address `.` port); no NAT (and the rule stops) when the key is
    /// absent. With `remember`, the same rule also records the chosen
    /// backend in a dynamic map (session affinity):
    /// `update @set { KEY : <backend> } timeout T`, then NATs to it. The
    /// kernel runs this, but `nft` 1.0.6 aborts when it *lists* such a
    /// rule; the listable alternative (record after NAT with
    /// [`Stmt::DynsetUpdate`] of `ip daddr . th dport`) is in docs/linux.md.
    Map {
        fields: Vec<Field>,
        map: String,
        data: NatData,
        remember: Option<Remember>,
    },
}

/// The layout of the data of a NAT map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatData {
    /// `ipv4_addr`
    Ip4,
    /// `ipv4_addr . inet_service`
    Ip4Port,
    /// `ipv6_addr`
    Ip6,
    /// `ipv6_addr . inet_service`
    Ip6Port,
}

impl NatData {
    /// The map's data types.
    pub fn types(self) -> Vec<DataType> {
        match self {
            NatData::Ip4 => vec![DataType::Ipv4Addr],
            NatData::Ip4Port => vec![DataType::Ipv4Addr, DataType::InetService],
            NatData::Ip6 => vec![DataType::Ipv6Addr],
            NatData::Ip6Port => vec![DataType::Ipv6Addr, DataType::InetService],
        }
    }
}

/// Record the NAT backend chosen by a map lookup in a dynamic map keyed by
/// `key` (e.g. `ip saddr . ip daddr . th dport`), with `timeout`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Remember {
    pub set: String,
    pub key: Vec<Field>,
    pub timeout: Option<Duration>,
}

/// NAT flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NatFlags {
    pub persistent: bool,
    pub random: bool,
    pub fully_random: bool,
}

/// How to reject. `Icmp*` are ICMP (in `ip` tables) or the matching ICMPv6
/// codes (in `ip6` tables); `Icmpx*` work in every family (`inet`,
/// `bridge`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reject {
    TcpReset,
    IcmpPortUnreachable,
    IcmpHostUnreachable,
    IcmpAdminProhibited,
    IcmpxPortUnreachable,
    IcmpxHostUnreachable,
    IcmpxAdminProhibited,
    IcmpxNoRoute,
}

/// Bits of `ct state` for [`Stmt::FlagsAny`].
pub mod ct_state {
    pub const INVALID: u32 = 1;
    pub const ESTABLISHED: u32 = 2;
    pub const RELATED: u32 = 4;
    pub const NEW: u32 = 8;
    pub const UNTRACKED: u32 = 64;
}

/// Bits of `ct status` for [`Stmt::FlagsAny`].
pub mod ct_status {
    pub const EXPECTED: u32 = 1;
    pub const SEEN_REPLY: u32 = 2;
    pub const ASSURED: u32 = 4;
    pub const CONFIRMED: u32 = 8;
    pub const SNAT: u32 = 16;
    pub const DNAT: u32 = 32;
}

/// What a statement reads from the packet or its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    IpSaddr,
    IpDaddr,
    IpProtocol,
    Ip6Saddr,
    Ip6Daddr,
    Ip6Nexthdr,
    /// `th sport`: the transport header's first 2 bytes (tcp, udp, sctp).
    ThSport,
    /// `th dport`.
    ThDport,
    MetaL4Proto,
    MetaNfProto,
    /// `meta protocol` (the ethertype).
    MetaProtocol,
    MetaIifName,
    MetaOifName,
    MetaIif,
    MetaOif,
    MetaMark,
    MetaPktType,
    CtState,
    CtStatus,
    CtMark,
    CtDirection,
    /// `ct original ip saddr`.
    CtOriginalIpSaddr,
    /// `ct original ip daddr`.
    CtOriginalIpDaddr,
    /// `ct original proto-dst`.
    CtOriginalProtoDst,
    /// `ether type` (bridge, netdev).
    EtherType,
    EtherSaddr,
    EtherDaddr,
    /// `arp saddr ip`: the ARP sender protocol address.
    ArpSaddrIp,
    /// `arp daddr ip`: the ARP target protocol address.
    ArpDaddrIp,
    /// `fib daddr type`: the route type of the destination (`local` for
    /// an address of this host). A [`Value::AddrType`].
    FibDaddrType,
    /// `numgen random mod MODULUS offset OFFSET` (a 32-bit integer).
    NumgenRandom {
        modulus: u32,
        offset: u32,
    },
    /// `jhash a . b mod MODULUS seed SEED offset OFFSET` (a 32-bit integer).
    Jhash {
        fields: Vec<Field>,
        modulus: u32,
        seed: u32,
        offset: u32,
    },
}

impl Field {
    /// The type of what the field yields (for set keys).
    pub fn data_type(&self) -> DataType {
        use Field::*;
        match self {
            IpSaddr | IpDaddr | CtOriginalIpSaddr | CtOriginalIpDaddr | ArpSaddrIp | ArpDaddrIp => {
                DataType::Ipv4Addr
            }
            Ip6Saddr | Ip6Daddr => DataType::Ipv6Addr,
            IpProtocol | Ip6Nexthdr | MetaL4Proto | MetaNfProto | MetaPktType | CtDirection => {
                DataType::InetProto
            }
            ThSport | ThDport | CtOriginalProtoDst => DataType::InetService,
            MetaProtocol | EtherType => DataType::EtherType,
            MetaIifName | MetaOifName => DataType::IfName,
            MetaIif | MetaOif => DataType::IfIndex,
            EtherSaddr | EtherDaddr => DataType::EtherAddr,
            MetaMark
            | CtState
            | CtStatus
            | CtMark
            | FibDaddrType
            | NumgenRandom { .. }
            | Jhash { .. } => DataType::Mark,
        }
    }

    /// Bytes of the value.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.data_type().len()
    }

    /// Bytes in registers (padded to 4).
    pub fn reg_len(&self) -> usize {
        self.data_type().reg_len()
    }
}
