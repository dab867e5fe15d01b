//! Creating links (`ip link add`): bridge, veth pair, vxlan, dummy.
//! Each fails with `EEXIST` ([`NetlinkError::is_exists`]) if the name is
//! taken; links are created down (a veth pair may be created up and attached,
//! see [`VethSpec`]).

use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};

use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::{Create, Handle, NetlinkError};
use crate::model::{BridgeSpec, Mac, VethSpec, VxlanSpec};
use crate::netns::NetNs;

/// The common part of a new link: name, mtu, mac.
fn base(name: &str, mtu: Option<u32>, mac: Option<Mac>) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    if let Some(mtu) = mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = mac {
        msg.attributes
            .push(LinkAttribute::Address(mac.octets().to_vec()));
    }
    msg
}

fn with_info(mut msg: LinkMessage, kind: InfoKind, data: Option<InfoData>) -> LinkMessage {
    let mut info = vec![LinkInfo::Kind(kind)];
    info.extend(data.map(LinkInfo::Data));
    msg.attributes.push(LinkAttribute::LinkInfo(info));
    msg
}

impl Handle {
    /// `ip link add NAME [mtu M] [address MAC] type bridge`. VLAN filtering
    /// is off: the kernel's default, not sent explicitly, because kernels
    /// built without `CONFIG_BRIDGE_VLAN_FILTERING` refuse the attribute.
    pub async fn add_bridge(&self, spec: &BridgeSpec) -> Result<(), NetlinkError> {
        let msg = with_info(base(&spec.name, spec.mtu, spec.mac), InfoKind::Bridge, None);
        self.add_link(msg, format!("creating bridge {}", spec.name))
            .await
    }

    /// `ip link add NAME [master BR] [up] type veth peer name PEER [netns NS]`.
    /// With `peer_netns`, the peer is created directly inside that namespace
    /// under its final name (`IFLA_NET_NS_FD` in the peer's message), so a
    /// pod's `eth0` never exists in the node's namespace. `spec.master` and
    /// `spec.up` are applied by the kernel in the same request (one round
    /// trip instead of three); a master that cannot take the link fails the
    /// whole creation.
    pub async fn add_veth(
        &self,
        spec: &VethSpec,
        peer_netns: Option<&NetNs>,
    ) -> Result<(), NetlinkError> {
        let mut peer = base(&spec.peer_name, spec.peer_mtu.or(spec.mtu), spec.peer_mac);
        if let Some(ns) = peer_netns {
            // The fd stays open across the request: `ns` is borrowed until
            // this function returns.
            peer.attributes
                .push(LinkAttribute::NetNsFd(ns.as_fd().as_raw_fd()));
        }
        let mut first = base(&spec.name, spec.mtu, spec.mac);
        if let Some(master) = spec.master {
            first.attributes.push(LinkAttribute::Controller(master));
        }
        if spec.up {
            first.header.flags = LinkFlags::Up;
            first.header.change_mask = LinkFlags::Up;
        }
        let msg = with_info(
            first,
            InfoKind::Veth,
            Some(InfoData::Veth(InfoVeth::Peer(peer))),
        );
        let op = match peer_netns {
            Some(ns) => format!(
                "creating veth {} with peer {} in netns {}",
                spec.name,
                spec.peer_name,
                ns.label()
            ),
            None => format!("creating veth {} with peer {}", spec.name, spec.peer_name),
        };
        self.add_link(msg, op).await
    }

    /// `ip link add NAME type vxlan id VNI [local IP] [dev DEV] dstport PORT
    /// [nolearning]`.
    pub async fn add_vxlan(&self, spec: &VxlanSpec) -> Result<(), NetlinkError> {
        let op = || format!("creating vxlan {} (vni {})", spec.name, spec.vni);
        let mut data = vec![InfoVxlan::Id(spec.vni)];
        match spec.local {
            Some(IpAddr::V4(ip)) => data.push(InfoVxlan::Local(ip)),
            Some(IpAddr::V6(ip)) => data.push(InfoVxlan::Local6(ip)),
            None => {}
        }
        if let Some(dev) = &spec.dev {
            data.push(InfoVxlan::Link(self.index_for(dev, op).await?));
        }
        data.push(InfoVxlan::Port(spec.port));
        data.push(InfoVxlan::Learning(spec.learning));
        let msg = with_info(
            base(&spec.name, spec.mtu, spec.mac),
            InfoKind::Vxlan,
            Some(InfoData::Vxlan(data)),
        );
        self.add_link(msg, op()).await
    }

    /// `ip link add NAME type dummy`.
    pub async fn add_dummy(&self, name: &str) -> Result<(), NetlinkError> {
        let msg = with_info(base(name, None, None), InfoKind::Dummy, None);
        self.add_link(msg, format!("creating dummy {name}")).await
    }

    async fn add_link(&self, msg: LinkMessage, op: String) -> Result<(), NetlinkError> {
        self.ack(RouteNetlinkMessage::NewLink(msg), Create::Exclusive, op)
            .await
    }
}
