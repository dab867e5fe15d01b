//! `RTM_NEWLINK` replies -> [`Link`] values.

use std::collections::HashMap;
use std::net::IpAddr;

use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoVxlan, LinkAttribute, LinkFlags,
    LinkInfo, LinkLayerType, LinkMessage,
};

use crate::model::{Link, LinkKind, Mac, VxlanInfo};

/// A parsed link whose references to other links are still indexes.
pub(crate) struct RawLink {
    pub(crate) link: Link,
    pub(crate) master: Option<u32>,
    pub(crate) vxlan_dev: Option<u32>,
}

impl RawLink {
    /// Indexes of other links this one refers to.
    pub(crate) fn references(&self) -> impl Iterator<Item = u32> {
        self.master.into_iter().chain(self.vxlan_dev)
    }

    /// Fill in names of referred links; an index without a name (a link in
    /// another namespace) stays `None`.
    pub(crate) fn resolve(self, names: &HashMap<u32, String>) -> Link {
        let mut link = self.link;
        link.master = self.master.and_then(|i| names.get(&i).cloned());
        if let (Some(vxlan), Some(dev)) = (link.vxlan.as_mut(), self.vxlan_dev) {
            vxlan.dev = names.get(&dev).cloned();
        }
        link
    }
}

pub(crate) fn parse_link(msg: &LinkMessage) -> Option<RawLink> {
    let mut name = None;
    let mut mtu = 0;
    let mut mac = None;
    let mut master = None;
    let mut kind = None;
    let mut hairpin = None;
    let mut vxlan = None;
    let mut vxlan_dev = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Mtu(m) => mtu = *m,
            LinkAttribute::Address(bytes) => mac = Mac::from_slice(bytes),
            LinkAttribute::Controller(index) if *index != 0 => master = Some(*index),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(k) => kind = Some(kind_of(k)),
                        LinkInfo::Data(InfoData::Vxlan(attrs)) => {
                            let (info, dev) = parse_vxlan(attrs);
                            vxlan = Some(info);
                            vxlan_dev = dev;
                        }
                        LinkInfo::PortData(InfoPortData::BridgePort(port)) => {
                            hairpin = port.iter().find_map(|p| match p {
                                InfoBridgePort::HairpinMode(on) => Some(*on),
                                _ => None,
                            });
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let kind = kind.unwrap_or(if msg.header.link_layer_type == LinkLayerType::Loopback {
        LinkKind::Loopback
    } else {
        LinkKind::Device
    });
    let link = Link {
        name: name?,
        index: msg.header.index,
        kind,
        mtu,
        mac,
        master: None,
        up: msg.header.flags.contains(LinkFlags::Up),
        hairpin,
        vxlan,
    };
    Some(RawLink {
        link,
        master,
        vxlan_dev,
    })
}

fn kind_of(kind: &InfoKind) -> LinkKind {
    match kind {
        InfoKind::Bridge => LinkKind::Bridge,
        InfoKind::Veth => LinkKind::Veth,
        InfoKind::Vxlan => LinkKind::Vxlan,
        InfoKind::Dummy => LinkKind::Dummy,
        other => LinkKind::Other(other.to_string()),
    }
}

fn parse_vxlan(attrs: &[InfoVxlan]) -> (VxlanInfo, Option<u32>) {
    let mut info = VxlanInfo {
        vni: 0,
        local: None,
        dev: None,
        port: 0,
        learning: true,
    };
    let mut dev = None;
    for attr in attrs {
        match attr {
            InfoVxlan::Id(vni) => info.vni = *vni,
            InfoVxlan::Local(ip) => info.local = Some(IpAddr::V4(*ip)),
            InfoVxlan::Local6(ip) => info.local = Some(IpAddr::V6(*ip)),
            InfoVxlan::Link(index) if *index != 0 => dev = Some(*index),
            InfoVxlan::Port(port) => info.port = *port,
            InfoVxlan::Learning(on) => info.learning = *on,
            _ => {}
        }
    }
    (info, dev)
}
