//! ClusterIP: explicit addresses are honoured when free, `kube-system/kube-dns` gets the
//! DNS address and `default/kubernetes` the first one, everyone else a random free
//! address (network, first, tenth and broadcast addresses are never handed out at
//! random). Headless and ExternalName services get none.

use std::net::IpAddr;

use podnet_model::k8s_openapi::api::core::v1::ServiceSpec;
use podnet_model::ClusterConfigSpec;
use rand::Rng;

use super::claimer::Claimer;
use super::conditions::{Problem, ALREADY_ALLOCATED, CLUSTER_IP_ALLOCATED, EXHAUSTED, INVALID};
use crate::alloc::ranges::{nth, offset_of, size};
use crate::alloc::AllocKey;

fn problem(reason: &'static str, message: String) -> Problem {
    Problem::new(CLUSTER_IP_ALLOCATED, reason, message)
}

fn set_families(spec: &mut ServiceSpec, ip: Option<IpAddr>, cfg: &ClusterConfigSpec) {
    if spec.ip_families.is_none() {
        let v6 = ip.map_or(!cfg.service_cidr.network().is_ipv4(), |ip| ip.is_ipv6());
        spec.ip_families = Some(vec![if v6 { "IPv6" } else { "IPv4" }.to_string()]);
    }
    if spec.ip_family_policy.is_none() {
        spec.ip_family_policy = Some("SingleStack".to_string());
    }
}

fn assign(spec: &mut ServiceSpec, ip: IpAddr, cfg: &ClusterConfigSpec) {
    spec.cluster_ip = Some(ip.to_string());
    spec.cluster_ips = Some(vec![ip.to_string()]);
    set_families(spec, Some(ip), cfg);
}

/// The address a well-known service must get.
pub fn fixed_address(namespace: &str, name: &str, cfg: &ClusterConfigSpec) -> Option<IpAddr> {
    match (namespace, name) {
        ("kube-system", "kube-dns") => Some(cfg.dns_service_ip()),
        ("default", "kubernetes") => Some(nth(cfg.service_cidr, 1)),
        _ => None,
    }
}

pub(crate) fn plan(
    spec: &mut ServiceSpec,
    cfg: &ClusterConfigSpec,
    c: &mut Claimer<'_>,
    rng: &mut impl Rng,
    problems: &mut Vec<Problem>,
) {
    let cidr = cfg.service_cidr;
    if spec.type_.as_deref() == Some("ExternalName") {
        spec.cluster_ip = None;
        spec.cluster_ips = None;
        spec.ip_families = None;
        spec.ip_family_policy = None;
        return;
    }
    let requested = spec.cluster_ip.clone().filter(|s| !s.is_empty());
    match requested.as_deref() {
        Some("None") => {
            spec.cluster_ips = Some(vec!["None".to_string()]);
            set_families(spec, None, cfg);
        }
        Some(s) => match s.parse::<IpAddr>() {
            Ok(ip) if cidr.contains(&ip) => match c.claim(AllocKey::ServiceIp(ip)) {
                Ok(()) => assign(spec, ip, cfg),
                Err(Some(holder)) => problems.push(problem(
                    ALREADY_ALLOCATED,
                    format!("cluster IP {ip} is already allocated to {holder}"),
                )),
                Err(None) => {}
            },
            _ => problems.push(problem(
                INVALID,
                format!("expected a cluster IP inside {cidr} or \"None\", found {s:?}"),
            )),
        },
        None => {
            let ns = c.owner.namespace.clone().unwrap_or_default();
            let name = c.owner.name.clone();
            if let Some(ip) = fixed_address(&ns, &name, cfg) {
                match c.claim(AllocKey::ServiceIp(ip)) {
                    Ok(()) => assign(spec, ip, cfg),
                    Err(Some(holder)) => problems.push(problem(
                        ALREADY_ALLOCATED,
                        format!(
                            "cluster IP {ip}, reserved for Service {ns}/{name}, is already allocated to {holder}"
                        ),
                    )),
                    Err(None) => {}
                }
                return;
            }
            // After a re-apply that dropped the field, keep what this service holds.
            let held = c.owned(|k| matches!(k, AllocKey::ServiceIp(ip) if cidr.contains(ip)));
            if let Some(k) = held.into_iter().find(|k| c.held_unused(k)) {
                if let AllocKey::ServiceIp(ip) = k {
                    if c.claim(k).is_ok() {
                        assign(spec, ip, cfg);
                        return;
                    }
                }
            }
            match random_free(cfg, c, rng) {
                Some(ip) => {
                    if c.claim(AllocKey::ServiceIp(ip)).is_ok() {
                        assign(spec, ip, cfg);
                    }
                }
                None => problems.push(problem(
                    EXHAUSTED,
                    format!("expected a free cluster IP in {cidr}, found none left"),
                )),
            }
        }
    }
}

/// A random free address, probing upwards from a random offset.
fn random_free(cfg: &ClusterConfigSpec, c: &Claimer<'_>, rng: &mut impl Rng) -> Option<IpAddr> {
    let cidr = cfg.service_cidr;
    let n = size(cidr);
    if n < 4 {
        return None;
    }
    let dns = offset_of(cidr, cfg.dns_service_ip());
    let reserved = |off: u128| off <= 1 || Some(off) == dns || off == 10 || off == n - 1;
    let start = rng.random_range(0..n);
    (0..n)
        .map(|i| (start + i) % n)
        .filter(|off| !reserved(*off))
        .map(|off| nth(cidr, off))
        .find(|ip| c.is_free(&AllocKey::ServiceIp(*ip)))
}
