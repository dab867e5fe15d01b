//! The nftables object model: tables, chains, sets and maps, their elements,
//! values and verdicts. Plain values, comparable with `==`; no I/O.
//!
//! Rules (the typed statements) live in [`super::rule`]; values and their
//! types in [`super::value`].

use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

// The value types live in `value.rs`; re-exported here, where they were first.
pub use super::value::{
    concat_bytes, concat_len, concat_type_id, ethertype, proto, AddrType, DataType, Value,
};

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
