//! `host-gw`: every remote pod CIDR via the remote node's IP, out of the underlay
//! device. Only possible when the remote node shares an L2 network with this one
//! (its IP is inside one of this node's on-link subnets); the others are skipped and
//! reported (the agent logs them and sets a Node condition).

use ipnet::IpNet;
use podnet_linux::model::Route;

use super::{Local, Peer, Plan, SkipReason, Skipped, PODNET_PROTO};

pub(super) fn plan(local: &Local, peers: &[(&Peer, IpNet)], out: &mut Plan) {
    for (p, cidr) in peers {
        if !local.onlink.iter().any(|n| n.contains(&p.ip)) {
            out.skipped.push(Skipped {
                name: p.name.clone(),
                ip: p.ip,
                reason: SkipReason::NotOnLink,
            });
            continue;
        }
        out.desired.routes.push(
            Route::new(*cidr)
                .via(p.ip)
                .dev(local.dev.clone())
                .protocol(PODNET_PROTO),
        );
    }
}
