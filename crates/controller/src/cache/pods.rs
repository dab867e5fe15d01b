//! Pods as the controller needs them: a slim record per pod, an index by
//! (namespace, label, value) for selector matching, pods per node for the scheduler,
//! and the full object only for pods still waiting for a node.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use std::net::Ipv4Addr;

use podnet_model::k8s_openapi::api::core::v1::Pod;
use podnet_store::Revision;

use crate::alloc::Protocol;
use crate::small::SmallSet;

/// (namespace, name).
pub type PodKey = (String, String);

/// What the EndpointSlice controller and the scheduler need of a pod.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SlimPod {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    /// Sorted by key (a Vec: a one-label BTreeMap costs half a kilobyte).
    pub labels: Vec<(String, String)>,
    pub ip: Option<Ipv4Addr>,
    /// Ready condition True.
    pub ready: bool,
    /// deletionTimestamp set.
    pub terminating: bool,
    /// Phase Succeeded or Failed.
    pub finished: bool,
    pub node_name: Option<String>,
    /// spec.hostname, kept only when spec.subdomain is set.
    pub hostname: Option<String>,
    pub subdomain: Option<String>,
    /// Named container ports: (name, protocol, number).
    pub named_ports: Vec<(String, Protocol, i32)>,
    pub rev: Revision,
    /// The whole pod while it has no node (the scheduler writes it back).
    pub unscheduled: Option<Box<Pod>>,
}

impl SlimPod {
    pub fn from_pod(pod: &Pod) -> SlimPod {
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        let node_name = spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        let phase = status.and_then(|s| s.phase.as_deref());
        let finished = matches!(phase, Some("Succeeded" | "Failed"));
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let named_ports = spec
            .into_iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.ports.iter().flatten())
            .filter_map(|p| {
                let name = p.name.clone().filter(|n| !n.is_empty())?;
                Some((
                    name,
                    Protocol::parse(p.protocol.as_deref())?,
                    p.container_port,
                ))
            })
            .collect();
        let subdomain = spec.and_then(|s| s.subdomain.clone());
        SlimPod {
            namespace: pod
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone(),
            labels: pod
                .metadata
                .labels
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ip: status
                .and_then(|s| s.pod_ip.as_deref())
                .and_then(|ip| ip.parse().ok()),
            ready: status
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
            terminating,
            finished,
            hostname: subdomain
                .as_ref()
                .and(spec.and_then(|s| s.hostname.clone())),
            subdomain,
            unscheduled: (node_name.is_none() && !finished && !terminating)
                .then(|| Box::new(pod.clone())),
            node_name,
            named_ports,
            rev: super::rev_of(&pod.metadata),
        }
    }

    /// Same content apart from the revision and the pending full object.
    pub fn same_content(&self, other: &SlimPod) -> bool {
        let strip = |p: &SlimPod| SlimPod {
            rev: 0,
            ..p.clone_slim()
        };
        strip(self) == strip(other)
    }

    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.labels[i].1.as_str())
    }

    /// A copy without the pending full object.
    pub fn clone_slim(&self) -> SlimPod {
        SlimPod {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            labels: self.labels.clone(),
            ip: self.ip,
            ready: self.ready,
            terminating: self.terminating,
            finished: self.finished,
            node_name: self.node_name.clone(),
            hostname: self.hostname.clone(),
            subdomain: self.subdomain.clone(),
            named_ports: self.named_ports.clone(),
            rev: self.rev,
            unscheduled: None,
        }
    }

    /// Counts on its node for the scheduler.
    fn occupies_node(&self) -> Option<&str> {
        (!self.finished)
            .then_some(self.node_name.as_deref())
            .flatten()
    }

    pub fn key(&self) -> PodKey {
        (self.namespace.clone(), self.name.clone())
    }
}

type LabelKey = (String, String, String);

/// What [`Pods::upsert`] did.
#[derive(Debug)]
pub enum Upsert {
    /// Older than the pod known; ignored.
    Stale,
    /// Stored, replacing this one.
    Stored(Option<SlimPod>),
}

#[derive(Debug, Default)]
pub struct Pods {
    pods: HashMap<PodKey, SlimPod>,
    by_label: HashMap<LabelKey, SmallSet<String>>,
    per_node: HashMap<String, usize>,
    unscheduled: BTreeSet<PodKey>,
}

impl Pods {
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    pub fn clear(&mut self) {
        *self = Pods::default();
    }

    pub fn get(&self, key: &PodKey) -> Option<&SlimPod> {
        self.pods.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &SlimPod> {
        self.pods.values()
    }

    /// Stores a pod; returns the one it replaced. Older revisions are ignored.
    pub fn upsert(&mut self, pod: SlimPod) -> Upsert {
        let key = pod.key();
        if let Some(old) = self.pods.get(&key) {
            if old.rev != 0 && pod.rev != 0 && pod.rev < old.rev {
                return Upsert::Stale;
            }
        }
        let old = self.remove(&key);
        for (k, v) in &pod.labels {
            self.by_label
                .entry((pod.namespace.clone(), k.clone(), v.clone()))
                .or_default()
                .insert(pod.name.clone());
        }
        if let Some(n) = pod.occupies_node() {
            *self.per_node.entry(n.to_string()).or_default() += 1;
        }
        if pod.unscheduled.is_some() {
            self.unscheduled.insert(key.clone());
        }
        self.pods.insert(key, pod);
        Upsert::Stored(old)
    }

    pub fn remove(&mut self, key: &PodKey) -> Option<SlimPod> {
        let old = self.pods.remove(key)?;
        for (k, v) in &old.labels {
            let lk = (old.namespace.clone(), k.clone(), v.clone());
            if let Some(set) = self.by_label.get_mut(&lk) {
                set.remove(&old.name);
                if set.is_empty() {
                    self.by_label.remove(&lk);
                }
            }
        }
        if let Some(n) = old.occupies_node() {
            if let Some(c) = self.per_node.get_mut(n) {
                *c -= 1;
                if *c == 0 {
                    self.per_node.remove(n);
                }
            }
        }
        self.unscheduled.remove(key);
        Some(old)
    }

    /// Pods of `namespace` whose labels match every pair of `selector` (non-empty).
    pub fn matching<'a>(
        &'a self,
        namespace: &str,
        selector: &'a BTreeMap<String, String>,
    ) -> Vec<&'a SlimPod> {
        let smallest = selector
            .iter()
            .map(|(k, v)| {
                self.by_label
                    .get(&(namespace.to_string(), k.clone(), v.clone()))
            })
            .min_by_key(|s| s.map_or(0, |s| s.len()));
        let Some(Some(names)) = smallest else {
            return Vec::new();
        };
        let mut out: Vec<&SlimPod> = names
            .iter()
            .filter_map(|n| self.pods.get(&(namespace.to_string(), n.clone())))
            .filter(|p| selector.iter().all(|(k, v)| p.label(k) == Some(v.as_str())))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Pods bound to `node` that still run.
    pub fn on_node(&self, node: &str) -> usize {
        self.per_node.get(node).copied().unwrap_or(0)
    }

    /// Pods waiting for a node.
    pub fn unscheduled(&self) -> impl Iterator<Item = &PodKey> {
        self.unscheduled.iter()
    }
}
