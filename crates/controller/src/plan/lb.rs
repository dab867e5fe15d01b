//! LoadBalancer ingress addresses from the cluster's address pools, as MetalLB's
//! controller does: the annotation `podnet.io/address-pool` picks a pool, otherwise
//! the auto-assign pools are tried in order; `spec.loadBalancerIP` is honoured when it
//! is inside a candidate pool and free; otherwise the lowest free address is taken.

use std::net::IpAddr;

use podnet_model::k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, Service};

use super::claimer::Claimer;
use super::conditions::{
    Problem, ALREADY_ALLOCATED, EXHAUSTED, INVALID, LOAD_BALANCER_IP_ALLOCATED, UNKNOWN_POOL,
};
use crate::alloc::ranges::Pool;
use crate::alloc::AllocKey;

/// Annotation naming the pool a service's address comes from.
pub const POOL_ANNOTATION: &str = "podnet.io/address-pool";
/// `spec.loadBalancerClass` this controller serves (besides none).
pub const LOAD_BALANCER_CLASS: &str = "podnet.io/lb";

fn problem(reason: &'static str, message: String) -> Problem {
    Problem::new(LOAD_BALANCER_IP_ALLOCATED, reason, message)
}

/// The ingress addresses in a service's status.
pub fn ingress_ips(svc: &Service) -> impl Iterator<Item = IpAddr> + '_ {
    svc.status
        .iter()
        .flat_map(|s| s.load_balancer.iter())
        .flat_map(|lb| lb.ingress.iter().flatten())
        .filter_map(|i| i.ip.as_deref()?.parse().ok())
}

fn set_ingress(svc: &mut Service, ip: Option<IpAddr>) {
    let lb = ip.map(|ip| LoadBalancerStatus {
        ingress: Some(vec![LoadBalancerIngress {
            ip: Some(ip.to_string()),
            ip_mode: Some("VIP".to_string()),
            ..Default::default()
        }]),
    });
    match (&mut svc.status, lb) {
        (Some(st), lb) => st.load_balancer = lb,
        (None, Some(lb)) => {
            svc.status = Some(podnet_model::k8s_openapi::api::core::v1::ServiceStatus {
                load_balancer: Some(lb),
                conditions: None,
            })
        }
        (None, None) => {}
    }
}

pub(crate) fn plan(
    svc: &mut Service,
    pools: &[Pool],
    c: &mut Claimer<'_>,
    problems: &mut Vec<Problem>,
) {
    let spec = svc.spec.clone().unwrap_or_default();
    if spec.type_.as_deref() != Some("LoadBalancer") {
        if ingress_ips(svc).next().is_some() {
            set_ingress(svc, None);
        }
        return;
    }
    if spec
        .load_balancer_class
        .as_deref()
        .is_some_and(|cl| cl != LOAD_BALANCER_CLASS)
    {
        return; // another implementation's
    }
    let wanted_pool = svc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POOL_ANNOTATION))
        .cloned();
    let candidates: Vec<&Pool> = match &wanted_pool {
        Some(name) => pools.iter().filter(|p| &p.name == name).collect(),
        None => pools.iter().filter(|p| p.auto_assign).collect(),
    };
    let names = || {
        pools
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if candidates.is_empty() {
        let msg = match &wanted_pool {
            Some(name) => format!("expected one of the pools [{}], found {name:?}", names()),
            None => "expected an auto-assign load-balancer pool, found none".to_string(),
        };
        problems.push(problem(UNKNOWN_POOL, msg));
        set_ingress(svc, None);
        return;
    }
    let in_pool = |ip: &IpAddr| candidates.iter().any(|p| p.contains(*ip));
    let requested = spec.load_balancer_ip.filter(|s| !s.is_empty());
    let chosen = if let Some(s) = requested {
        match s.parse::<IpAddr>() {
            Ok(ip) if in_pool(&ip) => match c.claim(AllocKey::LbIp(ip)) {
                Ok(()) => Some(ip),
                Err(Some(holder)) => {
                    problems.push(problem(
                        ALREADY_ALLOCATED,
                        format!("load-balancer IP {ip} is already allocated to {holder}"),
                    ));
                    None
                }
                Err(None) => None,
            },
            _ => {
                problems.push(problem(
                    INVALID,
                    format!(
                        "expected a load-balancer IP inside pool(s) [{}], found {s:?}",
                        candidates
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
                None
            }
        }
    } else {
        let current: Vec<IpAddr> = ingress_ips(svc).collect();
        let held = current
            .into_iter()
            .map(AllocKey::LbIp)
            .chain(c.owned(|k| matches!(k, AllocKey::LbIp(_))))
            .find(|k| matches!(k, AllocKey::LbIp(ip) if in_pool(ip)) && c.held_unused(k));
        let fresh = || {
            candidates
                .iter()
                .flat_map(|p| p.addresses())
                .map(AllocKey::LbIp)
                .find(|k| c.is_free(k))
        };
        match held.or_else(fresh) {
            Some(k @ AllocKey::LbIp(ip)) => c.claim(k).is_ok().then_some(ip),
            Some(_) => None,
            None => {
                problems.push(problem(
                    EXHAUSTED,
                    format!(
                        "expected a free address in pool(s) [{}], found none left",
                        candidates
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
                None
            }
        }
    };
    if !c.busy {
        set_ingress(svc, chosen);
    }
}
