//! `vxlan`, flannel's static scheme (no learning, no flooding, no L3 miss handling):
//!
//! - one device `podnet.<vni>`: VNI and UDP port from the ClusterConfig, `local` = the
//!   node IP, `dev` = the underlay device, learning off, MTU = underlay MTU - 50, MAC
//!   derived from the node IP (`annotations::vtep_mac`, published for the peers);
//! - its address: the network address of this node's pod CIDR as `/32` (flannel's
//!   choice; the bridge keeps the `.1` gateway, so the two never collide);
//! - per remote node: a permanent neighbour (its VTEP address -> its VTEP MAC), an FDB
//!   entry (that MAC -> its public IP) and a route to its pod CIDR via its VTEP
//!   address, onlink, out of the VXLAN device.

use std::net::IpAddr;

use ipnet::IpNet;
use podnet_linux::model::{Address, FdbEntry, Neighbour, Route, VxlanSpec};

use super::{
    vxlan_name, Local, Peer, Plan, Settings, SkipReason, Skipped, PODNET_PROTO, VXLAN_OVERHEAD,
};
use crate::annotations;

/// The VTEP address of a node: its pod CIDR's network address.
pub(super) fn vtep_address(cidr: IpNet) -> IpAddr {
    cidr.network()
}

pub(super) fn plan(
    settings: &Settings,
    local: &Local,
    me: Option<&Peer>,
    peers: &[(&Peer, IpNet)],
    out: &mut Plan,
) {
    let dev = vxlan_name(settings.vni);
    let mut spec = VxlanSpec::new(dev.clone(), settings.vni);
    spec.local = Some(local.ip);
    spec.dev = Some(local.dev.clone());
    spec.port = settings.port;
    spec.learning = false;
    spec.mtu = Some(settings.mtu.saturating_sub(VXLAN_OVERHEAD));
    spec.mac = Some(annotations::vtep_mac(local.ip));
    out.desired.vxlan = Some(spec);
    if let Some(cidr) = me.and_then(|m| m.pod_cidr) {
        let host = match cidr {
            IpNet::V4(_) => 32,
            IpNet::V6(_) => 128,
        };
        out.desired.addresses.push(Address {
            link: dev.clone(),
            addr: IpNet::new(vtep_address(cidr), host).expect("host prefix is valid"),
        });
    }
    for (p, cidr) in peers {
        let Some(mac) = p.vtep_mac else {
            out.skipped.push(Skipped {
                name: p.name.clone(),
                ip: p.ip,
                reason: SkipReason::NoVtepMac,
            });
            continue;
        };
        let vtep = vtep_address(*cidr);
        out.desired.routes.push(
            Route::new(*cidr)
                .via(vtep)
                .dev(dev.clone())
                .onlink()
                .protocol(PODNET_PROTO),
        );
        out.desired
            .neighbours
            .push(Neighbour::permanent(dev.clone(), vtep, mac));
        out.desired
            .fdb
            .push(FdbEntry::vxlan_remote(dev.clone(), mac, p.public_ip));
    }
}
