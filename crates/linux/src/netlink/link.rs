//! Links: look up, list, change, delete (`ip link`). Creation is in
//! `link_add.rs`.
//!
//! Changes address the link by name (`IFLA_IFNAME` with index 0), which the
//! kernel resolves itself, so most changes are one round trip.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, AsRawFd};

use netlink_packet_route::link::{
    InfoBridgePort, InfoPortData, InfoPortKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::link_parse::{parse_link, RawLink};
use super::{Create, Handle, NetlinkError, Reason};
use crate::model::{Link, Mac};
use crate::netns::NetNs;

pub(super) fn by_name(name: &str) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg
}

pub(super) fn by_index(index: u32) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg
}

fn up(mut msg: LinkMessage) -> LinkMessage {
    msg.header.flags = LinkFlags::Up;
    msg.header.change_mask = LinkFlags::Up;
    msg
}

impl Handle {
    /// All links of the namespace (`ip link show`).
    pub async fn links(&self) -> Result<Vec<Link>, NetlinkError> {
        let raw = self.raw_links().await?;
        let names: HashMap<u32, String> = raw
            .iter()
            .map(|r| (r.link.index, r.link.name.clone()))
            .collect();
        Ok(raw.into_iter().map(|r| r.resolve(&names)).collect())
    }

    /// The link named `name`, or `None` (`ip link show NAME`).
    pub async fn link(&self, name: &str) -> Result<Option<Link>, NetlinkError> {
        let op = format!("getting link {name}");
        self.get_link(by_name(name), op).await
    }

    /// The link with index `index`, or `None`.
    pub async fn link_by_index(&self, index: u32) -> Result<Option<Link>, NetlinkError> {
        let op = format!("getting link #{index}");
        self.get_link(by_index(index), op).await
    }

    /// The index of link `name`; not found is an error saying so.
    pub async fn index_of(&self, name: &str) -> Result<u32, NetlinkError> {
        self.index_for(name, || format!("looking up link {name}"))
            .await
    }

    /// Bring a link up (`ip link set NAME up`).
    pub async fn set_up(&self, name: &str) -> Result<(), NetlinkError> {
        self.set_link(up(by_name(name)), format!("setting link {name} up"))
            .await
    }

    /// [`Handle::set_up`] on the link with index `index`; `name` is its
    /// name, for the error message.
    pub async fn set_up_index(&self, index: u32, name: &str) -> Result<(), NetlinkError> {
        self.set_link(up(by_index(index)), format!("setting link {name} up"))
            .await
    }

    /// The MAC address of link `name` (`None` when the link is missing or
    /// has none): one round trip, where [`Handle::link`] also looks up the
    /// names of the links it refers to.
    pub async fn mac_of(&self, name: &str) -> Result<Option<Mac>, NetlinkError> {
        let op = format!("getting the mac address of link {name}");
        match self
            .get_one(RouteNetlinkMessage::GetLink(by_name(name)), op.clone())
            .await?
        {
            None => Ok(None),
            Some(RouteNetlinkMessage::NewLink(msg)) => {
                Ok(parse_link(&msg).and_then(|r| r.link.mac))
            }
            Some(_) => Err(self.error(op, Reason::Unexpected("not a link message".into()), None)),
        }
    }

    /// Bring a link down (`ip link set NAME down`).
    pub async fn set_down(&self, name: &str) -> Result<(), NetlinkError> {
        let mut msg = by_name(name);
        msg.header.change_mask = LinkFlags::Up;
        self.set_link(msg, format!("setting link {name} down"))
            .await
    }

    /// `ip link set NAME mtu MTU`.
    pub async fn set_mtu(&self, name: &str, mtu: u32) -> Result<(), NetlinkError> {
        let mut msg = by_name(name);
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.set_link(msg, format!("setting mtu {mtu} on link {name}"))
            .await
    }

    /// `ip link set NAME address MAC`.
    pub async fn set_mac(&self, name: &str, mac: Mac) -> Result<(), NetlinkError> {
        let mut msg = by_name(name);
        msg.attributes
            .push(LinkAttribute::Address(mac.octets().to_vec()));
        self.set_link(msg, format!("setting mac {mac} on link {name}"))
            .await
    }

    /// Enslave a link to a bridge (`ip link set NAME master MASTER`).
    pub async fn set_master(&self, name: &str, master: &str) -> Result<(), NetlinkError> {
        let op = || format!("attaching link {name} to {master}");
        let master_index = self.index_for(master, op).await?;
        let mut msg = by_name(name);
        msg.attributes.push(LinkAttribute::Controller(master_index));
        self.set_link(msg, op()).await
    }

    /// Release a link from its bridge (`ip link set NAME nomaster`).
    pub async fn set_nomaster(&self, name: &str) -> Result<(), NetlinkError> {
        let mut msg = by_name(name);
        msg.attributes.push(LinkAttribute::Controller(0));
        self.set_link(msg, format!("detaching link {name} from its master"))
            .await
    }

    /// Hairpin mode of a bridge port (`ip link set NAME type bridge_slave
    /// hairpin on`, `IFLA_BRPORT_MODE`): lets a pod reach itself through a
    /// service IP.
    pub async fn set_hairpin(&self, name: &str, on: bool) -> Result<(), NetlinkError> {
        let mut msg = by_name(name);
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
                on,
            )])),
        ]));
        let op = format!(
            "setting hairpin {} on bridge port {name}",
            if on { "on" } else { "off" }
        );
        self.ack(RouteNetlinkMessage::NewLink(msg), Create::Change, op)
            .await
    }

    /// `ip link set NAME name NEW`. The kernel may refuse while the link is up.
    pub async fn rename(&self, name: &str, new_name: &str) -> Result<(), NetlinkError> {
        let op = || format!("renaming link {name} to {new_name}");
        let mut msg = by_index(self.index_for(name, op).await?);
        msg.attributes
            .push(LinkAttribute::IfName(new_name.to_string()));
        self.set_link(msg, op()).await
    }

    /// Move a link into another namespace, optionally renaming it there
    /// (`ip link set NAME netns NS name NEW`).
    pub async fn move_to_netns(
        &self,
        name: &str,
        netns: &NetNs,
        new_name: Option<&str>,
    ) -> Result<(), NetlinkError> {
        let op = || format!("moving link {name} to netns {}", netns.label());
        let mut msg = by_index(self.index_for(name, op).await?);
        msg.attributes
            .push(LinkAttribute::NetNsFd(netns.as_fd().as_raw_fd()));
        if let Some(new_name) = new_name {
            msg.attributes
                .push(LinkAttribute::IfName(new_name.to_string()));
        }
        self.set_link(msg, op()).await
    }

    /// `ip link del NAME`. Idempotent: a missing link is success. Deleting
    /// one end of a veth pair deletes both.
    pub async fn delete_link(&self, name: &str) -> Result<(), NetlinkError> {
        let op = format!("deleting link {name}");
        match self
            .ack(
                RouteNetlinkMessage::DelLink(by_name(name)),
                Create::Change,
                op,
            )
            .await
        {
            Err(err) if err.is_not_found() => Ok(()),
            other => other,
        }
    }

    async fn set_link(&self, msg: LinkMessage, op: String) -> Result<(), NetlinkError> {
        self.ack(RouteNetlinkMessage::SetLink(msg), Create::Change, op)
            .await
    }

    /// Resolve a link name for an operation described by `op`: a missing
    /// link fails that operation with "no such device".
    pub(crate) async fn index_for(
        &self,
        name: &str,
        op: impl Fn() -> String,
    ) -> Result<u32, NetlinkError> {
        let found = self
            .get_one(RouteNetlinkMessage::GetLink(by_name(name)), op())
            .await?;
        match found {
            Some(RouteNetlinkMessage::NewLink(msg)) => Ok(msg.header.index),
            Some(_) => Err(self.error(op(), Reason::Unexpected("not a link message".into()), None)),
            None => Err(self.error(op(), Reason::Kernel(nix::errno::Errno::ENODEV), None)),
        }
    }

    /// Index -> name of every link in the namespace.
    pub(crate) async fn link_names(&self) -> Result<HashMap<u32, String>, NetlinkError> {
        let raw = self.raw_links().await?;
        Ok(raw
            .into_iter()
            .map(|r| (r.link.index, r.link.name))
            .collect())
    }

    async fn raw_links(&self) -> Result<Vec<RawLink>, NetlinkError> {
        let replies = self
            .dump(
                RouteNetlinkMessage::GetLink(LinkMessage::default()),
                "listing links".into(),
            )
            .await?;
        Ok(replies
            .iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewLink(msg) => parse_link(msg),
                _ => None,
            })
            .collect())
    }

    async fn get_link(&self, msg: LinkMessage, op: String) -> Result<Option<Link>, NetlinkError> {
        let Some(reply) = self
            .get_one(RouteNetlinkMessage::GetLink(msg), op.clone())
            .await?
        else {
            return Ok(None);
        };
        let RouteNetlinkMessage::NewLink(msg) = reply else {
            return Err(self.error(op, Reason::Unexpected("not a link message".into()), None));
        };
        let Some(raw) = parse_link(&msg) else {
            return Err(self.error(op, Reason::Unexpected("a link without a name".into()), None));
        };
        // Name the links it refers to (master, vxlan underlay), one get each.
        let mut names = HashMap::new();
        for index in raw.references().collect::<HashSet<_>>() {
            let found = self
                .get_one(RouteNetlinkMessage::GetLink(by_index(index)), op.clone())
                .await?;
            if let Some(RouteNetlinkMessage::NewLink(other)) = found {
                if let Some(other) = parse_link(&other) {
                    names.insert(index, other.link.name);
                }
            }
        }
        Ok(Some(raw.resolve(&names)))
    }
}
