//! The scheduler: a pod without `spec.nodeName` goes to the schedulable node (not
//! `spec.unschedulable`, Ready condition not "False"; no conditions counts as ready)
//! whose labels satisfy the pod's `nodeSelector` and that runs the fewest pods, ties
//! broken by node name.

use std::collections::{BTreeMap, HashMap};

use podnet_model::k8s_openapi::api::core::v1::{Node, Pod, PodCondition};
use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Scheduler names this controller serves (besides none).
pub const SCHEDULER_NAMES: [&str; 2] = ["default-scheduler", "podnet"];

/// A node as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub pods: usize,
}

/// Whether new pods may go to `node`.
pub fn schedulable(node: &Node) -> bool {
    let unschedulable = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let not_ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "False"));
    !unschedulable && !not_ready
}

/// Whether this controller should place `pod` at all.
pub fn wants_scheduling(pod: &Pod) -> bool {
    let Some(spec) = &pod.spec else { return false };
    spec.node_name.as_deref().unwrap_or_default().is_empty()
        && pod.metadata.deletion_timestamp.is_none()
        && spec
            .scheduler_name
            .as_deref()
            .is_none_or(|n| SCHEDULER_NAMES.contains(&n))
        && spec.scheduling_gates.as_ref().is_none_or(|g| g.is_empty())
        && !matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
}

/// The node for one pod, among `candidates` (schedulable nodes).
pub fn pick<'a>(pod: &Pod, candidates: &'a [Candidate]) -> Option<&'a Candidate> {
    let empty = BTreeMap::new();
    let selector = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_selector.as_ref())
        .unwrap_or(&empty);
    candidates
        .iter()
        .filter(|c| selector.iter().all(|(k, v)| c.labels.get(k) == Some(v)))
        .min_by(|a, b| a.pods.cmp(&b.pods).then_with(|| a.name.cmp(&b.name)))
}

/// Places `pods` one after another, counting each placement; returns the bound pods
/// (nodeName and the PodScheduled condition set) and the ones that fit nowhere.
pub fn schedule<'p>(
    pods: impl IntoIterator<Item = &'p Pod>,
    mut candidates: Vec<Candidate>,
    now: &Time,
) -> (Vec<Pod>, Vec<&'p Pod>) {
    let mut bound = Vec::new();
    let mut unplaced = Vec::new();
    let index: HashMap<String, usize> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), i))
        .collect();
    for pod in pods {
        if !wants_scheduling(pod) {
            continue;
        }
        let Some(node) = pick(pod, &candidates).map(|c| c.name.clone()) else {
            unplaced.push(pod);
            continue;
        };
        candidates[index[&node]].pods += 1;
        bound.push(bind(pod, &node, now));
    }
    (bound, unplaced)
}

/// `pod` bound to `node`.
pub fn bind(pod: &Pod, node: &str, now: &Time) -> Pod {
    let mut p = pod.clone();
    p.spec.get_or_insert_with(Default::default).node_name = Some(node.to_string());
    let status = p.status.get_or_insert_with(Default::default);
    let conds = status.conditions.get_or_insert_with(Vec::new);
    conds.retain(|c| c.type_ != "PodScheduled");
    conds.push(PodCondition {
        type_: "PodScheduled".into(),
        status: "True".into(),
        last_transition_time: Some(now.clone()),
        ..Default::default()
    });
    if status.phase.is_none() {
        status.phase = Some("Pending".into());
    }
    p
}

/// The candidates among `nodes`, with their pod counts.
pub fn candidates<'n>(
    nodes: impl IntoIterator<Item = &'n Node>,
    pods_on: impl Fn(&str) -> usize,
) -> Vec<Candidate> {
    nodes
        .into_iter()
        .filter(|n| schedulable(n))
        .map(|n| {
            let name = n.metadata.name.clone().unwrap_or_default();
            Candidate {
                pods: pods_on(&name),
                labels: n.metadata.labels.clone().unwrap_or_default(),
                name,
            }
        })
        .collect()
}
