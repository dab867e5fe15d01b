//! Neighbour (ARP / NDP) entries (`ip neigh`).

use std::collections::HashMap;
use std::net::IpAddr;

use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState as NlState,
};
use netlink_packet_route::route::RouteType;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Create, Handle, NetlinkError};
use crate::model::{Mac, Neighbour, NeighbourState};

impl Handle {
    /// `ip neigh add IP lladdr MAC dev DEV nud STATE`: fails with `EEXIST`
    /// if an entry for `IP` exists.
    pub async fn add_neighbour(&self, neigh: &Neighbour) -> Result<(), NetlinkError> {
        self.write_neighbour(neigh, Create::Exclusive, "adding")
            .await
    }

    /// `ip neigh replace IP lladdr MAC dev DEV nud STATE`. Idempotent.
    pub async fn replace_neighbour(&self, neigh: &Neighbour) -> Result<(), NetlinkError> {
        self.write_neighbour(neigh, Create::Replace, "replacing")
            .await
    }

    /// `ip neigh del IP dev DEV`. Idempotent: a missing entry or device is
    /// success.
    pub async fn delete_neighbour(&self, dev: &str, ip: IpAddr) -> Result<(), NetlinkError> {
        let op = || format!("deleting neighbour {ip} on {dev}");
        let index = match self.index_for(dev, op).await {
            Ok(index) => index,
            Err(err) if err.is_not_found() => return Ok(()),
            Err(err) => return Err(err),
        };
        let mut msg = NeighbourMessage::default();
        msg.header.family = inet_family(&ip);
        msg.header.ifindex = index;
        msg.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::from(ip)));
        match self
            .ack(RouteNetlinkMessage::DelNeighbour(msg), Create::Change, op())
            .await
        {
            Err(err) if err.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// ARP and NDP entries, of one device or of all (`ip neigh show [dev DEV]`).
    pub async fn neighbours(&self, dev: Option<&str>) -> Result<Vec<Neighbour>, NetlinkError> {
        let names = self.link_names().await?;
        let replies = self
            .dump(
                RouteNetlinkMessage::GetNeighbour(NeighbourMessage::default()),
                "listing neighbours".into(),
            )
            .await?;
        Ok(replies
            .iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewNeighbour(msg) => parse(msg, &names),
                _ => None,
            })
            .filter(|n| dev.is_none_or(|d| n.dev == d))
            .collect())
    }

    async fn write_neighbour(
        &self,
        neigh: &Neighbour,
        create: Create,
        verb: &str,
    ) -> Result<(), NetlinkError> {
        let op = || {
            let mac = neigh
                .mac
                .map(|m| format!(" lladdr {m}"))
                .unwrap_or_default();
            format!("{verb} neighbour {}{mac} on {}", neigh.ip, neigh.dev)
        };
        let index = self.index_for(&neigh.dev, op).await?;
        let mut msg = NeighbourMessage::default();
        msg.header.family = inet_family(&neigh.ip);
        msg.header.ifindex = index;
        msg.header.state = state_to_nl(neigh.state);
        msg.header.kind = RouteType::Unspec;
        msg.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::from(
                neigh.ip,
            )));
        if let Some(mac) = neigh.mac {
            msg.attributes
                .push(NeighbourAttribute::LinkLayerAddress(mac.octets().to_vec()));
        }
        self.ack(RouteNetlinkMessage::NewNeighbour(msg), create, op())
            .await
    }
}

fn inet_family(ip: &IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// An IP (v4 or v6) from a neighbour destination; bridge-family messages
/// carry it as raw bytes.
pub(crate) fn ip_of(addr: &NeighbourAddress) -> Option<IpAddr> {
    match addr {
        NeighbourAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        NeighbourAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        NeighbourAddress::Other(bytes) => match bytes.len() {
            4 => <[u8; 4]>::try_from(bytes.as_slice()).ok().map(IpAddr::from),
            16 => <[u8; 16]>::try_from(bytes.as_slice())
                .ok()
                .map(IpAddr::from),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn state_to_nl(state: NeighbourState) -> NlState {
    match state {
        NeighbourState::None => NlState::None,
        NeighbourState::Incomplete => NlState::Incomplete,
        NeighbourState::Reachable => NlState::Reachable,
        NeighbourState::Stale => NlState::Stale,
        NeighbourState::Delay => NlState::Delay,
        NeighbourState::Probe => NlState::Probe,
        NeighbourState::Failed => NlState::Failed,
        NeighbourState::Noarp => NlState::Noarp,
        NeighbourState::Permanent => NlState::Permanent,
        NeighbourState::Other(v) => NlState::from(v),
    }
}

pub(crate) fn state_from_nl(state: NlState) -> NeighbourState {
    match state {
        NlState::None => NeighbourState::None,
        NlState::Incomplete => NeighbourState::Incomplete,
        NlState::Reachable => NeighbourState::Reachable,
        NlState::Stale => NeighbourState::Stale,
        NlState::Delay => NeighbourState::Delay,
        NlState::Probe => NeighbourState::Probe,
        NlState::Failed => NeighbourState::Failed,
        NlState::Noarp => NeighbourState::Noarp,
        NlState::Permanent => NeighbourState::Permanent,
        other => NeighbourState::Other(u16::from(other)),
    }
}

fn parse(msg: &NeighbourMessage, names: &HashMap<u32, String>) -> Option<Neighbour> {
    if !matches!(
        msg.header.family,
        AddressFamily::Inet | AddressFamily::Inet6
    ) {
        return None;
    }
    let mut ip = None;
    let mut mac = None;
    for attr in &msg.attributes {
        match attr {
            NeighbourAttribute::Destination(addr) => ip = ip_of(addr),
            NeighbourAttribute::LinkLayerAddress(bytes) => mac = Mac::from_slice(bytes),
            _ => {}
        }
    }
    Some(Neighbour {
        dev: names.get(&msg.header.ifindex)?.clone(),
        ip: ip?,
        mac,
        state: state_from_nl(msg.header.state),
    })
}
