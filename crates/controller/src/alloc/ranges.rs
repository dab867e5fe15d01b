//! Address arithmetic: offsets inside a CIDR, LoadBalancer pools (CIDRs and `a-b`
//! ranges), and the blocks of the cluster CIDR that nodes get.

use std::net::IpAddr;

use ipnet::IpNet;
use podnet_model::config::AddressPool;

/// Largest number of addresses the controller considers in one CIDR or range; bigger
/// ones (IPv6) are used from their start only.
pub const MAX_RANGE: u128 = 1 << 24;

pub fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn u128_to_ip(v: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4((v as u32).into())
    } else {
        IpAddr::V6(v.into())
    }
}

/// Number of addresses in `net` (capped at [`MAX_RANGE`]).
pub fn size(net: IpNet) -> u128 {
    let bits = (net.max_prefix_len() - net.prefix_len()) as u32;
    if bits >= 127 {
        MAX_RANGE
    } else {
        (1u128 << bits).min(MAX_RANGE)
    }
}

/// The address at `offset` from the network address.
pub fn nth(net: IpNet, offset: u128) -> IpAddr {
    u128_to_ip(
        ip_to_u128(net.network()) + offset,
        matches!(net, IpNet::V4(_)),
    )
}

/// Offset of `ip` inside `net`, when inside.
pub fn offset_of(net: IpNet, ip: IpAddr) -> Option<u128> {
    net.contains(&ip)
        .then(|| ip_to_u128(ip) - ip_to_u128(net.network()))
}

/// The `index`th block of prefix length `len` inside `net`.
pub fn block(net: IpNet, len: u8, index: u128) -> Option<IpNet> {
    if len < net.prefix_len() || len > net.max_prefix_len() {
        return None;
    }
    let bits = (len - net.prefix_len()) as u32;
    if bits < 128 && index >> bits != 0 {
        return None;
    }
    let step_bits = (net.max_prefix_len() - len) as u32;
    let step = if step_bits >= 128 {
        0
    } else {
        1u128 << step_bits
    };
    let addr = u128_to_ip(
        ip_to_u128(net.network()) + index * step,
        matches!(net, IpNet::V4(_)),
    );
    IpNet::new(addr, len).ok()
}

/// Number of blocks of length `len` in `net` (capped at [`MAX_RANGE`]), 0 when `len`
/// does not fit.
pub fn block_count(net: IpNet, len: u8) -> u128 {
    if len < net.prefix_len() || len > net.max_prefix_len() {
        return 0;
    }
    let bits = (len - net.prefix_len()) as u32;
    if bits >= 127 {
        MAX_RANGE
    } else {
        (1u128 << bits).min(MAX_RANGE)
    }
}

/// An inclusive run of addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub first: IpAddr,
    pub count: u128,
}

impl Range {
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.first.is_ipv4() && {
            let (a, x) = (ip_to_u128(self.first), ip_to_u128(ip));
            x >= a && x - a < self.count
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let base = ip_to_u128(self.first);
        let v4 = self.first.is_ipv4();
        (0..self.count.min(MAX_RANGE)).map(move |i| u128_to_ip(base + i, v4))
    }
}

/// A LoadBalancer pool with its addresses parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub auto_assign: bool,
    pub ranges: Vec<Range>,
}

/// A pool entry that is neither a CIDR nor an `a-b` range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "load-balancer pool {pool:?}: expected a CIDR or an address range first-last, found {found:?}"
)]
pub struct BadPoolEntry {
    pub pool: String,
    pub found: String,
}

impl Pool {
    pub fn parse(p: &AddressPool) -> Result<Pool, BadPoolEntry> {
        let bad = |s: &str| BadPoolEntry {
            pool: p.name.clone(),
            found: s.to_string(),
        };
        let mut ranges = Vec::new();
        for entry in &p.addresses {
            let s = entry.trim();
            if let Some((a, b)) = s.split_once('-') {
                let a: IpAddr = a.trim().parse().map_err(|_| bad(s))?;
                let b: IpAddr = b.trim().parse().map_err(|_| bad(s))?;
                let (x, y) = (ip_to_u128(a), ip_to_u128(b));
                if a.is_ipv4() != b.is_ipv4() || y < x {
                    return Err(bad(s));
                }
                ranges.push(Range {
                    first: a,
                    count: (y - x).saturating_add(1),
                });
            } else {
                let net: IpNet = s.parse().map_err(|_| bad(s))?;
                ranges.push(Range {
                    first: net.network(),
                    count: size(net),
                });
            }
        }
        Ok(Pool {
            name: p.name.clone(),
            auto_assign: p.auto_assign,
            ranges,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(ip))
    }

    /// Every address, in order.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.ranges.iter().flat_map(Range::iter)
    }
}

/// Parses every pool, skipping (and reporting) bad ones.
pub fn parse_pools(pools: &[AddressPool]) -> (Vec<Pool>, Vec<BadPoolEntry>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for p in pools {
        match Pool::parse(p) {
            Ok(p) => ok.push(p),
            Err(e) => bad.push(e),
        }
    }
    (ok, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_blocks() {
        let net: IpNet = "10.96.0.0/12".parse().unwrap();
        assert_eq!(size(net), 1 << 20);
        assert_eq!(nth(net, 10).to_string(), "10.96.0.10");
        assert_eq!(offset_of(net, "10.96.1.0".parse().unwrap()), Some(256));
        assert_eq!(offset_of(net, "10.112.0.0".parse().unwrap()), None);
        let cluster: IpNet = "10.244.0.0/16".parse().unwrap();
        assert_eq!(block_count(cluster, 24), 256);
        assert_eq!(block(cluster, 24, 3).unwrap().to_string(), "10.244.3.0/24");
        assert_eq!(block(cluster, 24, 256), None);
        assert_eq!(block_count(cluster, 8), 0);
    }

    #[test]
    fn pools_parse_ranges_and_cidrs() {
        let p = Pool::parse(&AddressPool {
            name: "p".into(),
            addresses: vec!["172.18.255.200-172.18.255.202".into(), "10.0.0.0/31".into()],
            auto_assign: true,
        })
        .unwrap();
        let all: Vec<String> = p.addresses().map(|a| a.to_string()).collect();
        assert_eq!(
            all,
            [
                "172.18.255.200",
                "172.18.255.201",
                "172.18.255.202",
                "10.0.0.0",
                "10.0.0.1"
            ]
        );
        assert!(p.contains("172.18.255.201".parse().unwrap()));
        assert!(!p.contains("172.18.255.203".parse().unwrap()));
        let err = Pool::parse(&AddressPool {
            name: "q".into(),
            addresses: vec!["1.2.3.9-1.2.3.1".into()],
            auto_assign: true,
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("found \"1.2.3.9-1.2.3.1\""),
            "{err}"
        );
    }
}
