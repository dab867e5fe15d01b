//! Allocation keys and their owners: one store key per allocated item, whose value
//! names the object holding it.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use podnet_model::Kind;
use serde::{Deserialize, Serialize};

/// Prefix of every allocation key.
pub const ALLOC_PREFIX: &str = "/registry/podnet.io/allocations/";

/// One allocated item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AllocKey {
    /// A Service ClusterIP.
    ServiceIp(IpAddr),
    /// A NodePort (or healthCheckNodePort) of one protocol.
    NodePort(Protocol, u16),
    /// A Node pod CIDR.
    PodCidr(IpNet),
    /// A LoadBalancer ingress address.
    LbIp(IpAddr),
}

pub use podnet_model::service::Protocol;

impl AllocKey {
    /// The store key.
    pub fn key(&self) -> String {
        match self {
            AllocKey::ServiceIp(ip) => format!("{ALLOC_PREFIX}serviceips/{ip}"),
            AllocKey::NodePort(p, port) => format!("{ALLOC_PREFIX}nodeports/{p}/{port}"),
            AllocKey::PodCidr(net) => format!(
                "{ALLOC_PREFIX}podcidrs/{}_{}",
                net.network(),
                net.prefix_len()
            ),
            AllocKey::LbIp(ip) => format!("{ALLOC_PREFIX}lbips/{ip}"),
        }
    }

    /// Parses a store key written by [`AllocKey::key`].
    pub fn parse(key: &str) -> Option<AllocKey> {
        let rest = key.strip_prefix(ALLOC_PREFIX)?;
        let (class, item) = rest.split_once('/')?;
        match class {
            "serviceips" => item.parse().ok().map(AllocKey::ServiceIp),
            "lbips" => item.parse().ok().map(AllocKey::LbIp),
            "nodeports" => {
                let (p, port) = item.split_once('/')?;
                Some(AllocKey::NodePort(
                    Protocol::parse(Some(p))?,
                    port.parse().ok()?,
                ))
            }
            "podcidrs" => {
                let (net, len) = item.split_once('_')?;
                let net: IpNet = format!("{net}/{len}").parse().ok()?;
                (net.network() == net.addr()).then_some(AllocKey::PodCidr(net))
            }
            _ => None,
        }
    }

    /// The kind of object that may own this item.
    pub fn owner_kind(&self) -> Kind {
        match self {
            AllocKey::PodCidr(_) => Kind::Node,
            _ => Kind::Service,
        }
    }
}

impl fmt::Display for AllocKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocKey::ServiceIp(ip) => write!(f, "cluster IP {ip}"),
            AllocKey::NodePort(p, port) => write!(f, "node port {port}/{p}"),
            AllocKey::PodCidr(net) => write!(f, "pod CIDR {net}"),
            AllocKey::LbIp(ip) => write!(f, "load-balancer IP {ip}"),
        }
    }
}

/// The object holding an allocation: the stored value of an allocation key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Owner {
    /// `Service` or `Node`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default)]
    pub uid: String,
}

impl Owner {
    pub fn new(kind: Kind, namespace: Option<&str>, name: &str, uid: &str) -> Owner {
        Owner {
            kind: kind.name().to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            uid: uid.to_string(),
        }
    }

    /// The owner's object key in the store, when its kind is one we know.
    pub fn object_key(&self) -> Option<String> {
        let kind = match self.kind.as_str() {
            "Service" => Kind::Service,
            "Node" => Kind::Node,
            _ => return None,
        };
        Some(kind.key(self.namespace.as_deref(), &self.name))
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("owners always serialise")
    }

    pub fn decode(bytes: &[u8]) -> Option<Owner> {
        serde_json::from_slice(bytes).ok()
    }

    /// Same object, or the same name where either side has no uid.
    pub fn same_object(&self, other: &Owner) -> bool {
        self.kind == other.kind
            && self.namespace == other.namespace
            && self.name == other.name
            && (self.uid == other.uid || self.uid.is_empty() || other.uid.is_empty())
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for k in [
            AllocKey::ServiceIp("10.96.0.10".parse().unwrap()),
            AllocKey::NodePort(Protocol::Udp, 30053),
            AllocKey::PodCidr("10.244.3.0/24".parse().unwrap()),
            AllocKey::LbIp("172.18.255.200".parse().unwrap()),
        ] {
            assert_eq!(AllocKey::parse(&k.key()), Some(k), "{}", k.key());
        }
        assert_eq!(
            AllocKey::PodCidr("10.244.3.0/24".parse().unwrap()).key(),
            "/registry/podnet.io/allocations/podcidrs/10.244.3.0_24"
        );
        assert_eq!(
            AllocKey::NodePort(Protocol::Tcp, 30000).key(),
            "/registry/podnet.io/allocations/nodeports/TCP/30000"
        );
        assert_eq!(AllocKey::parse("/registry/podnet.io/allocations/x/1"), None);
    }

    #[test]
    fn owners_encode_and_match() {
        let o = Owner::new(Kind::Service, Some("default"), "web", "u1");
        assert_eq!(Owner::decode(&o.encode()), Some(o.clone()));
        assert_eq!(
            o.object_key().as_deref(),
            Some("/registry/services/specs/default/web")
        );
        let mut other = o.clone();
        other.uid = "u2".into();
        assert!(!o.same_object(&other));
        other.uid.clear();
        assert!(o.same_object(&other));
    }
}
