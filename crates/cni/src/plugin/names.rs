//! Deterministic names and addresses derived from an attachment: the host-side veth
//! name, the pod's MAC address, and address arithmetic inside a pod CIDR. Pure.

use std::net::IpAddr;

use ipnet::IpNet;

/// The host-side veth name of an attachment: `veth` + 8 hex digits of a 32-bit FNV-1a
/// hash of `containerID/ifname` (12 bytes, within Linux's 15). Stable across runs and
/// builds, so DEL and GC find the link without any stored state.
pub fn host_veth_name(container_id: &str, ifname: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for b in container_id
        .bytes()
        .chain(std::iter::once(b'/'))
        .chain(ifname.bytes())
    {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("veth{hash:08x}")
}

/// The pod interface's MAC: `0a:58` + the four bytes of an IPv4 address (as Kubernetes'
/// bridge setups do), or `0a:58` + the last four bytes of an IPv6 address. Locally
/// administered, unicast, and the same for the same IP on every ADD.
pub fn mac_for_ip(ip: IpAddr) -> [u8; 6] {
    let tail: [u8; 4] = match ip {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    [0x0a, 0x58, tail[0], tail[1], tail[2], tail[3]]
}

/// Lower-case colon-separated MAC text.
pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The offset of `ip` inside `net` (the network address is 0), if inside.
pub fn offset_of(net: IpNet, ip: IpAddr) -> Option<u128> {
    if !net.contains(&ip) {
        return None;
    }
    match (net.network(), ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => Some(u128::from(u32::from(i) - u32::from(n))),
        (IpAddr::V6(n), IpAddr::V6(i)) => Some(u128::from(i) - u128::from(n)),
        _ => None,
    }
}

/// The address at `offset` inside `net`, if inside.
pub fn at_offset(net: IpNet, offset: u128) -> Option<IpAddr> {
    podnet_model::config::nth_address(net, offset)
}

/// The number of addresses in `net`, saturating at `u128::MAX`.
pub fn size_of(net: IpNet) -> u128 {
    let bits = u32::from(net.max_prefix_len() - net.prefix_len());
    1u128.checked_shl(bits).unwrap_or(u128::MAX)
}

/// The pod gateway: the first address after the network address.
pub fn gateway(net: IpNet) -> Option<IpAddr> {
    (size_of(net) >= 4).then(|| at_offset(net, 1)).flatten()
}

/// The offsets pods may get: from 2 (after the gateway) to the last address, excluding
/// the broadcast address for IPv4.
pub fn pod_offsets(net: IpNet) -> std::ops::RangeInclusive<u128> {
    let size = size_of(net);
    let last = match net {
        IpNet::V4(_) => size.saturating_sub(2),
        IpNet::V6(_) => size.saturating_sub(1),
    };
    2..=last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_are_stable_and_short() {
        let a = host_veth_name("abc123", "eth0");
        assert_eq!(a, host_veth_name("abc123", "eth0"));
        assert_ne!(a, host_veth_name("abc123", "eth1"));
        assert_ne!(a, host_veth_name("abc12", "3eth0"));
        assert!(a.len() <= 15 && a.starts_with("veth"), "{a}");
    }

    #[test]
    fn macs_and_offsets() {
        let ip: IpAddr = "10.244.1.5".parse().unwrap();
        assert_eq!(mac_text(mac_for_ip(ip)), "0a:58:0a:f4:01:05");
        let net: IpNet = "10.244.1.0/24".parse().unwrap();
        assert_eq!(gateway(net), Some("10.244.1.1".parse().unwrap()));
        assert_eq!(pod_offsets(net), 2..=254);
        assert_eq!(offset_of(net, ip), Some(5));
        assert_eq!(at_offset(net, 5), Some(ip));
        assert_eq!(offset_of(net, "10.244.2.1".parse().unwrap()), None);
        let tiny: IpNet = "10.0.0.0/30".parse().unwrap();
        assert_eq!(pod_offsets(tiny), 2..=2);
        assert_eq!(gateway("10.0.0.0/31".parse().unwrap()), None);
    }
}
