//! Kernel networking state as plain values: what a planner wants and what
//! the kernel reports, in one vocabulary so the two can be compared with `==`.
//!
//! Pure: no I/O, no netlink types. Links are referred to by name everywhere
//! (indexes differ between runs; names are what a planner knows).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// The main routing table (`ip route` without `table`).
pub const TABLE_MAIN: u32 = 254;
/// The local routing table (addresses of this host, broadcast).
pub const TABLE_LOCAL: u32 = 255;

/// An Ethernet (48-bit) hardware address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// All zeros: the vxlan "default destination" FDB entry (flooding).
    pub const ZERO: Mac = Mac([0; 6]);

    /// The six octets.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// From a netlink attribute payload; `None` unless exactly six bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Mac> {
        <[u8; 6]>::try_from(bytes).ok().map(Mac)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

/// A string that is not `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid mac address {0:?}: expected six colon-separated hex octets")]
pub struct MacParseError(pub String);

impl FromStr for Mac {
    type Err = MacParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacParseError(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or_else(err)?;
            if part.is_empty() || part.len() > 2 {
                return Err(err());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(Mac(out))
    }
}

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    /// The family of an address.
    pub fn of(ip: &IpAddr) -> IpFamily {
        match ip {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }
}

/// What kind of device a link is (`ip -d link`'s kind).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LinkKind {
    Loopback,
    /// No `IFLA_INFO_KIND`: a physical or otherwise driver-made device.
    Device,
    Bridge,
    Veth,
    Vxlan,
    Dummy,
    Other(String),
}

/// The vxlan parameters the kernel reports for a vxlan link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanInfo {
    pub vni: u32,
    pub local: Option<IpAddr>,
    /// The underlay device (`dev`), by name.
    pub dev: Option<String>,
    pub port: u16,
    pub learning: bool,
}

/// A network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub index: u32,
    pub kind: LinkKind,
    pub mtu: u32,
    pub mac: Option<Mac>,
    /// The bridge (or other master) this link is enslaved to, by name.
    pub master: Option<String>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Hairpin mode, for a bridge port; `None` when not a bridge port.
    pub hairpin: Option<bool>,
    /// Vxlan parameters, for a vxlan link.
    pub vxlan: Option<VxlanInfo>,
}

/// A bridge to create (vlan filtering off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    pub name: String,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
}

impl BridgeSpec {
    pub fn new(name: impl Into<String>) -> Self {
        BridgeSpec {
            name: name.into(),
            mtu: None,
            mac: None,
        }
    }
}

/// A veth pair to create. The peer may be created directly in another
/// network namespace (see `Handle::add_veth`), under its final name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethSpec {
    pub name: String,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
    pub peer_name: String,
    /// Defaults to `mtu` when `None`.
    pub peer_mtu: Option<u32>,
    pub peer_mac: Option<Mac>,
    /// Index of a bridge to attach the first end to as it is created
    /// (`ip link add ... master BR`): if that fails, no pair is left behind.
    pub master: Option<u32>,
    /// Create the first end up (`ip link add ... up`). The peer cannot be: the
    /// kernel configures it before the pair is joined, and a veth without its
    /// peer refuses to open (`ENOTCONN`).
    pub up: bool,
}

impl VethSpec {
    pub fn new(name: impl Into<String>, peer_name: impl Into<String>) -> Self {
        VethSpec {
            name: name.into(),
            mtu: None,
            mac: None,
            peer_name: peer_name.into(),
            peer_mtu: None,
            peer_mac: None,
            master: None,
            up: false,
        }
    }
}

/// The IANA port for VXLAN; flannel and podnet use [`VXLAN_PORT_LINUX`].
pub const VXLAN_PORT_IANA: u16 = 4789;
/// The Linux kernel's historical vxlan port, used by flannel.
pub const VXLAN_PORT_LINUX: u16 = 8472;

/// A vxlan device to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanSpec {
    pub name: String,
    pub vni: u32,
    pub local: Option<IpAddr>,
    /// The underlay device, by name.
    pub dev: Option<String>,
    pub port: u16,
    pub learning: bool,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
}

impl VxlanSpec {
    /// Flannel-style defaults: port 8472, learning off.
    pub fn new(name: impl Into<String>, vni: u32) -> Self {
        VxlanSpec {
            name: name.into(),
            vni,
            local: None,
            dev: None,
            port: VXLAN_PORT_LINUX,
            learning: false,
            mtu: None,
            mac: None,
        }
    }
}

/// An address on a link (`ip addr`). `addr` keeps the host bits
/// (`10.244.1.1/24`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    pub link: String,
    pub addr: IpNet,
}

/// A route's scope (`ip route ... scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteScope {
    Universe,
    Site,
    Link,
    Host,
    Nowhere,
    Other(u8),
}

/// A route's type (`ip route add TYPE ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    Unicast,
    Local,
    Broadcast,
    Multicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Other(u8),
}

/// Who installed a route (`proto`). Open-ended: an agent may use its own
/// number to recognise its routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteProtocol(pub u8);

impl RouteProtocol {
    pub const UNSPEC: RouteProtocol = RouteProtocol(0);
    pub const REDIRECT: RouteProtocol = RouteProtocol(1);
    /// Routes the kernel derives from addresses.
    pub const KERNEL: RouteProtocol = RouteProtocol(2);
    /// iproute2's default for `ip route add`.
    pub const BOOT: RouteProtocol = RouteProtocol(3);
    pub const STATIC: RouteProtocol = RouteProtocol(4);
    pub const RA: RouteProtocol = RouteProtocol(9);
}

/// A route. Build desired routes with [`Route::new`] and the chained
/// setters; they pick the scope the kernel will report (`link` without a
/// gateway, `universe` with one), so a planned route equals the observed one.
///
/// IPv6 note: the kernel reports metric 1024 for routes added with metric 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// Destination network (host bits cleared); `/0` is the default route.
    pub dst: IpNet,
    pub gateway: Option<IpAddr>,
    /// Output device, by name.
    pub dev: Option<String>,
    /// Gateway is on-link even if no address of `dev` covers it.
    pub onlink: bool,
    pub table: u32,
    pub metric: u32,
    pub scope: RouteScope,
    /// Preferred source address.
    pub src: Option<IpAddr>,
    pub protocol: RouteProtocol,
    pub kind: RouteKind,
}

impl Route {
    /// A unicast route to `dst` in the main table, proto boot, scope link.
    pub fn new(dst: IpNet) -> Route {
        Route {
            dst: dst.trunc(),
            gateway: None,
            dev: None,
            onlink: false,
            table: TABLE_MAIN,
            metric: 0,
            scope: RouteScope::Link,
            src: None,
            protocol: RouteProtocol::BOOT,
            kind: RouteKind::Unicast,
        }
    }

    /// The default route (`0.0.0.0/0` or `::/0`) via `gateway`.
    pub fn default_via(gateway: IpAddr) -> Route {
        let dst = match gateway {
            IpAddr::V4(_) => IpNet::V4(ipnet::Ipv4Net::default()),
            IpAddr::V6(_) => IpNet::V6(ipnet::Ipv6Net::default()),
        };
        Route::new(dst).via(gateway)
    }

    /// Via a gateway; the scope becomes universe.
    pub fn via(mut self, gateway: IpAddr) -> Route {
        self.gateway = Some(gateway);
        self.scope = RouteScope::Universe;
        self
    }

    pub fn dev(mut self, dev: impl Into<String>) -> Route {
        self.dev = Some(dev.into());
        self
    }

    pub fn onlink(mut self) -> Route {
        self.onlink = true;
        self
    }

    pub fn table(mut self, table: u32) -> Route {
        self.table = table;
        self
    }

    pub fn metric(mut self, metric: u32) -> Route {
        self.metric = metric;
        self
    }

    pub fn scope(mut self, scope: RouteScope) -> Route {
        self.scope = scope;
        self
    }

    pub fn src(mut self, src: IpAddr) -> Route {
        self.src = Some(src);
        self
    }

    pub fn protocol(mut self, protocol: RouteProtocol) -> Route {
        self.protocol = protocol;
        self
    }

    pub fn kind(mut self, kind: RouteKind) -> Route {
        self.kind = kind;
        self
    }

    pub fn family(&self) -> IpFamily {
        match self.dst {
            IpNet::V4(_) => IpFamily::V4,
            IpNet::V6(_) => IpFamily::V6,
        }
    }

    pub fn is_default(&self) -> bool {
        self.dst.prefix_len() == 0
    }
}

impl fmt::Display for Route {
    /// `ip route`-like text, for logs and error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.dst)?;
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        if let Some(dev) = &self.dev {
            write!(f, " dev {dev}")?;
        }
        if self.table != TABLE_MAIN {
            write!(f, " table {}", self.table)?;
        }
        if self.metric != 0 {
            write!(f, " metric {}", self.metric)?;
        }
        if self.onlink {
            write!(f, " onlink")?;
        }
        Ok(())
    }
}

/// Neighbour (ARP/NDP) entry state (`NUD_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NeighbourState {
    None,
    Incomplete,
    Reachable,
    Stale,
    Delay,
    Probe,
    Failed,
    Noarp,
    Permanent,
    Other(u16),
}

/// A neighbour entry (`ip neigh`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Neighbour {
    pub dev: String,
    pub ip: IpAddr,
    /// `None` for entries without a link-layer address (incomplete, failed).
    pub mac: Option<Mac>,
    pub state: NeighbourState,
}

impl Neighbour {
    /// A permanent entry: `ip neigh replace IP lladdr MAC dev DEV nud permanent`.
    pub fn permanent(dev: impl Into<String>, ip: IpAddr, mac: Mac) -> Neighbour {
        Neighbour {
            dev: dev.into(),
            ip,
            mac: Some(mac),
            state: NeighbourState::Permanent,
        }
    }
}

/// Whose forwarding database an FDB entry is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FdbOwner {
    /// The device's own table (`self`): vxlan remotes.
    Device,
    /// The bridge the device is a port of (`master`).
    Master,
}

/// A bridge forwarding database entry (`bridge fdb`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FdbEntry {
    pub dev: String,
    pub mac: Mac,
    /// Remote VTEP address, for vxlan devices.
    pub dst: Option<IpAddr>,
    pub vlan: Option<u16>,
    pub owner: FdbOwner,
    pub state: NeighbourState,
}

impl FdbEntry {
    /// `bridge fdb append MAC dev DEV dst DST self permanent`: send frames
    /// for `mac` to the VTEP at `dst`.
    pub fn vxlan_remote(dev: impl Into<String>, mac: Mac, dst: IpAddr) -> FdbEntry {
        FdbEntry {
            dev: dev.into(),
            mac,
            dst: Some(dst),
            vlan: None,
            owner: FdbOwner::Device,
            state: NeighbourState::Permanent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trips() {
        let mac: Mac = "0a:58:0A:f4:01:ff".parse().unwrap();
        assert_eq!(mac, Mac([0x0a, 0x58, 0x0a, 0xf4, 0x01, 0xff]));
        assert_eq!(mac.to_string(), "0a:58:0a:f4:01:ff");
        assert_eq!(Mac::from_slice(&mac.octets()), Some(mac));
        assert_eq!(Mac::from_slice(&[1, 2, 3]), None);
    }

    #[test]
    fn mac_rejects_malformed() {
        for bad in [
            "",
            "0a:58:0a:f4:01",
            "0a:58:0a:f4:01:ff:00",
            "0a:58:0a:f4:01:fg",
            "0a::0a:f4:01:ff",
            "100:0:0:0:0:0",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn route_builder_picks_kernel_scope() {
        let r = Route::new("10.244.2.7/24".parse().unwrap());
        assert_eq!(r.dst.to_string(), "10.244.2.0/24");
        assert_eq!(r.scope, RouteScope::Link);
        let r = r.via("10.244.2.0".parse().unwrap()).dev("pnvx0").onlink();
        assert_eq!(r.scope, RouteScope::Universe);
        assert_eq!(
            r.to_string(),
            "10.244.2.0/24 via 10.244.2.0 dev pnvx0 onlink"
        );
        let d = Route::default_via("10.244.1.1".parse().unwrap());
        assert!(d.is_default());
        assert_eq!(d.family(), IpFamily::V4);
        let d6 = Route::default_via("fd00::1".parse().unwrap());
        assert_eq!(d6.dst.to_string(), "::/0");
        assert_eq!(d6.family(), IpFamily::V6);
    }
}
