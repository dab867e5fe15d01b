//! The allocation plan of one Service: what its object must say, which allocation keys
//! to create and which to release, computed from the cache without any I/O.

use podnet_model::k8s_openapi::api::core::v1::Service;
use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use podnet_model::{ClusterConfigSpec, Kind};
use podnet_store::Revision;
use rand::Rng;

use super::claimer::Claimer;
use super::conditions::{set_service_conditions, Problem};
use super::{cluster_ip, lb, node_ports};
use crate::alloc::ranges::Pool;
use crate::alloc::{AllocKey, Allocations, Owner};

/// What the planners need besides the object.
pub struct Ctx<'a> {
    pub cfg: &'a ClusterConfigSpec,
    pub pools: &'a [Pool],
    pub now: Time,
}

/// The allocation plan of one object.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocPlan<T> {
    pub owner: Owner,
    /// The object to write (CAS on the revision it was read at), when it changed.
    pub object: Option<T>,
    /// Allocation keys to create (they must not exist).
    pub claims: Vec<AllocKey>,
    /// Allocation keys to delete, with the revision they were seen at.
    pub releases: Vec<(AllocKey, Revision)>,
    pub problems: Vec<Problem>,
}

impl<T> AllocPlan<T> {
    pub fn is_noop(&self) -> bool {
        self.object.is_none() && self.claims.is_empty() && self.releases.is_empty()
    }
}

/// A plan, or "wait": another object of the same batch reserved what this one needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned<T> {
    Plan(AllocPlan<T>),
    Busy,
}

pub type ServicePlan = AllocPlan<Service>;

/// A fresh uid (random, version 4 layout).
pub fn new_uid(rng: &mut impl Rng) -> String {
    uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string()
}

/// The uid an object without one gets: the one its allocations were made for (it was
/// re-applied without it), else a fresh one.
pub(crate) fn uid_for(
    kind: Kind,
    namespace: Option<&str>,
    name: &str,
    current: Option<&String>,
    allocs: &Allocations,
    rng: &mut impl Rng,
) -> String {
    if let Some(uid) = current.filter(|u| !u.is_empty()) {
        return uid.clone();
    }
    allocs
        .owned_by(kind.name(), namespace, name)
        .map(|(_, a)| a.owner.uid.clone())
        .find(|u| !u.is_empty())
        .unwrap_or_else(|| new_uid(rng))
}

/// Plans ClusterIP, NodePorts, healthCheckNodePort and LoadBalancer address of `svc`.
pub fn plan_service(
    svc: &Service,
    ctx: &Ctx<'_>,
    allocs: &mut Allocations,
    rng: &mut impl Rng,
) -> Planned<Service> {
    let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
    let name = svc.metadata.name.as_deref().unwrap_or_default();
    let mut new = svc.clone();
    let uid = uid_for(
        Kind::Service,
        Some(ns),
        name,
        svc.metadata.uid.as_ref(),
        allocs,
        rng,
    );
    new.metadata.uid = Some(uid.clone());
    let owner = Owner::new(Kind::Service, Some(ns), name, &uid);
    let mut problems = Vec::new();
    let mut c = Claimer::new(allocs, owner.clone());
    let mut spec = new.spec.take().unwrap_or_default();
    cluster_ip::plan(&mut spec, ctx.cfg, &mut c, rng, &mut problems);
    node_ports::plan(&mut spec, ctx.cfg.node_ports(), &mut c, rng, &mut problems);
    new.spec = Some(spec);
    lb::plan(&mut new, ctx.pools, &mut c, &mut problems);
    if c.busy {
        c.rollback();
        return Planned::Busy;
    }
    set_service_conditions(&mut new, &problems, &ctx.now);
    if svc.status.is_none()
        && new
            .status
            .as_ref()
            .is_some_and(|s| s.conditions.is_none() && s.load_balancer.is_none())
    {
        new.status = None;
    }
    let object = (new != *svc).then_some(new);
    Planned::Plan(c.finish(owner, object, problems, |k| {
        !matches!(k, AllocKey::PodCidr(_))
    }))
}
