//! The proxy's semantic model: what every frontend does with a new connection. Pure:
//! the same Services, EndpointSlices and node give the same model, so the ruleset
//! planned from it is deterministic and diffable.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use ipnet::Ipv4Net;
use podnet_model::k8s_openapi::api::core::v1::Service;
use podnet_model::k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::endpoints::{candidates_of, usable};
use crate::input::{PortInput, ServiceInput, SliceInput};

pub use podnet_model::service::{Protocol, CLUSTER_IP_ALLOCATED, SERVICE_NAME_LABEL};

/// Service annotation choosing the backend selection: `random` (default) or `maglev`.
pub const LOAD_BALANCING_ANNOTATION: &str = "podnet.io/load-balancing";
/// kube's default `sessionAffinityConfig.clientIP.timeoutSeconds`.
pub const DEFAULT_AFFINITY_TIMEOUT: Duration = Duration::from_secs(10800);

/// An endpoint address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Backend {
    pub ip: Ipv4Addr,
    pub port: u16,
}

/// Which service port a frontend or backend set belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServicePortRef {
    pub namespace: String,
    pub name: String,
    pub port: String,
    pub protocol: Protocol,
}

impl std::fmt::Display for ServicePortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)?;
        if !self.port.is_empty() {
            write!(f, ":{}", self.port)?;
        }
        write!(f, "/{}", self.protocol.as_str())
    }
}

/// A backend set's identity: a 64-bit hash of (service port, scope), stable across
/// syncs and restarts so an update touches only the sets that changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SetId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Every usable endpoint of the cluster.
    Cluster,
    /// Only this node's endpoints (externalTrafficPolicy / internalTrafficPolicy Local).
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Selection {
    /// A uniformly random backend per new connection (kube-proxy's behaviour).
    Random,
    /// Maglev consistent hashing of the client's address and source port (`jhash ip
    /// saddr . th sport`; the frontend is the lookup key): a backend change moves about
    /// 1/N of the flows.
    Maglev,
}

/// The backends one service port balances over, in one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSet {
    pub id: SetId,
    pub service: ServicePortRef,
    pub scope: Scope,
    /// Sorted, never empty.
    pub backends: Vec<Backend>,
    pub selection: Selection,
    /// `sessionAffinity: ClientIP` and its timeout.
    pub affinity: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FrontendKind {
    ClusterIp,
    ExternalIp,
    LoadBalancer,
    NodePort,
}

/// What a new connection to a frontend gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// DNAT to one backend of the set.
    Balance(SetId),
    /// No endpoint at all: refuse at once (TCP RST / ICMP port unreachable).
    Reject,
    /// Endpoints exist but none may serve this traffic (Local policy, none local).
    Drop,
}

/// When a balanced connection's source is rewritten to the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Masquerade {
    /// Never (externalTrafficPolicy Local keeps the client's address).
    Never,
    /// When the client is not a pod (kube-proxy's rule for ClusterIPs).
    OffCluster,
    /// Always (externalTrafficPolicy Cluster: the reply must come back through us).
    Always,
}

/// A destination address, protocol and port that new connections are steered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrontendKey {
    pub ip: Ipv4Addr,
    pub protocol: Protocol,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontend {
    pub kind: FrontendKind,
    pub service: ServicePortRef,
    /// For every client (or, when `internal` is set, for clients outside the cluster).
    pub action: Action,
    /// For pods and the node itself, where it differs from `action`
    /// (externalTrafficPolicy Local: in-cluster clients use every endpoint).
    pub internal: Option<Action>,
    pub masquerade: Masquerade,
    /// `loadBalancerSourceRanges` (LoadBalancer frontends only); empty = everyone.
    pub source_ranges: Vec<Ipv4Net>,
}

/// A health-check node port of an externalTrafficPolicy Local LoadBalancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub port: u16,
    pub namespace: String,
    pub name: String,
    /// Usable local endpoints (over all ports of the service: the most any port has).
    pub local_endpoints: usize,
}

/// Everything the proxy does on one node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxyModel {
    pub frontends: BTreeMap<FrontendKey, Frontend>,
    pub sets: BTreeMap<SetId, BackendSet>,
    /// Every allocated ClusterIP: connections to one of its unused ports are rejected.
    pub cluster_ips: BTreeSet<Ipv4Addr>,
    /// Addresses of this node's endpoints: a connection from one of them that is
    /// balanced back to itself (hairpin) is masqueraded.
    pub local_endpoint_ips: BTreeSet<Ipv4Addr>,
    pub health_checks: BTreeMap<u16, HealthCheck>,
    /// Objects skipped, with why (logged by the caller; nothing else is lost).
    pub warnings: Vec<String>,
}

/// What the model is built from.
#[derive(Debug, Clone, Copy)]
pub struct ProxyInput<'a> {
    pub services: &'a [Service],
    pub slices: &'a [EndpointSlice],
    /// This node's name (which endpoints are local).
    pub node: &'a str,
    /// This node's addresses that NodePorts listen on (its InternalIP/ExternalIP
    /// addresses, not localhost).
    pub node_ips: &'a [Ipv4Addr],
}

/// Builds the model. Services that cannot be served (ExternalName, headless, no
/// allocated ClusterIP) get no frontend; malformed fields are skipped with a warning.
pub fn build(input: ProxyInput<'_>) -> ProxyModel {
    let mut slices_by_service: BTreeMap<(&str, &str), Vec<SliceInput>> = BTreeMap::new();
    for s in input.slices {
        let ns = s.metadata.namespace.as_deref().unwrap_or("default");
        if let Some(svc) = s
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        {
            slices_by_service
                .entry((ns, svc.as_str()))
                .or_default()
                .push(SliceInput::new(s, input.node));
        }
    }
    let mut m = ProxyModel::default();
    for svc in input.services {
        let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
        let name = svc.metadata.name.as_deref().unwrap_or("");
        let slices: Vec<&SliceInput> = slices_by_service
            .get(&(ns, name))
            .into_iter()
            .flatten()
            .collect();
        add_service(
            &mut m,
            input.node_ips,
            &ServiceInput::from(svc),
            ns,
            name,
            &slices,
        );
    }
    m
}

/// The model of one service from its own slices: the same as [`build`] with just
/// this service and the slices labelled with it.
pub fn build_service(
    svc: &Service,
    slices: &[&EndpointSlice],
    node: &str,
    node_ips: &[Ipv4Addr],
) -> ProxyModel {
    let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
    let name = svc.metadata.name.as_deref().unwrap_or("");
    let slices: Vec<SliceInput> = slices.iter().map(|s| SliceInput::new(s, node)).collect();
    let slices: Vec<&SliceInput> = slices.iter().collect();
    build_service_input(&ServiceInput::from(svc), ns, name, &slices, node_ips)
}

/// [`build_service`] from the reduced forms the engine keeps (the slices already
/// reduced for this node).
pub fn build_service_input(
    svc: &ServiceInput,
    ns: &str,
    name: &str,
    slices: &[&SliceInput],
    node_ips: &[Ipv4Addr],
) -> ProxyModel {
    let mut m = ProxyModel::default();
    add_service(&mut m, node_ips, svc, ns, name, slices);
    m
}

fn add_service(
    m: &mut ProxyModel,
    node_ips: &[Ipv4Addr],
    svc: &ServiceInput,
    ns: &str,
    name: &str,
    slices: &[&SliceInput],
) {
    if !svc.has_spec {
        return;
    }
    let ty = svc.type_.as_deref().unwrap_or("ClusterIP");
    if ty == "ExternalName" {
        return;
    }
    let Some(cluster_ip) = cluster_ip(m, svc, ns, name) else {
        return;
    };
    m.cluster_ips.insert(cluster_ip);
    // externalTrafficPolicy applies to every external destination: NodePorts,
    // LoadBalancer IPs and externalIPs.
    let etp_local = svc.etp_local;
    let itp_local = svc.itp_local;
    let affinity = svc.affinity;
    let selection = match svc.load_balancing.as_deref() {
        None | Some("random") => Selection::Random,
        Some("maglev") => Selection::Maglev,
        Some(other) => {
            m.warnings.push(format!(
                "Service {ns}/{name}: metadata.annotations[{LOAD_BALANCING_ANNOTATION}]: expected random or maglev, found {other:?}; using random"
            ));
            Selection::Random
        }
    };
    let external_ips = parse_ips(m, ns, name, "spec.externalIPs", &svc.external_ips);
    let lb_ips: Vec<Ipv4Addr> = if ty == "LoadBalancer" {
        parse_ips(m, ns, name, "status.loadBalancer.ingress[].ip", &svc.lb_ips)
    } else {
        Vec::new()
    };
    let source_ranges = parse_ranges(m, ns, name, &svc.source_ranges);
    let mut health_local = 0usize;

    for (i, port) in svc.ports.iter().enumerate() {
        let protocol = match &port.protocol {
            Ok(p) => *p,
            Err(text) => {
                m.warnings.push(format!(
                    "Service {ns}/{name}: spec.ports[{i}].protocol: expected TCP, UDP or SCTP, found {:?}; port skipped",
                    &**text
                ));
                continue;
            }
        };
        let Some(number) = u16::try_from(port.port).ok().filter(|p| *p != 0) else {
            m.warnings.push(format!(
                "Service {ns}/{name}: spec.ports[{i}].port: expected 1-65535, found {}; port skipped",
                port.port
            ));
            continue;
        };
        let sref = ServicePortRef {
            namespace: ns.to_string(),
            name: name.to_string(),
            port: port.name.to_string(),
            protocol,
        };
        let cands = candidates_of(slices.iter().copied(), &sref.port, protocol);
        let cluster = usable(&cands, false);
        let local = usable(&cands, true);
        health_local = health_local.max(local.len());
        for c in cands.iter().filter(|c| c.local) {
            if cluster.contains(&c.backend) || local.contains(&c.backend) {
                m.local_endpoint_ips.insert(c.backend.ip);
            }
        }
        let mut set_for = |scope: Scope, backends: &BTreeSet<Backend>| -> Action {
            if backends.is_empty() {
                return if cluster.is_empty() {
                    Action::Reject
                } else {
                    Action::Drop
                };
            }
            let id = set_id(&sref, scope);
            m.sets.entry(id).or_insert_with(|| BackendSet {
                id,
                service: sref.clone(),
                scope,
                backends: backends.iter().copied().collect(),
                selection,
                affinity,
            });
            Action::Balance(id)
        };
        let cluster_action = set_for(Scope::Cluster, &cluster);
        let internal_action = if itp_local {
            set_for(Scope::Local, &local)
        } else {
            cluster_action
        };
        let external_action = if etp_local {
            set_for(Scope::Local, &local)
        } else {
            cluster_action
        };
        let external = |kind, masquerade, source_ranges: Vec<Ipv4Net>| Frontend {
            kind,
            service: sref.clone(),
            action: external_action,
            internal: (etp_local && external_action != cluster_action).then_some(cluster_action),
            masquerade,
            source_ranges,
        };
        let ext_masq = if etp_local {
            Masquerade::Never
        } else {
            Masquerade::Always
        };
        let add = |m: &mut ProxyModel, ip: Ipv4Addr, port: u16, f: Frontend| {
            let key = FrontendKey { ip, protocol, port };
            if let Some(prev) = m.frontends.get(&key) {
                if prev.service != f.service {
                    m.warnings.push(format!(
                        "Service {}: {:?} {ip}:{port}/{} is already used by {}; skipped",
                        f.service,
                        f.kind,
                        protocol.as_str(),
                        prev.service
                    ));
                }
                return;
            }
            m.frontends.insert(key, f);
        };
        add(
            m,
            cluster_ip,
            number,
            Frontend {
                kind: FrontendKind::ClusterIp,
                service: sref.clone(),
                action: internal_action,
                internal: None,
                masquerade: Masquerade::OffCluster,
                source_ranges: Vec::new(),
            },
        );
        for ip in &external_ips {
            add(
                m,
                *ip,
                number,
                external(FrontendKind::ExternalIp, ext_masq, Vec::new()),
            );
        }
        for ip in &lb_ips {
            add(
                m,
                *ip,
                number,
                external(FrontendKind::LoadBalancer, ext_masq, source_ranges.clone()),
            );
        }
        if matches!(ty, "NodePort" | "LoadBalancer") {
            if let Some(np) = node_port(m, ns, name, i, port) {
                for ip in node_ips {
                    add(
                        m,
                        *ip,
                        np,
                        external(FrontendKind::NodePort, ext_masq, Vec::new()),
                    );
                }
            }
        }
    }
    if ty == "LoadBalancer" && etp_local {
        if let Some(port) = svc
            .health_check_node_port
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
        {
            m.health_checks.insert(
                port,
                HealthCheck {
                    port,
                    namespace: ns.to_string(),
                    name: name.to_string(),
                    local_endpoints: health_local,
                },
            );
        }
    }
}

/// The service's allocated ClusterIP, or `None` for headless services and services
/// whose requested ClusterIP the controller refused.
fn cluster_ip(m: &mut ProxyModel, svc: &ServiceInput, ns: &str, name: &str) -> Option<Ipv4Addr> {
    let text = svc.cluster_ip.as_deref()?;
    match text.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            m.warnings.push(format!(
                "Service {ns}/{name}: spec.clusterIP: expected an IPv4 address, found {text:?}; service skipped"
            ));
            None
        }
    }
}

fn node_port(m: &mut ProxyModel, ns: &str, name: &str, i: usize, port: &PortInput) -> Option<u16> {
    let np = port.node_port?;
    match u16::try_from(np).ok().filter(|p| *p != 0) {
        Some(p) => Some(p),
        None => {
            m.warnings.push(format!(
                "Service {ns}/{name}: spec.ports[{i}].nodePort: expected 1-65535, found {np}; skipped"
            ));
            None
        }
    }
}

fn parse_ips(
    m: &mut ProxyModel,
    ns: &str,
    name: &str,
    field: &str,
    texts: &[Box<str>],
) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        match t.parse() {
            Ok(ip) => out.push(ip),
            Err(_) => m.warnings.push(format!(
                "Service {ns}/{name}: {field}[{i}]: expected an IPv4 address, found {t:?}; skipped"
            )),
        }
    }
    out
}

fn parse_ranges(m: &mut ProxyModel, ns: &str, name: &str, texts: &[Box<str>]) -> Vec<Ipv4Net> {
    let mut out = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        match t.trim().parse::<Ipv4Net>() {
            Ok(n) => out.push(n.trunc()),
            Err(_) => m.warnings.push(format!(
                "Service {ns}/{name}: spec.loadBalancerSourceRanges[{i}]: expected an IPv4 CIDR, found {t:?}; skipped"
            )),
        }
    }
    out
}

/// FNV-1a 64 of the service port and scope.
pub fn set_id(s: &ServicePortRef, scope: Scope) -> SetId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let scope_tag: &[u8] = match scope {
        Scope::Cluster => b"c",
        Scope::Local => b"l",
    };
    for part in [
        s.namespace.as_bytes(),
        s.name.as_bytes(),
        s.port.as_bytes(),
        s.protocol.as_str().as_bytes(),
        scope_tag,
    ] {
        for b in part.iter().chain(std::iter::once(&0u8)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    SetId(h)
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
