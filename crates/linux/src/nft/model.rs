//! The nftables object model: tables, chains, sets and maps, their elements,
//! values and verdicts. Plain values, comparable with `==`; no I/O.
//!
//! Rules (the typed statements) live in [`super::rule`].

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// The address family of a table (`nft add table FAMILY NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Ip,
    Ip6,
    Inet,
    Bridge,
    Arp,
    Netdev,
}

impl Family {
    /// The `NFPROTO_*` number the kernel uses (`nfgen_family`).
    pub fn nfproto(self) -> u8 {
        match self {
            Family::Inet => 1,
            Family::Ip => 2,
            Family::Arp => 3,
            Family::Netdev => 5,
            Family::Bridge => 7,
            Family::Ip6 => 10,
        }
    }

    /// The keyword `nft` uses.
    pub fn name(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
            Family::Bridge => "bridge",
            Family::Arp => "arp",
            Family::Netdev => "netdev",
        }
    }
}

/// A table: the unit podnet owns and replaces atomically.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Table {
    pub family: Family,
    pub name: String,
}

impl Table {
    pub fn new(family: Family, name: impl Into<String>) -> Table {
        Table {
            family,
            name: name.into(),
        }
    }
}

/// A chain; a base chain (attached to a netfilter hook) when `base` is set,
/// otherwise a regular chain reached by `jump`/`goto`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Chain {
    pub name: String,
    pub base: Option<BaseChain>,
}

impl Chain {
    /// A regular chain (no hook).
    pub fn regular(name: impl Into<String>) -> Chain {
        Chain {
            name: name.into(),
            base: None,
        }
    }

    /// A base chain with policy `accept`.
    pub fn base(name: impl Into<String>, kind: ChainType, hook: Hook, priority: i32) -> Chain {
        Chain {
            name: name.into(),
            base: Some(BaseChain {
                kind,
                hook,
                priority,
                policy: Policy::Accept,
                device: None,
            }),
        }
    }
}

/// The hook of a base chain: `type KIND hook HOOK [device DEV] priority P; policy POLICY;`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaseChain {
    pub kind: ChainType,
    pub hook: Hook,
    pub priority: i32,
    pub policy: Policy,
    /// The device of a `netdev` (or `inet`) `ingress` chain; `None` otherwise.
    pub device: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainType {
    Filter,
    Nat,
    Route,
}

impl ChainType {
    pub fn name(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
            ChainType::Route => "route",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
    Ingress,
}

impl Hook {
    /// The hook number in `family` (`NF_INET_*`, `NF_BR_*`, `NF_ARP_*`,
    /// `NF_NETDEV_INGRESS`).
    pub fn number(self, family: Family) -> u32 {
        match (family, self) {
            (Family::Netdev, _) => 0,
            (Family::Arp, Hook::Input) => 0,
            (Family::Arp, Hook::Output) => 1,
            (Family::Arp, _) => 2,
            (_, Hook::Prerouting) => 0,
            (_, Hook::Input) => 1,
            (_, Hook::Forward) => 2,
            (_, Hook::Output) => 3,
            (_, Hook::Postrouting) => 4,
            (_, Hook::Ingress) => 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Policy {
    #[default]
    Accept,
    Drop,
}

/// A named set (`data: None`) or map (`data: Some`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Set {
    pub name: String,
    /// The key's fields; a concatenation (`a . b`) when there are several.
    pub key: Vec<DataType>,
    pub data: Option<SetData>,
    pub flags: SetFlags,
    /// Default timeout of elements (needs `flags.timeout`).
    pub timeout: Option<Duration>,
    /// Maximum number of elements (`size N`), needed by the kernel for sets
    /// filled from the packet path (`dynamic`); a hint otherwise.
    pub size: Option<u32>,
}

impl Set {
    /// A plain set of `key`, no flags.
    pub fn new(name: impl Into<String>, key: Vec<DataType>) -> Set {
        Set {
            name: name.into(),
            key,
            data: None,
            flags: SetFlags::default(),
            timeout: None,
            size: None,
        }
    }

    /// A map from `key` to `data`.
    pub fn map(name: impl Into<String>, key: Vec<DataType>, data: SetData) -> Set {
        Set {
            data: Some(data),
            ..Set::new(name, key)
        }
    }

    pub fn with_flags(mut self, flags: SetFlags) -> Set {
        self.flags = flags;
        self
    }

    pub fn is_map(&self) -> bool {
        self.data.is_some()
    }

    /// Bytes of the key as the kernel stores it: one field as it is, the
    /// fields of a concatenation padded to 4 bytes each.
    pub fn key_len(&self) -> usize {
        match self.key.as_slice() {
            [one] => one.len(),
            many => concat_len(many),
        }
    }
}

/// What a map yields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SetData {
    /// A verdict map (`vmap`): `jump`/`goto`/`accept`/... per key.
    Verdict,
    /// Values, a concatenation when there are several (`ipv4_addr . inet_service`).
    Values(Vec<DataType>),
}

/// Set flags (`flags interval, timeout, constant, dynamic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SetFlags {
    /// Elements are ranges or prefixes ([`Element::key_end`]).
    pub interval: bool,
    /// Elements may expire.
    pub timeout: bool,
    /// Contents never change after creation.
    pub constant: bool,
    /// Updated from the packet path (`update @set {...}`): required for
    /// [`super::Stmt::DynsetUpdate`] and affinity.
    pub dynamic: bool,
}

/// The type of one field of a key or of map data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    Ipv4Addr,
    Ipv6Addr,
    /// An IP protocol number (`inet_proto`, 1 byte).
    InetProto,
    /// A port (`inet_service`, 2 bytes, big-endian).
    InetService,
    /// An interface name (16 bytes, NUL-padded).
    IfName,
    /// A MAC address (6 bytes).
    EtherAddr,
    /// A 32-bit integer in host byte order (`mark`): marks, `numgen` and
    /// `jhash` results.
    Mark,
    /// An interface index (4 bytes, host order).
    IfIndex,
    /// An ethertype (2 bytes, big-endian).
    EtherType,
    /// A verdict (only as map data).
    Verdict,
}

impl DataType {
    /// Bytes of a value of this type.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(self) -> usize {
        match self {
            DataType::Ipv4Addr => 4,
            DataType::Ipv6Addr => 16,
            DataType::InetProto => 1,
            DataType::InetService => 2,
            DataType::IfName => 16,
            DataType::EtherAddr => 6,
            DataType::Mark | DataType::IfIndex => 4,
            DataType::EtherType => 2,
            DataType::Verdict => 4,
        }
    }

    /// Bytes it takes in kernel registers (and in concatenated keys): the
    /// length rounded up to the 4-byte register size.
    pub fn reg_len(self) -> usize {
        self.len().div_ceil(4) * 4
    }

    /// The `nft` tool's datatype id (so `nft list` prints values readably).
    pub fn type_id(self) -> u32 {
        match self {
            DataType::Verdict => 1,
            DataType::Ipv4Addr => 7,
            DataType::Ipv6Addr => 8,
            DataType::EtherAddr => 9,
            DataType::EtherType => 10,
            DataType::InetProto => 12,
            DataType::InetService => 13,
            DataType::Mark => 19,
            DataType::IfIndex => 20,
            DataType::IfName => 41,
        }
    }

    /// True for types stored in host byte order (for the `nft` tool's
    /// byte-order hints).
    pub fn host_order(self) -> bool {
        matches!(self, DataType::Mark | DataType::IfIndex | DataType::IfName)
    }
}

/// Bytes of a concatenation of `types` (each field padded to 4 bytes).
pub fn concat_len(types: &[DataType]) -> usize {
    types.iter().map(|t| t.reg_len()).sum()
}

/// The `nft` tool's type id for a concatenation: the ids of the fields, 6
/// bits each, the first field in the highest bits.
pub fn concat_type_id(types: &[DataType]) -> u32 {
    types.iter().fold(0, |id, t| (id << 6) | t.type_id())
}

/// One value of a [`DataType`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    /// IP protocol number (6 = tcp, 17 = udp, 132 = sctp).
    Proto(u8),
    Port(u16),
    IfName(String),
    Ether([u8; 6]),
    /// 32-bit integer, host order (mark, numgen/jhash result).
    U32(u32),
    IfIndex(u32),
    EtherType(u16),
    /// `meta nfproto` (2 = ipv4, 10 = ipv6).
    NfProto(u8),
    /// `meta pkttype` (0 host, 1 broadcast, 2 multicast, 3 other).
    PktType(u8),
    /// `ct direction` (0 original, 1 reply).
    CtDirection(u8),
    /// `fib ... type` result.
    AddrType(AddrType),
}

/// Protocol numbers for [`Value::Proto`].
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
    pub const SCTP: u8 = 132;
}

/// Ethertypes for [`Value::EtherType`].
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const IPV6: u16 = 0x86dd;
}

/// Route types (`RTN_*`), as `fib daddr type` yields them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddrType {
    Unicast = 1,
    Local = 2,
    Broadcast = 3,
    Anycast = 4,
    Multicast = 5,
    Blackhole = 6,
    Unreachable = 7,
    Prohibit = 8,
}

impl Value {
    /// The type of this value.
    pub fn data_type(&self) -> DataType {
        match self {
            Value::Ipv4(_) => DataType::Ipv4Addr,
            Value::Ipv6(_) => DataType::Ipv6Addr,
            Value::Proto(_) | Value::NfProto(_) | Value::PktType(_) | Value::CtDirection(_) => {
                DataType::InetProto
            }
            Value::Port(_) => DataType::InetService,
            Value::IfName(_) => DataType::IfName,
            Value::Ether(_) => DataType::EtherAddr,
            Value::U32(_) | Value::AddrType(_) => DataType::Mark,
            Value::IfIndex(_) => DataType::IfIndex,
            Value::EtherType(_) => DataType::EtherType,
        }
    }

    /// The bytes the kernel compares (not padded).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Value::Ipv4(a) => a.octets().to_vec(),
            Value::Ipv6(a) => a.octets().to_vec(),
            Value::Proto(p) | Value::NfProto(p) | Value::PktType(p) | Value::CtDirection(p) => {
                vec![*p]
            }
            Value::Port(p) => p.to_be_bytes().to_vec(),
            Value::IfName(name) => {
                let mut bytes = [0u8; 16];
                let n = name.len().min(15);
                bytes[..n].copy_from_slice(&name.as_bytes()[..n]);
                bytes.to_vec()
            }
            Value::Ether(mac) => mac.to_vec(),
            Value::U32(v) | Value::IfIndex(v) => v.to_ne_bytes().to_vec(),
            Value::AddrType(t) => (*t as u32).to_ne_bytes().to_vec(),
            Value::EtherType(t) => t.to_be_bytes().to_vec(),
        }
    }
}

/// The bytes of a concatenation of values, each padded to 4 bytes.
pub fn concat_bytes(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 4);
    for v in values {
        let bytes = v.to_bytes();
        out.extend_from_slice(&bytes);
        out.resize(out.len() + (4 - bytes.len() % 4) % 4, 0);
    }
    out
}

/// A verdict: in a rule, or as the data of a verdict map element.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    Accept,
    Drop,
    Continue,
    Return,
    Jump(String),
    Goto(String),
}

impl Verdict {
    /// The chain this verdict refers to, if any.
    pub fn chain(&self) -> Option<&str> {
        match self {
            Verdict::Jump(c) | Verdict::Goto(c) => Some(c),
            _ => None,
        }
    }
}

/// One element of a set or map.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Element {
    /// The key (one value per key field).
    pub key: Vec<Value>,
    /// For interval sets: the last key of the range (inclusive). `None` in
    /// an interval set means the single key `key`.
    pub key_end: Option<Vec<Value>>,
    /// For maps: what the key maps to.
    pub data: Option<ElemData>,
    /// Per-element timeout (needs a set with `flags.timeout`).
    pub timeout: Option<Duration>,
}

/// The data of a map element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ElemData {
    Verdict(Verdict),
    Values(Vec<Value>),
}

impl Element {
    /// A set element.
    pub fn key(key: Vec<Value>) -> Element {
        Element {
            key,
            key_end: None,
            data: None,
            timeout: None,
        }
    }

    /// A map element mapping `key` to `data` values.
    pub fn map(key: Vec<Value>, data: Vec<Value>) -> Element {
        Element {
            data: Some(ElemData::Values(data)),
            ..Element::key(key)
        }
    }

    /// A verdict map element.
    pub fn verdict(key: Vec<Value>, verdict: Verdict) -> Element {
        Element {
            data: Some(ElemData::Verdict(verdict)),
            ..Element::key(key)
        }
    }

    /// A range `[from, to]` (inclusive) of an interval set.
    pub fn range(from: Vec<Value>, to: Vec<Value>) -> Element {
        Element {
            key_end: Some(to),
            ..Element::key(from)
        }
    }

    /// A CIDR of an interval set of addresses (`10.0.0.0/8`).
    pub fn prefix(net: IpNet) -> Element {
        let (from, to) = prefix_bounds(net);
        Element::range(vec![from], vec![to])
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Element {
        self.timeout = Some(timeout);
        self
    }
}

/// The first and last address of a prefix.
pub fn prefix_bounds(net: IpNet) -> (Value, Value) {
    match net {
        IpNet::V4(n) => {
            let n: Ipv4Net = n.trunc();
            (Value::Ipv4(n.network()), Value::Ipv4(n.broadcast()))
        }
        IpNet::V6(n) => {
            let n: Ipv6Net = n.trunc();
            (Value::Ipv6(n.network()), Value::Ipv6(n.broadcast()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_type_ids_are_six_bits_per_field() {
        let id = concat_type_id(&[DataType::Ipv4Addr, DataType::InetService]);
        assert_eq!(id, (7 << 6) | 13);
        let id = concat_type_id(&[DataType::IfName, DataType::Ipv4Addr]);
        assert_eq!(id, (41 << 6) | 7);
        assert_eq!(concat_type_id(&[DataType::Ipv4Addr]), 7);
    }

    #[test]
    fn values_pad_to_registers_in_concatenations() {
        let bytes = concat_bytes(&[
            Value::Ipv4(Ipv4Addr::new(10, 96, 0, 1)),
            Value::Proto(proto::TCP),
            Value::Port(80),
        ]);
        assert_eq!(bytes, vec![10, 96, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0]);
        assert_eq!(
            concat_len(&[
                DataType::Ipv4Addr,
                DataType::InetProto,
                DataType::InetService
            ]),
            12
        );
    }

    #[test]
    fn prefixes_become_inclusive_ranges() {
        let e = Element::prefix("10.244.0.0/16".parse().unwrap());
        assert_eq!(e.key, vec![Value::Ipv4(Ipv4Addr::new(10, 244, 0, 0))]);
        assert_eq!(
            e.key_end,
            Some(vec![Value::Ipv4(Ipv4Addr::new(10, 244, 255, 255))])
        );
    }
}
