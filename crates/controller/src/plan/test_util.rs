//! Helpers for planner tests: objects from JSON, and committing a plan to the view.

use podnet_model::k8s_openapi::api::core::v1::{Node, Pod, Service};
use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use podnet_model::k8s_openapi::jiff::Timestamp;
use podnet_model::ClusterConfigSpec;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::service::{AllocPlan, Planned};
use crate::alloc::{Allocation, Allocations};

pub fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

pub fn time() -> Time {
    Time(Timestamp::from_second(1_700_000_000).unwrap())
}

pub fn cfg() -> ClusterConfigSpec {
    ClusterConfigSpec::default()
}

pub fn service(v: serde_json::Value) -> Service {
    let mut v = v;
    v["apiVersion"] = "v1".into();
    v["kind"] = "Service".into();
    serde_json::from_value(v).unwrap()
}

pub fn pod(v: serde_json::Value) -> Pod {
    let mut v = v;
    v["apiVersion"] = "v1".into();
    v["kind"] = "Pod".into();
    serde_json::from_value(v).unwrap()
}

pub fn node(v: serde_json::Value) -> Node {
    let mut v = v;
    v["apiVersion"] = "v1".into();
    v["kind"] = "Node".into();
    serde_json::from_value(v).unwrap()
}

/// Unwraps a plan and records it as committed at `rev`; returns the object to use next.
pub fn commit<T: Clone>(
    planned: Planned<T>,
    old: &T,
    allocs: &mut Allocations,
    rev: i64,
) -> (T, AllocPlan<T>) {
    let Planned::Plan(plan) = planned else {
        panic!("expected a plan, found busy")
    };
    for k in &plan.claims {
        allocs.insert(
            *k,
            Allocation {
                owner: plan.owner.clone(),
                rev,
            },
        );
    }
    for (k, _) in &plan.releases {
        allocs.remove(*k);
    }
    allocs.end_batch();
    (plan.object.clone().unwrap_or_else(|| old.clone()), plan)
}
