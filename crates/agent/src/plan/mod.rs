//! The routing planner: (cluster settings, this node, every Node) -> the kernel state
//! this node must hold, as plain values (`podnet_linux::model`). Pure and
//! deterministic (everything sorted); golden-tested in `tests.rs` without root.
//!
//! Two modes, as in flannel:
//! - `vxlan` (`vxlan.rs`): one VXLAN device `podnet.<vni>`, its VTEP address (the
//!   network address of this node's pod CIDR, `/32`), and per remote node a permanent
//!   neighbour, an FDB entry and an onlink route;
//! - `host-gw` (`hostgw.rs`): per remote node a route to its pod CIDR via its node IP,
//!   for the nodes on one of this node's on-link subnets; the others are reported.
//!
//! What the agent owns, and so may change or delete: routes of protocol
//! [`PODNET_PROTO`] in the main table, and the VXLAN device named `podnet.<vni>`
//! with its addresses, permanent neighbours and FDB entries. Nothing else is touched.

mod hostgw;
#[cfg(test)]
mod tests;
mod vxlan;

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use podnet_linux::model::{Address, FdbEntry, Mac, Neighbour, Route, RouteProtocol, VxlanSpec};
use podnet_linux::nft::{TableState, Value};
use podnet_model::config::{ClusterConfigSpec, OverlayMode};
use podnet_model::k8s_openapi::api::core::v1::Node;

use crate::annotations;

/// The route protocol that marks podnet's routes (`ip route ... proto 0x50`).
pub const PODNET_PROTO: RouteProtocol = RouteProtocol(0x50);
/// Names of the VXLAN devices podnet owns: `podnet.<vni>`.
pub const VXLAN_PREFIX: &str = "podnet.";
/// VXLAN over IPv4 costs 50 bytes: outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14).
pub const VXLAN_OVERHEAD: u32 = 50;

/// The name of the VXLAN device for `vni` (at most 15 characters: `podnet.16777215`).
pub fn vxlan_name(vni: u32) -> String {
    format!("{VXLAN_PREFIX}{vni}")
}

/// The cluster-wide settings routing depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub mode: OverlayMode,
    pub vni: u32,
    pub port: u16,
    /// The underlay (node network) MTU.
    pub mtu: u32,
}

impl From<&ClusterConfigSpec> for Settings {
    fn from(c: &ClusterConfigSpec) -> Self {
        Settings {
            mode: c.overlay.mode,
            vni: c.overlay.vni,
            port: c.overlay.port,
            mtu: c.mtu,
        }
    }
}

/// This node as the planner needs it: facts of its own kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    pub name: String,
    pub ip: IpAddr,
    /// The underlay device (the one holding `ip`).
    pub dev: String,
    /// Subnets directly reachable (the networks of the underlay device's addresses).
    pub onlink: Vec<IpNet>,
}

/// A Node as routing sees it: only the fields that change what the kernel holds, so
/// that a heartbeat (which rewrites the Node) changes nothing here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    pub name: String,
    /// The InternalIP.
    pub ip: IpAddr,
    /// Where VXLAN packets for it go (`podnet.io/public-ip`, else the InternalIP).
    pub public_ip: IpAddr,
    pub pod_cidr: Option<IpNet>,
    /// `podnet.io/vtep-mac`.
    pub vtep_mac: Option<Mac>,
}

/// The routing view of a Node, when it has a name and an InternalIP.
pub fn peer_of(node: &Node) -> Option<Peer> {
    let ip: IpAddr = node
        .status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .find(|a| a.type_ == "InternalIP")?
        .address
        .parse()
        .ok()?;
    let ann = node.metadata.annotations.as_ref();
    let get = |k: &str| ann.and_then(|a| a.get(k));
    Some(Peer {
        name: node.metadata.name.clone()?,
        ip,
        public_ip: get(annotations::PUBLIC_IP)
            .and_then(|s| s.parse().ok())
            .unwrap_or(ip),
        pod_cidr: node
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.as_ref())
            .and_then(|c| c.parse::<IpNet>().ok())
            .map(|c| c.trunc()),
        vtep_mac: get(annotations::VTEP_MAC).and_then(|s| s.parse().ok()),
    })
}

/// Kernel state this node must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Desired {
    /// The VXLAN device (vxlan mode); `None`: no podnet VXLAN device at all.
    pub vxlan: Option<VxlanSpec>,
    /// Addresses on the VXLAN device.
    pub addresses: Vec<Address>,
    pub routes: Vec<Route>,
    pub neighbours: Vec<Neighbour>,
    pub fdb: Vec<FdbEntry>,
    /// vxlan mode: `ip podnet-overlay`, the VXLAN packets between this node and the
    /// FDB's destinations untracked ([`crate::firewall::overlay_untracked`]).
    pub untracked: Option<TableState>,
}

/// A remote node the planner could not route to, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub name: String,
    pub ip: IpAddr,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// host-gw: its node IP is on none of this node's on-link subnets.
    NotOnLink,
    /// vxlan: it has not published `podnet.io/vtep-mac` (yet).
    NoVtepMac,
    /// It has no pod CIDR (yet).
    NoPodCidr,
}

/// What the planner returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub desired: Desired,
    pub skipped: Vec<Skipped>,
}

impl Plan {
    /// Remote nodes host-gw cannot reach (not on this node's L2 network).
    pub fn unreachable(&self) -> Vec<&Skipped> {
        self.skipped
            .iter()
            .filter(|s| s.reason == SkipReason::NotOnLink)
            .collect()
    }
}

/// Plans this node's routing state. `nodes` is every Node (this one included, in any
/// order).
pub fn plan(settings: &Settings, local: &Local, nodes: &[Peer]) -> Plan {
    let mut peers: Vec<&Peer> = nodes.iter().filter(|p| p.name != local.name).collect();
    peers.sort_by(|a, b| a.name.cmp(&b.name));
    let me = nodes.iter().find(|p| p.name == local.name);
    let mut out = Plan::default();
    let mut routable = Vec::new();
    for p in peers {
        match p.pod_cidr {
            Some(cidr) => routable.push((p, cidr)),
            None => out.skipped.push(Skipped {
                name: p.name.clone(),
                ip: p.ip,
                reason: SkipReason::NoPodCidr,
            }),
        }
    }
    match settings.mode {
        OverlayMode::Vxlan => vxlan::plan(settings, local, me, &routable, &mut out),
        OverlayMode::HostGw => hostgw::plan(local, &routable, &mut out),
    }
    let d = &mut out.desired;
    d.routes.sort_by(|a, b| {
        (a.dst.addr(), a.dst.prefix_len()).cmp(&(b.dst.addr(), b.dst.prefix_len()))
    });
    d.neighbours.sort_by_key(|n| n.ip);
    d.fdb.sort_by_key(|f| (f.mac, f.dst));
    d.addresses.sort_by_key(|a| a.addr);
    if settings.mode == OverlayMode::Vxlan {
        let peers: Vec<IpAddr> = d.fdb.iter().filter_map(|f| f.dst).collect();
        d.untracked = crate::firewall::overlay_untracked(local.ip, settings.port, &peers);
    }
    out
}

impl Desired {
    /// iproute2-like text of the whole desired state, one object a line: the golden
    /// tests compare this, and `--dry-run`-style logs print it.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Some(v) = &self.vxlan {
            let _ = write!(s, "link {} type vxlan id {}", v.name, v.vni);
            if let Some(l) = v.local {
                let _ = write!(s, " local {l}");
            }
            if let Some(d) = &v.dev {
                let _ = write!(s, " dev {d}");
            }
            let _ = write!(s, " dstport {}", v.port);
            s.push_str(if v.learning {
                " learning"
            } else {
                " nolearning"
            });
            if let Some(m) = v.mtu {
                let _ = write!(s, " mtu {m}");
            }
            if let Some(m) = v.mac {
                let _ = write!(s, " address {m}");
            }
            s.push('\n');
        }
        for a in &self.addresses {
            let _ = writeln!(s, "addr {} dev {}", a.addr, a.link);
        }
        for r in &self.routes {
            let _ = writeln!(s, "route {r} proto {:#x}", r.protocol.0);
        }
        for n in &self.neighbours {
            let mac = n.mac.map(|m| m.to_string()).unwrap_or_default();
            let _ = writeln!(s, "neigh {} lladdr {mac} dev {} nud permanent", n.ip, n.dev);
        }
        for f in &self.fdb {
            let dst = f.dst.map(|d| format!(" dst {d}")).unwrap_or_default();
            let _ = writeln!(s, "fdb {} dev {}{dst} self permanent", f.mac, f.dev);
        }
        if let Some(t) = &self.untracked {
            let peers: Vec<String> = t
                .sets
                .values()
                .flat_map(|set| set.elements.values())
                .filter_map(|e| match e.key.as_slice() {
                    [Value::Ipv4(a)] => Some(a.to_string()),
                    _ => None,
                })
                .collect();
            let _ = writeln!(
                s,
                "nft ip {}: vxlan with {} untracked",
                t.table.name,
                peers.join(" ")
            );
        }
        s
    }
}
