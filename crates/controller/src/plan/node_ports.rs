//! NodePorts for NodePort and LoadBalancer services, and the healthCheckNodePort of
//! LoadBalancer services with `externalTrafficPolicy: Local`. One key per (protocol,
//! port): a TCP and a UDP port may share a number (kube gives the same number to the
//! TCP and UDP variants of one service port, and so does this planner).

use podnet_model::k8s_openapi::api::core::v1::ServiceSpec;
use rand::Rng;

use super::claimer::Claimer;
use super::conditions::{Problem, ALREADY_ALLOCATED, EXHAUSTED, INVALID, NODE_PORT_ALLOCATED};
use crate::alloc::{AllocKey, Protocol};

fn problem(reason: &'static str, message: String) -> Problem {
    Problem::new(NODE_PORT_ALLOCATED, reason, message)
}

/// Whether the service type exposes node ports.
pub fn wants_node_ports(spec: &ServiceSpec) -> bool {
    matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer"))
}

/// Whether the service needs a healthCheckNodePort.
pub fn wants_health_check(spec: &ServiceSpec) -> bool {
    spec.type_.as_deref() == Some("LoadBalancer")
        && matches!(
            spec.external_traffic_policy.as_deref(),
            Some("Local" | "OnlyLocal")
        )
}

pub(crate) fn plan(
    spec: &mut ServiceSpec,
    range: Option<(u16, u16)>,
    c: &mut Claimer<'_>,
    rng: &mut impl Rng,
    problems: &mut Vec<Problem>,
) {
    let wants = wants_node_ports(spec);
    let auto = spec.type_.as_deref() == Some("NodePort")
        || (wants && spec.allocate_load_balancer_node_ports != Some(false));
    let wants_hc = wants_health_check(spec);
    if !wants {
        for p in spec.ports.iter_mut().flatten() {
            p.node_port = None;
        }
    }
    if !wants_hc {
        spec.health_check_node_port = None;
    }
    if !wants && !wants_hc {
        return;
    }
    let Some((lo, hi)) = range else {
        problems.push(problem(
            INVALID,
            "expected a node port range first-last in the cluster config, found none".into(),
        ));
        return;
    };
    let mut explicit = |n: i32, proto: Protocol, c: &mut Claimer<'_>| -> bool {
        if n < lo as i32 || n > hi as i32 {
            problems.push(problem(
                INVALID,
                format!("expected a node port in {lo}-{hi}, found {n}"),
            ));
            return false;
        }
        match c.claim(AllocKey::NodePort(proto, n as u16)) {
            Ok(()) => true,
            Err(Some(holder)) => {
                problems.push(problem(
                    ALREADY_ALLOCATED,
                    format!("node port {n}/{proto} is already allocated to {holder}"),
                ));
                false
            }
            Err(None) => false,
        }
    };
    let ports = spec.ports.get_or_insert_with(Vec::new);
    if wants {
        // Explicit ones first, so that automatic ones never take them.
        for p in ports.iter() {
            if let (Some(n), Some(proto)) = (p.node_port, Protocol::parse(p.protocol.as_deref())) {
                explicit(n, proto, c);
            }
        }
    }
    if let Some(n) = spec.health_check_node_port.filter(|_| wants_hc) {
        explicit(n, Protocol::Tcp, c);
    }
    let mut exhausted = Vec::new();
    if auto {
        for i in 0..ports.len() {
            if ports[i].node_port.is_some() {
                continue;
            }
            let Some(proto) = Protocol::parse(ports[i].protocol.as_deref()) else {
                continue;
            };
            // The same number as the same port of another protocol, when free.
            let sibling = ports
                .iter()
                .filter(|q| q.port == ports[i].port && q.protocol != ports[i].protocol)
                .find_map(|q| q.node_port)
                .map(|n| AllocKey::NodePort(proto, n as u16))
                .filter(|k| c.is_free(k) || c.held_unused(k));
            match sibling.or_else(|| pick(proto, lo, hi, c, rng)) {
                Some(k @ AllocKey::NodePort(_, n)) if c.claim(k).is_ok() => {
                    ports[i].node_port = Some(n as i32)
                }
                Some(_) => {}
                None => exhausted.push(proto),
            }
        }
    }
    if wants_hc && spec.health_check_node_port.is_none() {
        match pick(Protocol::Tcp, lo, hi, c, rng) {
            Some(k @ AllocKey::NodePort(_, n)) if c.claim(k).is_ok() => {
                spec.health_check_node_port = Some(n as i32)
            }
            Some(_) => {}
            None => exhausted.push(Protocol::Tcp),
        }
    }
    exhausted.dedup();
    for proto in exhausted {
        problems.push(problem(
            EXHAUSTED,
            format!("expected a free {proto} node port in {lo}-{hi}, found none left"),
        ));
    }
}

/// A port this owner already holds (kept across re-applies), else a random free one.
fn pick(
    proto: Protocol,
    lo: u16,
    hi: u16,
    c: &Claimer<'_>,
    rng: &mut impl Rng,
) -> Option<AllocKey> {
    let in_range = |k: &AllocKey| matches!(k, AllocKey::NodePort(p, n) if *p == proto && (lo..=hi).contains(n));
    if let Some(k) = c.owned(in_range).into_iter().find(|k| c.held_unused(k)) {
        return Some(k);
    }
    let n = (hi - lo) as u32 + 1;
    let start = rng.random_range(0..n);
    (0..n)
        .map(|i| lo + ((start + i) % n) as u16)
        .map(|port| AllocKey::NodePort(proto, port))
        .find(|k| c.is_free(k))
}
