//! Bridge forwarding database entries (`bridge fdb`): neighbour messages of
//! family `AF_BRIDGE`. On a vxlan device (`self`), an entry maps a MAC to
//! the remote VTEP (`NDA_DST`) that frames for it are tunnelled to: the
//! flannel-style static overlay.

use std::collections::HashMap;

use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::neighbour::{ip_of, state_from_nl, state_to_nl};
use super::{Create, Handle, NetlinkError};
use crate::model::{FdbEntry, FdbOwner, Mac};

fn describe(entry: &FdbEntry) -> String {
    let mut text = format!("fdb entry {} on {}", entry.mac, entry.dev);
    if let Some(dst) = entry.dst {
        text.push_str(&format!(" dst {dst}"));
    }
    if let Some(vlan) = entry.vlan {
        text.push_str(&format!(" vlan {vlan}"));
    }
    text
}

fn message(entry: &FdbEntry, index: u32) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Bridge;
    msg.header.ifindex = index;
    msg.header.state = state_to_nl(entry.state);
    msg.header.flags = match entry.owner {
        FdbOwner::Device => NeighbourFlags::Own,
        FdbOwner::Master => NeighbourFlags::Controller,
    };
    msg.attributes.push(NeighbourAttribute::LinkLayerAddress(
        entry.mac.octets().to_vec(),
    ));
    if let Some(dst) = entry.dst {
        msg.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::from(dst)));
    }
    if let Some(vlan) = entry.vlan {
        msg.attributes.push(NeighbourAttribute::Vlan(vlan));
    }
    msg
}

impl Handle {
    /// `bridge fdb append MAC dev DEV [dst IP] [vlan V] self|master STATE`:
    /// adds the entry, alongside other remotes for the same MAC on a vxlan
    /// device. Idempotent.
    pub async fn append_fdb(&self, entry: &FdbEntry) -> Result<(), NetlinkError> {
        self.write_fdb(entry, Create::Append, "appending").await
    }

    /// `bridge fdb replace ...`: the entry becomes the only remote for its
    /// MAC. Idempotent.
    pub async fn replace_fdb(&self, entry: &FdbEntry) -> Result<(), NetlinkError> {
        self.write_fdb(entry, Create::Replace, "replacing").await
    }

    /// `bridge fdb del ...`: with `dst`, only that remote is removed.
    /// Idempotent: a missing entry or device is success.
    pub async fn delete_fdb(&self, entry: &FdbEntry) -> Result<(), NetlinkError> {
        let op = || format!("deleting {}", describe(entry));
        let index = match self.index_for(&entry.dev, op).await {
            Ok(index) => index,
            Err(err) if err.is_not_found() => return Ok(()),
            Err(err) => return Err(err),
        };
        match self
            .ack(
                RouteNetlinkMessage::DelNeighbour(message(entry, index)),
                Create::Change,
                op(),
            )
            .await
        {
            Err(err) if err.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// FDB entries of one device (`bridge fdb show dev DEV`).
    pub async fn fdb(&self, dev: &str) -> Result<Vec<FdbEntry>, NetlinkError> {
        let op = || format!("listing fdb entries of {dev}");
        let index = self.index_for(dev, op).await?;
        let mut request = NeighbourMessage::default();
        request.header.family = AddressFamily::Bridge;
        let replies = self
            .dump(RouteNetlinkMessage::GetNeighbour(request), op())
            .await?;
        let names = HashMap::from([(index, dev.to_string())]);
        Ok(replies
            .iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewNeighbour(msg) if msg.header.ifindex == index => {
                    parse(msg, &names)
                }
                _ => None,
            })
            .collect())
    }

    async fn write_fdb(
        &self,
        entry: &FdbEntry,
        create: Create,
        verb: &str,
    ) -> Result<(), NetlinkError> {
        let op = || format!("{verb} {}", describe(entry));
        let index = self.index_for(&entry.dev, op).await?;
        self.ack(
            RouteNetlinkMessage::NewNeighbour(message(entry, index)),
            create,
            op(),
        )
        .await
    }
}

fn parse(msg: &NeighbourMessage, names: &HashMap<u32, String>) -> Option<FdbEntry> {
    if msg.header.family != AddressFamily::Bridge {
        return None;
    }
    let mut mac = None;
    let mut dst = None;
    let mut vlan = None;
    for attr in &msg.attributes {
        match attr {
            NeighbourAttribute::LinkLayerAddress(bytes) => mac = Mac::from_slice(bytes),
            NeighbourAttribute::Destination(addr) => dst = ip_of(addr),
            NeighbourAttribute::Vlan(v) => vlan = Some(*v),
            _ => {}
        }
    }
    let owner = if msg.header.flags.contains(NeighbourFlags::Controller) {
        FdbOwner::Master
    } else {
        FdbOwner::Device
    };
    Some(FdbEntry {
        dev: names.get(&msg.header.ifindex)?.clone(),
        mac: mac?,
        dst,
        vlan,
        owner,
        state: state_from_nl(msg.header.state),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vxlan_remote_round_trips() {
        let entry = FdbEntry::vxlan_remote(
            "pnvx0",
            "0a:58:0a:f4:02:00".parse().unwrap(),
            "172.18.0.3".parse().unwrap(),
        );
        let msg = message(&entry, 9);
        assert!(msg.header.flags.contains(NeighbourFlags::Own));
        let names = HashMap::from([(9, "pnvx0".to_string())]);
        assert_eq!(parse(&msg, &names), Some(entry));
    }
}
