//! Addresses on links (`ip addr`).

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Create, Handle, NetlinkError};
use crate::model::Address;

fn family_of(ip: &IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// The message for `addr` on link `index`, as `ip addr add` builds it.
fn message(index: u32, addr: IpNet) -> AddressMessage {
    let ip = addr.addr();
    let mut msg = AddressMessage::default();
    msg.header.family = family_of(&ip);
    msg.header.prefix_len = addr.prefix_len();
    msg.header.index = index;
    msg.header.scope = if ip.is_loopback() {
        AddressScope::Host
    } else {
        AddressScope::Universe
    };
    msg.attributes.push(AddressAttribute::Local(ip));
    msg.attributes.push(AddressAttribute::Address(ip));
    if let IpNet::V4(net) = addr {
        if net.prefix_len() < 31 {
            msg.attributes
                .push(AddressAttribute::Broadcast(net.broadcast()));
        }
    }
    msg
}

impl Handle {
    /// `ip addr replace ADDR dev LINK`: idempotent, adding an address that
    /// is already there succeeds.
    pub async fn add_address(&self, link: &str, addr: IpNet) -> Result<(), NetlinkError> {
        let index = self
            .index_for(link, || format!("adding address {addr} to {link}"))
            .await?;
        self.add_address_index(index, link, addr).await
    }

    /// [`Handle::add_address`] on the link with index `index` (known from
    /// an earlier lookup): one round trip, no name lookup. `link` is its
    /// name, for the error message.
    pub async fn add_address_index(
        &self,
        index: u32,
        link: &str,
        addr: IpNet,
    ) -> Result<(), NetlinkError> {
        self.ack(
            RouteNetlinkMessage::NewAddress(message(index, addr)),
            Create::Replace,
            format!("adding address {addr} to {link}"),
        )
        .await
    }

    /// `ip addr del ADDR dev LINK`. Idempotent: a missing address, or a
    /// missing link, is success.
    pub async fn delete_address(&self, link: &str, addr: IpNet) -> Result<(), NetlinkError> {
        let op = || format!("deleting address {addr} from {link}");
        let index = match self.index_for(link, op).await {
            Ok(index) => index,
            Err(err) if err.is_not_found() => return Ok(()),
            Err(err) => return Err(err),
        };
        match self
            .ack(
                RouteNetlinkMessage::DelAddress(message(index, addr)),
                Create::Change,
                op(),
            )
            .await
        {
            Err(err) if err.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// Addresses of one link (`ip addr show dev LINK`), IPv4 and IPv6.
    pub async fn addresses(&self, link: &str) -> Result<Vec<Address>, NetlinkError> {
        let index = self
            .index_for(link, || format!("listing addresses of {link}"))
            .await?;
        let all = self.dump_addresses().await?;
        Ok(all
            .into_iter()
            .filter(|(i, _)| *i == index)
            .map(|(_, addr)| Address {
                link: link.to_string(),
                addr,
            })
            .collect())
    }

    /// Every address of the namespace (`ip addr`).
    pub async fn all_addresses(&self) -> Result<Vec<Address>, NetlinkError> {
        let names = self.link_names().await?;
        let all = self.dump_addresses().await?;
        Ok(all
            .into_iter()
            .filter_map(|(index, addr)| {
                Some(Address {
                    link: names.get(&index)?.clone(),
                    addr,
                })
            })
            .collect())
    }

    async fn dump_addresses(&self) -> Result<Vec<(u32, IpNet)>, NetlinkError> {
        let replies = self
            .dump(
                RouteNetlinkMessage::GetAddress(AddressMessage::default()),
                "listing addresses".into(),
            )
            .await?;
        Ok(replies
            .iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewAddress(msg) => parse(msg),
                _ => None,
            })
            .collect())
    }
}

/// The link index and address of a reply. The local address wins over
/// `IFA_ADDRESS`, which is the peer on point-to-point links.
fn parse(msg: &AddressMessage) -> Option<(u32, IpNet)> {
    let mut local = None;
    let mut address = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    let ip = local.or(address)?;
    let net = IpNet::new(ip, msg.header.prefix_len).ok()?;
    Some((msg.header.index, net))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn ipv4_message_carries_broadcast_and_round_trips() {
        let addr: IpNet = "10.244.1.1/24".parse().unwrap();
        let msg = message(7, addr);
        assert!(msg
            .attributes
            .contains(&AddressAttribute::Broadcast(Ipv4Addr::new(10, 244, 1, 255))));
        assert_eq!(parse(&msg), Some((7, addr)));
        let host: IpNet = "10.244.1.0/32".parse().unwrap();
        assert!(!message(7, host)
            .attributes
            .iter()
            .any(|a| matches!(a, AddressAttribute::Broadcast(_))));
    }
}
