//! Routes (`ip route`): add, replace, delete, list.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage,
    RouteProtocol as NlProtocol, RouteScope as NlScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Create, Handle, NetlinkError};
use crate::model::{Route, RouteKind, RouteProtocol, RouteScope};

impl Handle {
    /// `ip route add ROUTE`: fails with `EEXIST` if present.
    pub async fn add_route(&self, route: &Route) -> Result<(), NetlinkError> {
        self.write_route(route, Create::Exclusive, format!("adding route {route}"))
            .await
    }

    /// `ip route replace ROUTE`: create or overwrite the route with the same
    /// destination, table and metric. Idempotent.
    pub async fn replace_route(&self, route: &Route) -> Result<(), NetlinkError> {
        self.write_route(route, Create::Replace, format!("replacing route {route}"))
            .await
    }

    /// [`Handle::replace_route`] with the output device given by its index
    /// `oif` (known from an earlier lookup): one round trip, no name lookup.
    /// `route.dev`, if set, names that device in the error message only.
    pub async fn replace_route_oif(&self, route: &Route, oif: u32) -> Result<(), NetlinkError> {
        self.ack(
            RouteNetlinkMessage::NewRoute(message(route, Some(oif))),
            Create::Replace,
            format!("replacing route {route}"),
        )
        .await
    }

    /// `ip route del ROUTE`, matching destination, table, and the gateway,
    /// device and metric when given. Idempotent: a missing route (or a
    /// missing device) is success.
    pub async fn delete_route(&self, route: &Route) -> Result<(), NetlinkError> {
        let op = || format!("deleting route {route}");
        let oif = match &route.dev {
            Some(dev) => match self.index_for(dev, op).await {
                Ok(index) => Some(index),
                Err(err) if err.is_not_found() => return Ok(()),
                Err(err) => return Err(err),
            },
            None => None,
        };
        let mut msg = message(route, oif);
        // Match any type, scope and protocol, as `ip route del` does.
        msg.header.kind = RouteType::Unspec;
        msg.header.scope = NlScope::NoWhere;
        msg.header.protocol = NlProtocol::Unspec;
        match self
            .ack(RouteNetlinkMessage::DelRoute(msg), Create::Change, op())
            .await
        {
            Err(err) if err.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// Routes of one table (e.g. [`crate::model::TABLE_MAIN`]), IPv4 and
    /// IPv6. Cached clones are left out.
    pub async fn routes(&self, table: u32) -> Result<Vec<Route>, NetlinkError> {
        Ok(self
            .all_routes()
            .await?
            .into_iter()
            .filter(|r| r.table == table)
            .collect())
    }

    /// Routes of every table (`ip route show table all`, both families).
    pub async fn all_routes(&self) -> Result<Vec<Route>, NetlinkError> {
        let names = self.link_names().await?;
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut msg = RouteMessage::default();
            msg.header.address_family = family;
            let replies = self
                .dump(RouteNetlinkMessage::GetRoute(msg), "listing routes".into())
                .await?;
            out.extend(replies.iter().filter_map(|reply| match reply {
                RouteNetlinkMessage::NewRoute(msg) => parse(msg, &names),
                _ => None,
            }));
        }
        Ok(out)
    }

    async fn write_route(
        &self,
        route: &Route,
        create: Create,
        op: String,
    ) -> Result<(), NetlinkError> {
        let oif = match &route.dev {
            Some(dev) => Some(self.index_for(dev, || op.clone()).await?),
            None => None,
        };
        self.ack(
            RouteNetlinkMessage::NewRoute(message(route, oif)),
            create,
            op,
        )
        .await
    }
}

fn route_address(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(v4) => RouteAddress::Inet(v4),
        IpAddr::V6(v6) => RouteAddress::Inet6(v6),
    }
}

fn message(route: &Route, oif: Option<u32>) -> RouteMessage {
    let mut msg = RouteMessage::default();
    let h = &mut msg.header;
    h.address_family = match route.dst {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    };
    h.destination_prefix_length = route.dst.prefix_len();
    h.table = u8::try_from(route.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    h.protocol = NlProtocol::from(route.protocol.0);
    h.scope = NlScope::from(scope_to_u8(route.scope));
    h.kind = RouteType::from(kind_to_u8(route.kind));
    if route.onlink {
        h.flags |= RouteFlags::Onlink;
    }
    let attrs = &mut msg.attributes;
    if route.dst.prefix_len() > 0 {
        attrs.push(RouteAttribute::Destination(route_address(
            route.dst.network(),
        )));
    }
    if let Some(gw) = route.gateway {
        attrs.push(RouteAttribute::Gateway(route_address(gw)));
    }
    if let Some(oif) = oif {
        attrs.push(RouteAttribute::Oif(oif));
    }
    if let Some(src) = route.src {
        attrs.push(RouteAttribute::PrefSource(route_address(src)));
    }
    if route.metric != 0 {
        attrs.push(RouteAttribute::Priority(route.metric));
    }
    attrs.push(RouteAttribute::Table(route.table));
    msg
}

fn ip_of(addr: &RouteAddress) -> Option<IpAddr> {
    match addr {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// A dumped route; `None` for cached clones and non-IP families.
fn parse(msg: &RouteMessage, names: &HashMap<u32, String>) -> Option<Route> {
    let h = &msg.header;
    if h.flags.contains(RouteFlags::Cloned) {
        return None;
    }
    let mut dst_ip = None;
    let mut route = Route::new(match h.address_family {
        AddressFamily::Inet => IpNet::V4(Default::default()),
        AddressFamily::Inet6 => IpNet::V6(Default::default()),
        _ => return None,
    });
    route.table = u32::from(h.table);
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Destination(a) => dst_ip = ip_of(a),
            RouteAttribute::Gateway(a) => route.gateway = ip_of(a),
            RouteAttribute::Oif(index) => route.dev = names.get(index).cloned(),
            RouteAttribute::PrefSource(a) => route.src = ip_of(a),
            RouteAttribute::Priority(metric) => route.metric = *metric,
            RouteAttribute::Table(table) => route.table = *table,
            _ => {}
        }
    }
    if let Some(ip) = dst_ip {
        route.dst = IpNet::new(ip, h.destination_prefix_length).ok()?.trunc();
    }
    route.onlink = h.flags.contains(RouteFlags::Onlink);
    route.scope = scope_from_u8(u8::from(h.scope));
    route.kind = kind_from_u8(u8::from(h.kind));
    route.protocol = RouteProtocol(u8::from(h.protocol));
    Some(route)
}

fn scope_to_u8(scope: RouteScope) -> u8 {
    match scope {
        RouteScope::Universe => 0,
        RouteScope::Site => 200,
        RouteScope::Link => 253,
        RouteScope::Host => 254,
        RouteScope::Nowhere => 255,
        RouteScope::Other(v) => v,
    }
}

fn scope_from_u8(v: u8) -> RouteScope {
    match v {
        0 => RouteScope::Universe,
        200 => RouteScope::Site,
        253 => RouteScope::Link,
        254 => RouteScope::Host,
        255 => RouteScope::Nowhere,
        other => RouteScope::Other(other),
    }
}

fn kind_to_u8(kind: RouteKind) -> u8 {
    match kind {
        RouteKind::Unicast => 1,
        RouteKind::Local => 2,
        RouteKind::Broadcast => 3,
        RouteKind::Multicast => 5,
        RouteKind::Blackhole => 6,
        RouteKind::Unreachable => 7,
        RouteKind::Prohibit => 8,
        RouteKind::Other(v) => v,
    }
}

fn kind_from_u8(v: u8) -> RouteKind {
    match v {
        1 => RouteKind::Unicast,
        2 => RouteKind::Local,
        3 => RouteKind::Broadcast,
        5 => RouteKind::Multicast,
        6 => RouteKind::Blackhole,
        7 => RouteKind::Unreachable,
        8 => RouteKind::Prohibit,
        other => RouteKind::Other(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trips_through_parse() {
        let names = HashMap::from([(4, "pnvx0".to_string())]);
        let route = Route::new("10.244.2.0/24".parse().unwrap())
            .via("10.244.2.0".parse().unwrap())
            .dev("pnvx0")
            .onlink()
            .metric(100)
            .table(1000);
        let msg = message(&route, Some(4));
        assert_eq!(msg.header.table, RouteHeader::RT_TABLE_UNSPEC);
        assert_eq!(parse(&msg, &names), Some(route));
        let default = Route::default_via("10.244.1.1".parse().unwrap());
        let msg = message(&default, None);
        assert!(!msg
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Destination(_))));
        assert_eq!(parse(&msg, &HashMap::new()), Some(default));
    }

    #[test]
    fn scopes_and_kinds_round_trip() {
        for scope in [
            RouteScope::Universe,
            RouteScope::Site,
            RouteScope::Link,
            RouteScope::Host,
            RouteScope::Nowhere,
        ] {
            assert_eq!(scope_from_u8(scope_to_u8(scope)), scope);
        }
        for kind in [
            RouteKind::Unicast,
            RouteKind::Local,
            RouteKind::Blackhole,
            RouteKind::Unreachable,
        ] {
            assert_eq!(kind_from_u8(kind_to_u8(kind)), kind);
        }
    }
}
