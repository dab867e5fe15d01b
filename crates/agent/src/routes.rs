//! Cross-node pod routes, `host-gw` style: every other node's pod CIDR via that node's
//! IP. A pure planner (nodes in, routes out) and an applier that changes only the
//! difference, touching only routes tagged with podnet's route protocol.
//!
//! This is the lab's first cross-node path; the VXLAN overlay, conditions for nodes
//! not on the same L2 network and the rest of the agent's routing come with the node
//! agent issue.

use std::net::IpAddr;

use ipnet::IpNet;
use podnet_linux::model::{Route, RouteProtocol, TABLE_MAIN};
use podnet_linux::{Handle, NetlinkError};
use podnet_model::k8s_openapi::api::core::v1::Node;

/// The route protocol that marks podnet's routes (`ip route ... proto 0x50`).
pub const PODNET_PROTO: RouteProtocol = RouteProtocol(0x50);

/// A node as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub ip: IpAddr,
    pub pod_cidr: IpNet,
}

/// The routing view of a Node, when it has an InternalIP and a pod CIDR.
pub fn peer_of(node: &Node) -> Option<Peer> {
    let ip = node
        .status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .find(|a| a.type_ == "InternalIP")?
        .address
        .parse()
        .ok()?;
    let pod_cidr = node.spec.as_ref()?.pod_cidr.as_ref()?.parse().ok()?;
    Some(Peer {
        name: node.metadata.name.clone()?,
        ip,
        pod_cidr,
    })
}

/// Desired routes on `me`: one per other node (pure, sorted by destination).
pub fn plan(me: &str, peers: &[Peer]) -> Vec<Route> {
    let mut routes: Vec<Route> = peers
        .iter()
        .filter(|p| p.name != me)
        .map(|p| Route::new(p.pod_cidr).via(p.ip).protocol(PODNET_PROTO))
        .collect();
    routes.sort_by_key(|r| r.dst.to_string());
    routes
}

/// Makes podnet's routes in the main table equal `desired`; returns (added, removed).
pub async fn apply(h: &Handle, desired: &[Route]) -> Result<(usize, usize), NetlinkError> {
    let observed: Vec<Route> = h
        .routes(TABLE_MAIN)
        .await?
        .into_iter()
        .filter(|r| r.protocol == PODNET_PROTO)
        .collect();
    let same = |a: &Route, b: &Route| a.dst == b.dst && a.gateway == b.gateway;
    let mut added = 0;
    for d in desired {
        if !observed.iter().any(|o| same(o, d)) {
            h.replace_route(d).await?;
            added += 1;
        }
    }
    let mut removed = 0;
    for o in &observed {
        if !desired.iter().any(|d| same(o, d)) {
            h.delete_route(o).await?;
            removed += 1;
        }
    }
    Ok((added, removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_route_per_other_node() {
        let peer = |n: &str, ip: &str, c: &str| Peer {
            name: n.into(),
            ip: ip.parse().unwrap(),
            pod_cidr: c.parse().unwrap(),
        };
        let peers = [
            peer("node-2", "172.18.0.3", "10.244.1.0/24"),
            peer("node-1", "172.18.0.2", "10.244.0.0/24"),
            peer("node-3", "172.18.0.4", "10.244.2.0/24"),
        ];
        let r = plan("node-1", &peers);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].dst.to_string(), "10.244.1.0/24");
        assert_eq!(r[0].gateway, Some("172.18.0.3".parse().unwrap()));
        assert_eq!(r[1].protocol, PODNET_PROTO);
    }
}
