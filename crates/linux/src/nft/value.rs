//! Values and their types: what set keys, map data and matches hold,
//! with their byte layout in the kernel's registers.

use std::net::{Ipv4Addr, Ipv6Addr};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::model::Element;

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
