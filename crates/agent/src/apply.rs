//! The applier: observes what podnet owns in the kernel (one dump per kind per
//! reconcile), diffs it against the planner's [`Desired`] state (`diff`, pure) and
//! executes only the difference. Applying the same state twice changes nothing.
//!
//! Owned, and so compared: routes of protocol `0x50` in the main table; VXLAN links
//! named `podnet.*`; the addresses, permanent neighbours and device FDB entries of
//! the desired VXLAN device. A foreign route with the same destination as a desired
//! one is never replaced: the add fails and is reported.

use std::net::IpAddr;

use ipnet::IpNet;
use podnet_linux::model::{
    Address, FdbEntry, FdbOwner, Link, LinkKind, Mac, Neighbour, NeighbourState, Route, VxlanSpec,
    TABLE_MAIN,
};
use podnet_linux::{Handle, NetlinkError};

use crate::plan::{Desired, PODNET_PROTO, VXLAN_PREFIX};

/// What podnet owns in the kernel now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The link named like the desired VXLAN device, whatever its kind.
    pub link: Option<Link>,
    /// Other VXLAN links named `podnet.*` (left over from another VNI or mode).
    pub stale_links: Vec<String>,
    pub addresses: Vec<Address>,
    pub routes: Vec<Route>,
    pub neighbours: Vec<Neighbour>,
    pub fdb: Vec<FdbEntry>,
}

/// One kernel change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    CreateLink(VxlanSpec),
    /// Its VXLAN parameters (VNI, local, dev, port, learning) differ: delete, create.
    RecreateLink(VxlanSpec),
    SetMtu(String, u32),
    SetMac(String, Mac),
    SetUp(String),
    DeleteLink(String),
    AddAddress(Address),
    DeleteAddress(Address),
    ReplaceFdb(FdbEntry),
    DeleteFdb(FdbEntry),
    ReplaceNeighbour(Neighbour),
    DeleteNeighbour(String, IpAddr),
    /// A new route (fails rather than overwrite a foreign route).
    AddRoute(Route),
    /// One of ours whose next hop or device changed.
    ReplaceRoute(Route),
    DeleteRoute(Route),
}

/// What an apply changed, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub links: usize,
    pub addresses: usize,
    pub routes: usize,
    pub neighbours: usize,
    pub fdb: usize,
}

impl Changes {
    pub fn total(&self) -> usize {
        self.links + self.addresses + self.routes + self.neighbours + self.fdb
    }

    fn count(&mut self, op: &Op) {
        match op {
            Op::CreateLink(_)
            | Op::RecreateLink(_)
            | Op::SetMtu(..)
            | Op::SetMac(..)
            | Op::SetUp(_)
            | Op::DeleteLink(_) => self.links += 1,
            Op::AddAddress(_) | Op::DeleteAddress(_) => self.addresses += 1,
            Op::ReplaceFdb(_) | Op::DeleteFdb(_) => self.fdb += 1,
            Op::ReplaceNeighbour(_) | Op::DeleteNeighbour(..) => self.neighbours += 1,
            Op::AddRoute(_) | Op::ReplaceRoute(_) | Op::DeleteRoute(_) => self.routes += 1,
        }
    }
}

/// The outcome of one apply: what changed, and what failed (the rest still ran).
#[derive(Debug, Default)]
pub struct Report {
    pub changes: Changes,
    pub errors: Vec<NetlinkError>,
}

fn same_route(a: &Route, b: &Route) -> bool {
    a.dst == b.dst && a.table == b.table && a.metric == b.metric
}

fn route_matches(desired: &Route, observed: &Route) -> bool {
    same_route(desired, observed)
        && desired.gateway == observed.gateway
        && desired.dev == observed.dev
        && desired.onlink == observed.onlink
}

fn vxlan_params_match(spec: &VxlanSpec, link: &Link) -> bool {
    let Some(v) = &link.vxlan else {
        return false;
    };
    v.vni == spec.vni
        && v.local == spec.local
        && v.dev == spec.dev
        && v.port == spec.port
        && v.learning == spec.learning
}

/// The changes that turn `observed` into `desired` (pure). Order: links, addresses,
/// FDB, neighbours, routes; then deletions in reverse.
pub fn diff(desired: &Desired, observed: &Observed) -> Vec<Op> {
    let mut ops = Vec::new();
    // Whether the device's own state (addresses, neighbours, FDB) survives.
    let mut fresh_link = false;
    let empty = Observed::default();
    if let Some(spec) = &desired.vxlan {
        match &observed.link {
            None => {
                ops.push(Op::CreateLink(spec.clone()));
                fresh_link = true;
            }
            Some(l) if l.kind != LinkKind::Vxlan || !vxlan_params_match(spec, l) => {
                ops.push(Op::RecreateLink(spec.clone()));
                fresh_link = true;
            }
            Some(l) => {
                if let Some(mtu) = spec.mtu.filter(|m| *m != l.mtu) {
                    ops.push(Op::SetMtu(spec.name.clone(), mtu));
                }
                if let Some(mac) = spec.mac.filter(|m| Some(*m) != l.mac) {
                    ops.push(Op::SetMac(spec.name.clone(), mac));
                }
                if !l.up {
                    ops.push(Op::SetUp(spec.name.clone()));
                }
            }
        }
    }
    let dev_state = if fresh_link || desired.vxlan.is_none() {
        &empty
    } else {
        observed
    };
    for a in &desired.addresses {
        if !dev_state.addresses.contains(a) {
            ops.push(Op::AddAddress(a.clone()));
        }
    }
    for f in &desired.fdb {
        if !dev_state
            .fdb
            .iter()
            .any(|o| o.mac == f.mac && o.dst == f.dst)
        {
            ops.push(Op::ReplaceFdb(f.clone()));
        }
    }
    for n in &desired.neighbours {
        if !dev_state
            .neighbours
            .iter()
            .any(|o| o.ip == n.ip && o.mac == n.mac && o.state == NeighbourState::Permanent)
        {
            ops.push(Op::ReplaceNeighbour(n.clone()));
        }
    }
    for r in &desired.routes {
        match observed.routes.iter().find(|o| same_route(r, o)) {
            // A recreated device took its routes with it.
            Some(o) if route_matches(r, o) && !(fresh_link && o.dev == r.dev) => {}
            Some(_) => ops.push(Op::ReplaceRoute(r.clone())),
            None => ops.push(Op::AddRoute(r.clone())),
        }
    }
    for o in &observed.routes {
        if !desired.routes.iter().any(|r| same_route(r, o)) {
            ops.push(Op::DeleteRoute(o.clone()));
        }
    }
    for o in &dev_state.neighbours {
        if o.state == NeighbourState::Permanent && !desired.neighbours.iter().any(|n| n.ip == o.ip)
        {
            ops.push(Op::DeleteNeighbour(o.dev.clone(), o.ip));
        }
    }
    for o in &dev_state.fdb {
        if !desired.fdb.iter().any(|f| f.mac == o.mac && f.dst == o.dst) {
            ops.push(Op::DeleteFdb(o.clone()));
        }
    }
    for a in &dev_state.addresses {
        if !desired.addresses.contains(a) {
            ops.push(Op::DeleteAddress(a.clone()));
        }
    }
    if desired.vxlan.is_none() {
        if let Some(l) = &observed.link {
            ops.push(Op::DeleteLink(l.name.clone()));
        }
    }
    for name in &observed.stale_links {
        ops.push(Op::DeleteLink(name.clone()));
    }
    ops
}

/// Executes plans against one network namespace.
#[derive(Clone)]
pub struct Applier {
    handle: Handle,
}

fn is_link_local_v6(net: &IpNet) -> bool {
    matches!(net, IpNet::V6(v6) if (v6.addr().segments()[0] & 0xffc0) == 0xfe80)
}

impl Applier {
    pub fn new(handle: Handle) -> Applier {
        Applier { handle }
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Dumps what podnet owns. `dev` is the desired VXLAN device's name, if any.
    pub async fn observe(&self, dev: Option<&str>) -> Result<Observed, NetlinkError> {
        let h = &self.handle;
        let links = h.links().await?;
        let mut out = Observed::default();
        for l in links {
            if Some(l.name.as_str()) == dev {
                out.link = Some(l);
            } else if l.kind == LinkKind::Vxlan && l.name.starts_with(VXLAN_PREFIX) {
                out.stale_links.push(l.name);
            }
        }
        out.routes = h
            .routes(TABLE_MAIN)
            .await?
            .into_iter()
            .filter(|r| r.protocol == PODNET_PROTO)
            .collect();
        if let Some(l) = &out.link {
            out.addresses = h
                .addresses(&l.name)
                .await?
                .into_iter()
                .filter(|a| !is_link_local_v6(&a.addr))
                .collect();
            out.neighbours = h.neighbours(Some(&l.name)).await?;
            out.fdb = h
                .fdb(&l.name)
                .await?
                .into_iter()
                .filter(|f| f.owner == FdbOwner::Device && f.mac != Mac::ZERO)
                .collect();
        }
        Ok(out)
    }

    /// Observes, diffs and executes; every op is tried even when an earlier one failed.
    pub async fn apply(&self, desired: &Desired) -> Result<Report, NetlinkError> {
        let dev = desired.vxlan.as_ref().map(|v| v.name.as_str());
        let observed = self.observe(dev).await?;
        let ops = diff(desired, &observed);
        let mut report = Report::default();
        for op in &ops {
            match self.execute(op).await {
                Ok(()) => report.changes.count(op),
                Err(e) => report.errors.push(e),
            }
        }
        for op in &ops {
            tracing::debug!(?op, "applied");
        }
        Ok(report)
    }

    async fn execute(&self, op: &Op) -> Result<(), NetlinkError> {
        let h = &self.handle;
        match op {
            Op::CreateLink(spec) => {
                h.add_vxlan(spec).await?;
                h.set_up(&spec.name).await
            }
            Op::RecreateLink(spec) => {
                h.delete_link(&spec.name).await?;
                h.add_vxlan(spec).await?;
                h.set_up(&spec.name).await
            }
            Op::SetMtu(name, mtu) => h.set_mtu(name, *mtu).await,
            Op::SetMac(name, mac) => h.set_mac(name, *mac).await,
            Op::SetUp(name) => h.set_up(name).await,
            Op::DeleteLink(name) => h.delete_link(name).await,
            Op::AddAddress(a) => h.add_address(&a.link, a.addr).await,
            Op::DeleteAddress(a) => h.delete_address(&a.link, a.addr).await,
            Op::ReplaceFdb(f) => h.replace_fdb(f).await,
            Op::DeleteFdb(f) => h.delete_fdb(f).await,
            Op::ReplaceNeighbour(n) => h.replace_neighbour(n).await,
            Op::DeleteNeighbour(dev, ip) => h.delete_neighbour(dev, *ip).await,
            Op::AddRoute(r) => h.add_route(r).await,
            Op::ReplaceRoute(r) => h.replace_route(r).await,
            Op::DeleteRoute(r) => h.delete_route(r).await,
        }
    }
}

/// This node's underlay device (the link holding `ip`) and its on-link subnets.
pub async fn local_facts(
    h: &Handle,
    ip: IpAddr,
) -> Result<Option<(String, Vec<IpNet>)>, NetlinkError> {
    let all = h.all_addresses().await?;
    let Some(dev) = all
        .iter()
        .find(|a| a.addr.addr() == ip)
        .map(|a| a.link.clone())
    else {
        return Ok(None);
    };
    let mut nets: Vec<IpNet> = all
        .iter()
        .filter(|a| a.link == dev && !is_link_local_v6(&a.addr))
        .map(|a| a.addr.trunc())
        .collect();
    nets.sort();
    nets.dedup();
    Ok(Some((dev, nets)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{self, Local, Peer, Settings};
    use podnet_linux::model::VxlanInfo;
    use podnet_model::config::{ClusterConfigSpec, OverlayMode};

    fn desired(mode: OverlayMode, peers: usize) -> Desired {
        let mut c = ClusterConfigSpec::default();
        c.overlay.mode = mode;
        let local = Local {
            name: "n0".into(),
            ip: "172.18.0.2".parse().unwrap(),
            dev: "eth0".into(),
            onlink: vec!["172.18.0.0/24".parse().unwrap()],
        };
        let nodes: Vec<Peer> = (0..=peers)
            .map(|i| Peer {
                name: format!("n{i}"),
                ip: format!("172.18.0.{}", i + 2).parse().unwrap(),
                public_ip: format!("172.18.0.{}", i + 2).parse().unwrap(),
                pod_cidr: Some(format!("10.244.{i}.0/24").parse().unwrap()),
                vtep_mac: Some(format!("0e:50:ac:12:00:{:02x}", i + 2).parse().unwrap()),
            })
            .collect();
        plan::plan(&Settings::from(&c), &local, &nodes).desired
    }

    /// What the kernel would report after applying `d` (as the applier observes it).
    fn observed_of(d: &Desired) -> Observed {
        let link = d.vxlan.as_ref().map(|v| Link {
            name: v.name.clone(),
            index: 7,
            kind: LinkKind::Vxlan,
            mtu: v.mtu.unwrap_or(1500),
            mac: v.mac,
            master: None,
            up: true,
            hairpin: None,
            vxlan: Some(VxlanInfo {
                vni: v.vni,
                local: v.local,
                dev: v.dev.clone(),
                port: v.port,
                learning: v.learning,
            }),
        });
        Observed {
            link,
            stale_links: Vec::new(),
            addresses: d.addresses.clone(),
            routes: d.routes.clone(),
            neighbours: d.neighbours.clone(),
            fdb: d.fdb.clone(),
        }
    }

    #[test]
    fn nothing_to_do_when_observed_equals_desired() {
        for mode in [OverlayMode::Vxlan, OverlayMode::HostGw] {
            let d = desired(mode, 3);
            assert_eq!(diff(&d, &observed_of(&d)), Vec::<Op>::new());
        }
    }

    #[test]
    fn from_nothing_everything_is_created_in_order() {
        let d = desired(OverlayMode::Vxlan, 2);
        let ops = diff(&d, &Observed::default());
        let kinds: Vec<&str> = ops
            .iter()
            .map(|o| match o {
                Op::CreateLink(_) => "link",
                Op::AddAddress(_) => "addr",
                Op::ReplaceFdb(_) => "fdb",
                Op::ReplaceNeighbour(_) => "neigh",
                Op::AddRoute(_) => "route",
                _ => "other",
            })
            .collect();
        assert_eq!(
            kinds,
            ["link", "addr", "fdb", "fdb", "neigh", "neigh", "route", "route"]
        );
    }

    #[test]
    fn a_removed_peer_and_a_changed_mac_and_vni() {
        let before = desired(OverlayMode::Vxlan, 3);
        let mut after = desired(OverlayMode::Vxlan, 2);
        // A peer left: its route, neighbour and FDB entry go, nothing else changes.
        let ops = diff(&after, &observed_of(&before));
        assert_eq!(ops.len(), 3, "{ops:?}");
        assert!(ops.iter().all(|o| matches!(
            o,
            Op::DeleteRoute(_) | Op::DeleteNeighbour(..) | Op::DeleteFdb(_)
        )));
        // A changed MAC: the neighbour and FDB entry are replaced, the old FDB entry deleted.
        after.neighbours[0].mac = Some("0e:00:00:00:00:01".parse().unwrap());
        after.fdb[0].mac = "0e:00:00:00:00:01".parse().unwrap();
        let ops = diff(&after, &observed_of(&desired(OverlayMode::Vxlan, 2)));
        assert_eq!(ops.len(), 3, "{ops:?}");
        // Another VNI's parameters on the same device name: recreated, its state re-added.
        let mut observed = observed_of(&after);
        if let Some(v) = observed.link.as_mut().and_then(|l| l.vxlan.as_mut()) {
            v.port = 4789;
        }
        let ops = diff(&after, &observed);
        assert!(matches!(ops[0], Op::RecreateLink(_)), "{ops:?}");
        assert_eq!(
            ops.iter()
                .filter(|o| matches!(o, Op::ReplaceRoute(_)))
                .count(),
            2,
            "routes through the recreated device are re-added: {ops:?}"
        );
    }

    #[test]
    fn host_gw_removes_the_vxlan_device_and_stale_ones() {
        let vx = desired(OverlayMode::Vxlan, 1);
        let hg = desired(OverlayMode::HostGw, 1);
        let mut observed = observed_of(&vx);
        // Observed as host-gw would: the device is podnet.* but not the desired one.
        let link = observed.link.take().unwrap();
        observed.stale_links.push(link.name);
        observed.addresses.clear();
        observed.neighbours.clear();
        observed.fdb.clear();
        let ops = diff(&hg, &observed);
        assert!(ops.contains(&Op::DeleteLink("podnet.1".into())), "{ops:?}");
        assert!(ops
            .iter()
            .any(|o| matches!(o, Op::ReplaceRoute(r) if r.dev.as_deref() == Some("eth0"))));
    }
}
