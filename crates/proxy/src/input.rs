//! The fields of Services and EndpointSlices the model reads, and nothing else: what
//! the engine keeps per object between syncs (a k8s-openapi `Service` plus its slice
//! take kilobytes; these take a few hundred bytes). The model is built from these
//! forms only, so keeping them instead of the objects cannot change what is planned.

use std::net::Ipv4Addr;
use std::time::Duration;

use podnet_model::k8s_openapi::api::core::v1::Service;
use podnet_model::k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::model::{Protocol, DEFAULT_AFFINITY_TIMEOUT, LOAD_BALANCING_ANNOTATION};

/// What the model reads of a Service (its namespace and name are the engine's key).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceInput {
    /// `spec` is set (a Service without one gets no frontend).
    pub has_spec: bool,
    /// `spec.type`, unset = ClusterIP.
    pub type_: Option<Box<str>>,
    /// `spec.clusterIP` when really allocated (not headless, not ExternalName, not
    /// refused by the controller: `podnet_model::service::allocated_cluster_ip`).
    pub cluster_ip: Option<Box<str>>,
    pub etp_local: bool,
    pub itp_local: bool,
    /// `sessionAffinity: ClientIP` and its timeout.
    pub affinity: Option<Duration>,
    /// The `podnet.io/load-balancing` annotation.
    pub load_balancing: Option<Box<str>>,
    pub external_ips: Box<[Box<str>]>,
    /// `status.loadBalancer.ingress[].ip` (the ones set).
    pub lb_ips: Box<[Box<str>]>,
    pub source_ranges: Box<[Box<str>]>,
    pub ports: Box<[PortInput]>,
    pub health_check_node_port: Option<i32>,
}

/// One `spec.ports[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInput {
    pub name: Box<str>,
    /// The protocol, or the unknown text (for the warning).
    pub protocol: Result<Protocol, Box<str>>,
    pub port: i32,
    pub node_port: Option<i32>,
}

fn boxed(v: Option<&String>) -> Option<Box<str>> {
    v.map(|s| s.as_str().into())
}

fn boxed_all<'a>(v: impl IntoIterator<Item = &'a String>) -> Box<[Box<str>]> {
    v.into_iter().map(|s| s.as_str().into()).collect()
}

impl From<&Service> for ServiceInput {
    fn from(svc: &Service) -> ServiceInput {
        let Some(spec) = svc.spec.as_ref() else {
            return ServiceInput::default();
        };
        let status = svc.status.as_ref();
        let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u64::try_from(t).ok())
                .filter(|t| *t > 0)
                .map_or(DEFAULT_AFFINITY_TIMEOUT, Duration::from_secs)
        });
        ServiceInput {
            has_spec: true,
            type_: boxed(spec.type_.as_ref()),
            cluster_ip: podnet_model::service::allocated_cluster_ip(svc).map(Box::from),
            etp_local: spec.external_traffic_policy.as_deref() == Some("Local"),
            itp_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
            affinity,
            load_balancing: boxed(
                svc.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(LOAD_BALANCING_ANNOTATION)),
            ),
            external_ips: boxed_all(spec.external_ips.iter().flatten()),
            lb_ips: boxed_all(
                status
                    .and_then(|s| s.load_balancer.as_ref())
                    .and_then(|l| l.ingress.as_ref())
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i.ip.as_ref()),
            ),
            source_ranges: boxed_all(spec.load_balancer_source_ranges.iter().flatten()),
            ports: spec
                .ports
                .iter()
                .flatten()
                .map(|p| PortInput {
                    name: p.name.as_deref().unwrap_or_default().into(),
                    protocol: Protocol::parse(p.protocol.as_deref())
                        .ok_or_else(|| p.protocol.as_deref().unwrap_or_default().into()),
                    port: p.port,
                    node_port: p.node_port,
                })
                .collect(),
            health_check_node_port: spec.health_check_node_port,
        }
    }
}

/// What the model reads of an EndpointSlice, for one node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SliceInput {
    /// `addressType: IPv4` (other slices are ignored).
    pub ipv4: bool,
    pub ports: Box<[SlicePort]>,
    /// The endpoints with a usable first address (the others are ignored).
    pub endpoints: Box<[EndpointInput]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlicePort {
    pub name: Box<str>,
    /// `None`: an unknown protocol (never matches a service port).
    pub protocol: Option<Protocol>,
    /// The port number, `None` when unset or out of range.
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointInput {
    pub ip: Ipv4Addr,
    pub ready: Option<bool>,
    pub serving: Option<bool>,
    pub terminating: Option<bool>,
    /// On this node.
    pub local: bool,
}

impl SliceInput {
    /// The slice as seen from `node` (which endpoints are local).
    pub fn new(slice: &EndpointSlice, node: &str) -> SliceInput {
        if slice.address_type != "IPv4" {
            return SliceInput::default();
        }
        SliceInput {
            ipv4: true,
            ports: slice
                .ports
                .iter()
                .flatten()
                .map(|p| SlicePort {
                    name: p.name.as_deref().unwrap_or("").into(),
                    protocol: Protocol::parse(p.protocol.as_deref()),
                    port: p
                        .port
                        .and_then(|p| u16::try_from(p).ok())
                        .filter(|p| *p != 0),
                })
                .collect(),
            endpoints: slice
                .endpoints
                .iter()
                .filter_map(|ep| {
                    let ip: Ipv4Addr = ep.addresses.first()?.parse().ok()?;
                    let cond = ep.conditions.as_ref();
                    Some(EndpointInput {
                        ip,
                        ready: cond.and_then(|c| c.ready),
                        serving: cond.and_then(|c| c.serving),
                        terminating: cond.and_then(|c| c.terminating),
                        local: ep.node_name.as_deref() == Some(node),
                    })
                })
                .collect(),
        }
    }
}
