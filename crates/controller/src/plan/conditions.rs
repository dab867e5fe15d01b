//! The conditions the controller writes when it cannot give an object what it asks
//! for. Only failures are recorded (status "False"); a condition disappears once the
//! allocation succeeds. An unchanged failure keeps its lastTransitionTime, so that
//! planning twice writes nothing new.

use podnet_model::k8s_openapi::api::core::v1::{NodeCondition, Service};
use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub use podnet_model::service::CLUSTER_IP_ALLOCATED;
pub const NODE_PORT_ALLOCATED: &str = "podnet.io/NodePortAllocated";
pub const LOAD_BALANCER_IP_ALLOCATED: &str = "podnet.io/LoadBalancerIPAllocated";
pub const POD_CIDR_ALLOCATED: &str = "podnet.io/PodCIDRAllocated";

/// Every condition type this controller owns on Services.
pub const SERVICE_CONDITIONS: [&str; 3] = [
    CLUSTER_IP_ALLOCATED,
    NODE_PORT_ALLOCATED,
    LOAD_BALANCER_IP_ALLOCATED,
];

/// Reasons.
pub const ALREADY_ALLOCATED: &str = "AlreadyAllocated";
pub const INVALID: &str = "Invalid";
pub const EXHAUSTED: &str = "Exhausted";
pub const UNKNOWN_POOL: &str = "UnknownPool";

/// Why an object did not get something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub type_: &'static str,
    pub reason: &'static str,
    pub message: String,
}

impl Problem {
    pub fn new(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Problem {
            type_,
            reason,
            message: message.into(),
        }
    }
}

/// Joins problems of one type into one (several ports may fail at once).
fn merged<'a>(problems: &'a [Problem], type_: &str) -> Option<(&'a str, String)> {
    let mut of_type = problems.iter().filter(|p| p.type_ == type_);
    let first = of_type.next()?;
    let mut message = first.message.clone();
    for p in of_type {
        message.push_str("; ");
        message.push_str(&p.message);
    }
    Some((first.reason, message))
}

/// Makes the Service's controller-owned conditions say exactly `problems`.
pub fn set_service_conditions(svc: &mut Service, problems: &[Problem], now: &Time) {
    let had_status = svc.status.is_some();
    let status = svc.status.get_or_insert_with(Default::default);
    let mut conds = status.conditions.take().unwrap_or_default();
    for type_ in SERVICE_CONDITIONS {
        let old = conds.iter().position(|c| c.type_ == type_);
        match (merged(problems, type_), old) {
            (None, Some(i)) => {
                conds.remove(i);
            }
            (None, None) => {}
            (Some((reason, message)), old) => {
                let keep_time = old
                    .map(|i| &conds[i])
                    .filter(|c| c.status == "False")
                    .map(|c| c.last_transition_time.clone());
                let c = Condition {
                    type_: type_.to_string(),
                    status: "False".to_string(),
                    reason: reason.to_string(),
                    message,
                    last_transition_time: keep_time.unwrap_or_else(|| now.clone()),
                    observed_generation: svc.metadata.generation,
                };
                match old {
                    Some(i) => conds[i] = c,
                    None => conds.push(c),
                }
            }
        }
    }
    status.conditions = (!conds.is_empty()).then_some(conds);
    if !had_status && status.conditions.is_none() && status.load_balancer.is_none() {
        svc.status = None;
    }
}

/// Makes the Node's pod CIDR condition say `problem` (or removes it).
pub fn set_node_condition(
    conds: &mut Option<Vec<NodeCondition>>,
    problem: Option<&Problem>,
    now: &Time,
) {
    let mut list = conds.take().unwrap_or_default();
    let old = list.iter().position(|c| c.type_ == POD_CIDR_ALLOCATED);
    match (problem, old) {
        (None, Some(i)) => {
            list.remove(i);
        }
        (None, None) => {}
        (Some(p), old) => {
            let keep_time = old
                .map(|i| &list[i])
                .filter(|c| c.status == "False")
                .and_then(|c| c.last_transition_time.clone());
            let c = NodeCondition {
                type_: POD_CIDR_ALLOCATED.to_string(),
                status: "False".to_string(),
                reason: Some(p.reason.to_string()),
                message: Some(p.message.clone()),
                last_transition_time: Some(keep_time.unwrap_or_else(|| now.clone())),
                last_heartbeat_time: None,
            };
            match old {
                Some(i) => list[i] = c,
                None => list.push(c),
            }
        }
    }
    *conds = (!list.is_empty()).then_some(list);
}

/// Whether the Service carries a failure condition of this controller (it waits for
/// something to be freed).
pub fn service_blocked(svc: &Service) -> bool {
    svc.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| SERVICE_CONDITIONS.contains(&c.type_.as_str()) && c.status == "False")
        })
}
