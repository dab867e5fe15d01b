//! The controller's in-memory view of the store, fed by informers and by its own
//! committed writes, and the work queue of dirty keys those changes produce.
//! Services and Nodes are kept whole (the controller writes them back); Pods and
//! EndpointSlices slim.

pub mod dirty;
mod events;
pub mod lite;
pub mod pods;
pub mod services;
pub mod slices;

use std::collections::{BTreeMap, HashMap, HashSet};

use podnet_model::k8s_openapi::api::core::v1::{Node, Service};
use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use podnet_model::{ClusterConfigSpec, Kind};
use podnet_store::Revision;

use crate::alloc::ranges::{parse_pools, Pool};
use crate::alloc::{AllocKey, Allocation, Allocations};
use crate::small::SmallSet;
pub use dirty::Dirty;
use pods::{Pods, SlimPod};
pub use services::CachedService;
pub use slices::SliceInfo;
use slices::Slices;
pub use slices::SvcKey;

/// The revision an object was read at (its resourceVersion), 0 when unknown.
pub fn rev_of(meta: &ObjectMeta) -> Revision {
    meta.resource_version
        .as_deref()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// A change to the allocation keys.
#[derive(Debug, Clone)]
pub enum AllocEvent {
    Restarted(Vec<(AllocKey, Allocation)>),
    Put(AllocKey, Allocation),
    /// The key and the revision of the deletion.
    Deleted(AllocKey, Revision),
}

/// A change to the pods, already slim.
#[derive(Debug, Clone)]
pub enum PodEvent {
    Restarted(Vec<SlimPod>),
    Applied(SlimPod),
    /// The pod and the revision of its last stored version, when known.
    Deleted(pods::PodKey, Option<Revision>),
}

/// A change to the Services, already compact.
#[derive(Debug, Clone)]
pub enum ServiceEvent {
    Restarted(Vec<(SvcKey, CachedService)>),
    Applied(SvcKey, CachedService),
    /// The service and the revision of its last stored version, when known.
    Deleted(SvcKey, Option<Revision>),
}

/// (namespace, name, and for a managed slice its service and state).
pub type SlimSlice = (String, String, Option<(SvcKey, SliceInfo)>);

/// A change to the EndpointSlices, already slim: (namespace, name, managed info).
#[derive(Debug, Clone)]
pub enum SliceEvent {
    Restarted(Vec<SlimSlice>),
    Applied(String, String, Option<(SvcKey, SliceInfo)>),
    /// Namespace, name, revision of the last stored version when known.
    Deleted(String, String, Option<Revision>),
}

/// Where cache input comes from; the cache is synced once each reported its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Kind(Kind),
    Allocations,
}

pub const SOURCES: [Source; 6] = [
    Source::Kind(Kind::ClusterConfig),
    Source::Kind(Kind::Node),
    Source::Kind(Kind::Service),
    Source::Kind(Kind::Pod),
    Source::Kind(Kind::EndpointSlice),
    Source::Allocations,
];

fn svc_key(meta: &ObjectMeta) -> SvcKey {
    (
        meta.namespace.clone().unwrap_or_else(|| "default".into()),
        meta.name.clone().unwrap_or_default(),
    )
}

fn selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())
}

#[derive(Debug, Default)]
pub struct Cache {
    pub config: ClusterConfigSpec,
    pub pools: Vec<Pool>,
    pub services: HashMap<SvcKey, CachedService>,
    /// (namespace, label, value) of service selectors -> service names.
    svc_by_label: HashMap<(String, String, String), SmallSet<String>>,
    /// Services that wait for something to be freed.
    blocked_services: HashSet<SvcKey>,
    pub pods: Pods,
    pub nodes: BTreeMap<String, Node>,
    pub slices: Slices,
    pub allocs: Allocations,
    pub dirty: Dirty,
    synced: HashSet<Source>,
}

impl Cache {
    pub fn new() -> Self {
        let mut c = Cache::default();
        c.set_config(ClusterConfigSpec::default());
        c
    }

    /// Every source has delivered its first list.
    pub fn is_synced(&self) -> bool {
        SOURCES.iter().all(|s| self.synced.contains(s))
    }

    fn set_config(&mut self, cfg: ClusterConfigSpec) {
        let (pools, bad) = parse_pools(&cfg.load_balancer_pools);
        for e in bad {
            tracing::warn!(error = %e, "ignoring load-balancer pool");
        }
        self.pools = pools;
        self.config = cfg;
    }

    /// Marks everything for reconciliation (leadership gained, periodic resync).
    pub fn mark_all(&mut self) {
        self.dirty.services.extend(self.services.keys().cloned());
        self.dirty.services.extend(self.slices.owners().cloned());
        self.dirty.nodes.extend(self.nodes.keys().cloned());
        self.dirty.pods.extend(self.pods.unscheduled().cloned());
        self.dirty.allocs.extend(self.allocs.keys().copied());
    }

    pub fn apply_allocs(&mut self, ev: AllocEvent) {
        match ev {
            AllocEvent::Restarted(all) => {
                self.synced.insert(Source::Allocations);
                self.allocs.reset(all);
                self.dirty.allocs.extend(self.allocs.keys().copied());
                self.unblock();
            }
            AllocEvent::Put(k, a) => {
                if self.allocs.insert(k, a) {
                    self.dirty.allocs.insert(k);
                }
            }
            AllocEvent::Deleted(k, rev) => {
                let newer = self.allocs.get(&k).is_some_and(|a| a.rev > rev);
                if !newer && self.allocs.remove(k).is_some() {
                    self.unblock();
                }
            }
        }
    }

    /// Records an allocation this controller deleted; whoever waits for something
    /// tries again.
    pub fn released(&mut self, k: AllocKey) {
        if self.allocs.remove(k).is_some() {
            self.unblock();
        }
    }

    /// Something was freed: whoever waited for something tries again.
    fn unblock(&mut self) {
        self.dirty
            .services
            .extend(self.blocked_services.iter().cloned());
        let blocked_nodes = self.nodes.iter().filter(|(_, n)| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == crate::plan::conditions::POD_CIDR_ALLOCATED)
                })
        });
        self.dirty
            .nodes
            .extend(blocked_nodes.map(|(name, _)| name.clone()));
    }

    /// A cached Service, decoded.
    pub fn service(&self, key: &SvcKey) -> Option<Service> {
        self.services.get(key).map(CachedService::object)
    }

    /// The pods a service selects.
    pub fn pods_of<'a>(&'a self, svc: &'a Service) -> Vec<&'a SlimPod> {
        let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
        match selector(svc) {
            Some(sel) => self.pods.matching(ns, sel),
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podnet_model::Object;
    use podnet_store::InformerEvent;
    use serde_json::json;

    fn svc(rev: i64, selector: serde_json::Value) -> Object {
        Object::from_value(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": rev.to_string()},
            "spec": {"selector": selector}}))
        .unwrap()
    }

    fn pod(rev: i64, app: &str) -> Object {
        Object::from_value(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "shop", "resourceVersion": rev.to_string(), "labels": {"app": app}},
            "spec": {"nodeName": "n", "containers": []}, "status": {"podIP": "10.244.0.9"}}))
        .unwrap()
    }

    #[test]
    fn pod_changes_queue_exactly_the_selecting_services_and_old_events_are_ignored() {
        let mut c = Cache::new();
        c.apply(
            Kind::Service,
            InformerEvent::Restarted(vec![svc(5, json!({"app": "web"}))]),
        );
        c.dirty = Dirty::default();
        c.applied(pod(6, "db"));
        assert!(c.dirty.services.is_empty());
        c.applied(pod(7, "web"));
        assert_eq!(c.dirty.services.len(), 1, "label change into the selector");
        c.dirty = Dirty::default();
        c.applied(pod(6, "db"));
        assert!(
            c.dirty.services.is_empty(),
            "an older event changes nothing"
        );
        assert_eq!(
            c.pods_of(match &svc(5, json!({"app": "web"})) {
                Object::Service(s) => s,
                _ => unreachable!(),
            })
            .len(),
            1
        );
        c.applied(svc(5, json!({"app": "other"})));
        assert!(
            c.dirty.services.is_empty(),
            "same revision again is not a change"
        );
        c.applied(svc(8, json!({"app": "other"})));
        assert_eq!(c.dirty.services.len(), 1);
        c.dirty = Dirty::default();
        c.applied(pod(9, "web2"));
        assert!(
            c.dirty.services.is_empty(),
            "the service no longer selects app=web"
        );
    }
}
