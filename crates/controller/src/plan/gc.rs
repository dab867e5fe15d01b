//! Whether an allocation is still held by its owner. An allocation whose owner is gone,
//! is another object of the same name (another uid), or no longer refers to the item is
//! released - in a transaction that also checks the owner is still as it was seen.

use std::net::IpAddr;

use ipnet::IpNet;
use podnet_model::k8s_openapi::api::core::v1::{Node, Service};

use super::lb::ingress_ips;
use super::node_ports::{wants_health_check, wants_node_ports};
use crate::alloc::{AllocKey, Owner, Protocol};

/// The owner object as the cache has it.
#[derive(Debug, Clone, Copy)]
pub enum OwnerObject<'a> {
    Service(&'a Service),
    Node(&'a Node),
    Absent,
}

fn same_uid(owner: &Owner, uid: Option<&String>) -> bool {
    let uid = uid.map(String::as_str).unwrap_or_default();
    owner.uid.is_empty() || uid.is_empty() || owner.uid == uid
}

/// Whether `owner_obj` (the object named by `owner`) still holds `key`.
pub fn holds(key: &AllocKey, owner: &Owner, owner_obj: OwnerObject<'_>) -> bool {
    match (key, owner_obj) {
        (_, OwnerObject::Absent) => false,
        (AllocKey::PodCidr(net), OwnerObject::Node(n)) => {
            same_uid(owner, n.metadata.uid.as_ref()) && node_has_cidr(n, net)
        }
        (AllocKey::PodCidr(_), OwnerObject::Service(_)) => false,
        (_, OwnerObject::Node(_)) => false,
        (k, OwnerObject::Service(s)) => {
            same_uid(owner, s.metadata.uid.as_ref()) && service_has(s, k)
        }
    }
}

fn node_has_cidr(n: &Node, net: &IpNet) -> bool {
    let Some(spec) = &n.spec else { return false };
    let s = net.to_string();
    spec.pod_cidr.as_deref() == Some(&s) || spec.pod_cidrs.iter().flatten().any(|c| *c == s)
}

fn service_has(s: &Service, key: &AllocKey) -> bool {
    let Some(spec) = &s.spec else { return false };
    let ip_eq = |v: &str, ip: &IpAddr| v.parse::<IpAddr>().ok() == Some(*ip);
    match key {
        AllocKey::ServiceIp(ip) => {
            spec.type_.as_deref() != Some("ExternalName")
                && (spec.cluster_ip.as_deref().is_some_and(|v| ip_eq(v, ip))
                    || spec.cluster_ips.iter().flatten().any(|v| ip_eq(v, ip)))
        }
        AllocKey::NodePort(proto, port) => {
            let port = *port as i32;
            let in_ports = wants_node_ports(spec)
                && spec.ports.iter().flatten().any(|p| {
                    p.node_port == Some(port)
                        && Protocol::parse(p.protocol.as_deref()) == Some(*proto)
                });
            let hc = *proto == Protocol::Tcp
                && wants_health_check(spec)
                && spec.health_check_node_port == Some(port);
            in_ports || hc
        }
        AllocKey::LbIp(ip) => {
            spec.type_.as_deref() == Some("LoadBalancer") && ingress_ips(s).any(|i| i == *ip)
        }
        AllocKey::PodCidr(_) => false,
    }
}
