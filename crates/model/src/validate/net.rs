//! IP addresses, CIDRs and address ranges, parsed strictly: no leading zeros
//! (`010.0.0.1` is ambiguous, octal to some parsers), no IPv4-mapped IPv6 addresses,
//! no host bits set in a CIDR (`10.0.0.1/8` is written `10.0.0.0/8`).

use std::net::IpAddr;

use ipnet::IpNet;

use super::report::{quote, Mismatch, Report};

const IP: &str = "an IP address (e.g. 10.0.0.1 or fd00::1)";
const CIDR: &str = "a CIDR: an IP address, '/' and a prefix length (e.g. 10.0.0.0/16 or fd00::/64)";

/// `IPv4` or `IPv6`.
pub fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// Parses an IP address as Kubernetes' strict validation does.
pub fn parse_ip(s: &str) -> Result<IpAddr, Mismatch> {
    let ip: IpAddr = match s.parse() {
        Ok(ip) => ip,
        Err(_) => {
            let dotted = !s.contains(':') && s.split('.').count() == 4;
            let leading_zero = s.split('.').any(|p| {
                p.len() > 1 && p.starts_with('0') && p.bytes().all(|c| c.is_ascii_digit())
            });
            return Err(Mismatch::new(if dotted && leading_zero {
                "an IP address without leading zeros (e.g. 10.0.0.1, not 010.000.000.001)"
            } else {
                IP
            }));
        }
    };
    if let IpAddr::V6(v6) = ip {
        if let Some(v4) = v6.to_ipv4_mapped() {
            return Err(Mismatch::new(format!(
                "an IPv4 address written as IPv4 ({v4}), not as an IPv4-mapped IPv6 address"
            )));
        }
    }
    Ok(ip)
}

/// Parses `address/prefix`, refusing host bits.
pub fn parse_cidr(s: &str) -> Result<IpNet, Mismatch> {
    let Some((addr, len)) = s.split_once('/') else {
        return Err(Mismatch::new(CIDR));
    };
    let ip = match parse_ip(addr) {
        Ok(ip) => ip,
        Err(m) if m.expected == IP => return Err(Mismatch::new(CIDR)),
        Err(m) => {
            return Err(Mismatch::new(format!(
                "a CIDR whose address is {}",
                m.expected
            )))
        }
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let digits_ok = !len.is_empty()
        && len.bytes().all(|c| c.is_ascii_digit())
        && (len == "0" || !len.starts_with('0'));
    let prefix = match len.parse::<u8>() {
        Ok(p) if digits_ok && p <= max => p,
        _ => {
            return Err(Mismatch::new(format!(
                "a CIDR prefix length between 0 and {max} for {} (e.g. {}/{})",
                family(ip),
                addr,
                max / 2
            )))
        }
    };
    let net = IpNet::new(ip, prefix).map_err(|_| Mismatch::new(CIDR))?;
    check_network_address(net)?;
    Ok(net)
}

/// A CIDR (already parsed) must be written with its network address.
pub fn check_network_address(net: IpNet) -> Result<(), Mismatch> {
    if net.addr() == net.network() {
        Ok(())
    } else {
        Err(Mismatch::new(format!(
            "a CIDR whose address is its network address ({})",
            net.trunc()
        )))
    }
}

/// An inclusive range `first-last` of one family with first <= last.
pub fn parse_range(s: &str) -> Result<(IpAddr, IpAddr), Mismatch> {
    const RANGE: &str = "an address range \"first-last\" (e.g. 172.18.255.200-172.18.255.250)";
    let Some((a, b)) = s.split_once('-') else {
        return Err(Mismatch::new(RANGE));
    };
    let (a, b) = match (parse_ip(a.trim()), parse_ip(b.trim())) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(m), _) | (_, Err(m)) if m.expected != IP => {
            return Err(Mismatch::new(format!("an address range of {}", m.expected)))
        }
        _ => return Err(Mismatch::new(RANGE)),
    };
    if a.is_ipv4() != b.is_ipv4() {
        return Err(Mismatch::new(
            "an address range whose two ends are of one IP family",
        ));
    }
    if a > b {
        return Err(Mismatch::new(
            "an address range whose first address is not above its last",
        ));
    }
    Ok((a, b))
}

/// Why `ip` cannot be an endpoint or external address, if it cannot.
pub fn special_use(ip: IpAddr) -> Option<&'static str> {
    let link_local = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    let link_local_multicast = match ip {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => (v6.segments()[0] & 0xff0f) == 0xff02,
    };
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if link_local {
        Some("link-local")
    } else if link_local_multicast {
        Some("link-local multicast")
    } else {
        None
    }
}

/// A span of addresses of one family, for overlap checks between CIDRs and ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub v6: bool,
    pub first: u128,
    pub last: u128,
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl Span {
    pub fn of_net(net: IpNet) -> Span {
        Span::of_range(net.network(), net.broadcast())
    }

    pub fn of_range(first: IpAddr, last: IpAddr) -> Span {
        Span {
            v6: first.is_ipv6(),
            first: bits(first),
            last: bits(last),
        }
    }

    pub fn overlaps(&self, other: &Span) -> bool {
        self.v6 == other.v6 && self.first <= other.last && other.first <= self.last
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv6() == self.v6 && (self.first..=self.last).contains(&bits(ip))
    }
}

/// Do two CIDRs share any address?
pub fn overlaps(a: IpNet, b: IpNet) -> bool {
    Span::of_net(a).overlaps(&Span::of_net(b))
}

/// Checks an IP address at `field`; the parsed address when valid.
pub fn check_ip(r: &mut Report, field: impl Into<String>, s: &str) -> Option<IpAddr> {
    match parse_ip(s) {
        Ok(ip) => Some(ip),
        Err(m) => {
            r.push(field, m.expected, quote(s));
            None
        }
    }
}

/// Checks an IP address that must not be of special use (endpoints, external IPs).
pub fn check_unicast_ip(r: &mut Report, field: impl Into<String>, s: &str) -> Option<IpAddr> {
    let field = field.into();
    let ip = check_ip(r, &field, s)?;
    if let Some(why) = special_use(ip) {
        r.push(field, format!("an IP address that is not {why}"), quote(s));
        return None;
    }
    Some(ip)
}

/// Checks a CIDR at `field`; the parsed network when valid.
pub fn check_cidr(r: &mut Report, field: impl Into<String>, s: &str) -> Option<IpNet> {
    match parse_cidr(s) {
        Ok(net) => Some(net),
        Err(m) => {
            r.push(field, m.expected, quote(s));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_are_strict() {
        for good in ["10.0.0.1", "0.0.0.0", "fd00::1", "::1", "2001:db8::ffff"] {
            assert!(parse_ip(good).is_ok(), "{good}");
        }
        let cases = [
            ("010.0.0.1", "without leading zeros"),
            ("10.0.0.01", "without leading zeros"),
            ("::ffff:10.0.0.1", "written as IPv4 (10.0.0.1)"),
            ("10.0.0", "an IP address"),
            ("10.0.0.256", "an IP address"),
            ("fe80::1%eth0", "an IP address"),
            (" 10.0.0.1", "an IP address"),
            ("", "an IP address"),
        ];
        for (s, want) in cases {
            let m = parse_ip(s).unwrap_err();
            assert!(m.expected.contains(want), "{s}: {}", m.expected);
        }
    }

    #[test]
    fn cidrs_are_strict() {
        for good in [
            "10.0.0.0/8",
            "0.0.0.0/0",
            "10.1.2.3/32",
            "fd00::/64",
            "::/0",
        ] {
            assert!(parse_cidr(good).is_ok(), "{good}");
        }
        let cases = [
            ("10.0.0.1/8", "network address (10.0.0.0/8)"),
            ("10.1.2.3/16", "network address (10.1.0.0/16)"),
            ("fd00::1/64", "network address (fd00::/64)"),
            ("10.0.0.0/33", "between 0 and 32 for IPv4"),
            ("fd00::/129", "between 0 and 128 for IPv6"),
            ("10.0.0.0/08", "between 0 and 32"),
            ("10.0.0.0/", "between 0 and 32"),
            ("10.0.0.0/+8", "between 0 and 32"),
            (
                "010.0.0.0/8",
                "whose address is an IP address without leading zeros",
            ),
            ("10.0.0.0", "a CIDR:"),
            ("ten/8", "a CIDR:"),
        ];
        for (s, want) in cases {
            let m = parse_cidr(s).unwrap_err();
            assert!(m.expected.contains(want), "{s}: {}", m.expected);
        }
    }

    #[test]
    fn ranges() {
        let (a, b) = parse_range("172.18.255.200-172.18.255.250").unwrap();
        assert_eq!(
            (a.to_string(), b.to_string()),
            ("172.18.255.200".into(), "172.18.255.250".into())
        );
        assert!(parse_range("10.0.0.5-10.0.0.5").is_ok());
        for (s, want) in [
            ("10.0.0.9-10.0.0.1", "not above"),
            ("10.0.0.1-fd00::1", "one IP family"),
            ("10.0.0.1", "first-last"),
            ("10.0.0.1-x", "first-last"),
            ("10.0.0.1-10.0.0.09", "leading zeros"),
        ] {
            let m = parse_range(s).unwrap_err();
            assert!(m.expected.contains(want), "{s}: {}", m.expected);
        }
    }

    #[test]
    fn spans_and_special_addresses() {
        let n = |s: &str| parse_cidr(s).unwrap();
        assert!(overlaps(n("10.0.0.0/8"), n("10.96.0.0/12")));
        assert!(!overlaps(n("10.244.0.0/16"), n("10.96.0.0/12")));
        assert!(!overlaps(n("0.0.0.0/0"), n("::/0")));
        let (a, b) = parse_range("10.0.0.250-10.0.1.5").unwrap();
        assert!(Span::of_range(a, b).overlaps(&Span::of_net(n("10.0.1.0/24"))));
        assert!(Span::of_net(n("10.0.0.0/24")).contains("10.0.0.255".parse().unwrap()));
        let special = |s: &str| special_use(s.parse().unwrap());
        assert_eq!(special("0.0.0.0"), Some("unspecified"));
        assert_eq!(special("127.0.0.5"), Some("loopback"));
        assert_eq!(special("169.254.1.1"), Some("link-local"));
        assert_eq!(special("fe80::1"), Some("link-local"));
        assert_eq!(special("224.0.0.1"), Some("link-local multicast"));
        assert_eq!(special("ff02::1"), Some("link-local multicast"));
        assert_eq!(special("10.0.0.1"), None);
        assert_eq!(family("fd00::1".parse().unwrap()), "IPv6");
    }
}
