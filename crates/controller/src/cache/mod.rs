//! The controller's in-memory view of the store, fed by informers and by its own
//! committed writes, and the work queue of dirty keys those changes produce.
//! Services and Nodes are kept whole (the controller writes them back); Pods and
//! EndpointSlices slim.

pub mod dirty;
pub mod lite;
pub mod pods;
pub mod services;
pub mod slices;

use std::collections::{BTreeMap, HashMap, HashSet};

use podnet_model::k8s_openapi::api::core::v1::{Node, Service};
use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use podnet_model::{ClusterConfigSpec, Kind, Object, ObjectRef};
use podnet_store::{InformerEvent, Revision};

use crate::alloc::ranges::{parse_pools, Pool};
use crate::alloc::{AllocKey, Allocation, Allocations};
use crate::small::SmallSet;
pub use dirty::Dirty;
use pods::{Pods, SlimPod};
pub use services::CachedService;
pub use slices::SliceInfo;
pub use slices::SvcKey;
use slices::{fingerprint, managed_owner, Slices};

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

    pub fn apply_pods(&mut self, ev: PodEvent) {
        match ev {
            PodEvent::Restarted(pods) => {
                self.synced.insert(Source::Kind(Kind::Pod));
                self.pods.clear();
                self.dirty.services.extend(self.services.keys().cloned());
                for p in pods {
                    self.pod_applied(p);
                }
            }
            PodEvent::Applied(p) => self.pod_applied(p),
            PodEvent::Deleted(key, prev_rev) => self.pod_deleted(key, prev_rev),
        }
    }

    pub fn apply_services(&mut self, ev: ServiceEvent) {
        match ev {
            ServiceEvent::Restarted(all) => {
                self.synced.insert(Source::Kind(Kind::Service));
                self.restart(Kind::Service, Vec::new());
                for (key, svc) in all {
                    self.service_cached(key, svc);
                }
            }
            ServiceEvent::Applied(key, svc) => self.service_cached(key, svc),
            ServiceEvent::Deleted(key, prev_rev) => self.service_deleted(key, prev_rev),
        }
    }

    pub fn apply_slices(&mut self, ev: SliceEvent) {
        match ev {
            SliceEvent::Restarted(all) => {
                self.synced.insert(Source::Kind(Kind::EndpointSlice));
                self.dirty.services.extend(self.slices.owners().cloned());
                self.slices.clear();
                for (ns, name, info) in all {
                    let touched = self.slices.upsert(&ns, &name, info);
                    self.dirty.services.extend(touched);
                }
            }
            SliceEvent::Applied(ns, name, info) => {
                let touched = self.slices.upsert(&ns, &name, info);
                self.dirty.services.extend(touched);
            }
            SliceEvent::Deleted(ns, name, prev_rev) => {
                if let Some(owner) = self.slices.remove(&ns, &name, prev_rev) {
                    self.dirty.services.insert(owner);
                }
            }
        }
    }

    pub fn apply(&mut self, kind: Kind, ev: InformerEvent) {
        match ev {
            InformerEvent::Restarted(objs) => {
                self.synced.insert(Source::Kind(kind));
                self.restart(kind, objs);
            }
            InformerEvent::Applied(obj) => self.applied(obj),
            InformerEvent::Deleted(oref, prev) => self.deleted(oref, prev),
        }
    }

    fn restart(&mut self, kind: Kind, objs: Vec<Object>) {
        match kind {
            Kind::Service => {
                let old: Vec<SvcKey> = self.services.keys().cloned().collect();
                self.services.clear();
                self.svc_by_label.clear();
                self.blocked_services.clear();
                self.dirty.services.extend(old);
            }
            Kind::Pod => {
                self.pods.clear();
                self.dirty.services.extend(self.services.keys().cloned());
            }
            Kind::Node => {
                self.nodes.clear();
                self.dirty.allocs.extend(self.allocs.keys().copied());
            }
            Kind::EndpointSlice => {
                self.dirty.services.extend(self.slices.owners().cloned());
                self.slices.clear();
            }
            Kind::ClusterConfig => self.set_config(ClusterConfigSpec::default()),
            _ => {}
        }
        for o in objs {
            self.applied(o);
        }
    }

    /// Records an object (from a watch or from this controller's own write).
    pub fn applied(&mut self, obj: Object) {
        match obj {
            Object::Service(s) => self.service_applied(s),
            Object::Pod(p) => self.pod_applied(SlimPod::from_pod(&p)),
            Object::Node(n) => {
                let name = n.metadata.name.clone().unwrap_or_default();
                if let Some(old) = self.nodes.get(&name) {
                    if rev_of(&n.metadata) != 0 && rev_of(&n.metadata) <= rev_of(&old.metadata) {
                        return;
                    }
                }
                self.nodes.insert(name.clone(), n);
                self.dirty.nodes.insert(name);
                self.dirty.pods.extend(self.pods.unscheduled().cloned());
            }
            Object::EndpointSlice(s) => {
                let ns = s
                    .metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".into());
                let name = s.metadata.name.clone().unwrap_or_default();
                let info = managed_owner(&s).map(|owner| {
                    (
                        owner,
                        SliceInfo {
                            rev: rev_of(&s.metadata),
                            fingerprint: fingerprint(&s),
                        },
                    )
                });
                let touched = self.slices.upsert(&ns, &name, info);
                self.dirty.services.extend(touched);
            }
            Object::ClusterConfig(c)
                if c.metadata.name.as_deref() == Some(podnet_model::config::DEFAULT_NAME)
                    && c.spec != self.config =>
            {
                self.set_config(c.spec);
                self.mark_all();
            }
            _ => {}
        }
    }

    fn deleted(&mut self, oref: ObjectRef, prev: Option<Object>) {
        let prev_rev = prev.as_ref().map(|o| rev_of(o.meta()));
        let ns = oref.namespace.clone().unwrap_or_default();
        match oref.kind {
            Kind::Service => self.service_deleted((ns, oref.name.clone()), prev_rev),
            Kind::Pod => self.pod_deleted((ns, oref.name.clone()), prev_rev),
            Kind::Node => {
                if let (Some(old), Some(pr)) = (self.nodes.get(&oref.name), prev_rev) {
                    if pr != 0 && pr < rev_of(&old.metadata) {
                        return;
                    }
                }
                self.nodes.remove(&oref.name);
                let owned: Vec<AllocKey> = self
                    .allocs
                    .owned_by("Node", None, &oref.name)
                    .map(|(k, _)| *k)
                    .collect();
                self.dirty.allocs.extend(owned);
            }
            Kind::EndpointSlice => {
                if let Some(owner) = self.slices.remove(&ns, &oref.name, prev_rev) {
                    self.dirty.services.insert(owner);
                }
            }
            Kind::ClusterConfig if oref.name == podnet_model::config::DEFAULT_NAME => {
                self.set_config(ClusterConfigSpec::default());
                self.mark_all();
            }
            _ => {}
        }
    }

    fn service_applied(&mut self, svc: Service) {
        let key = svc_key(&svc.metadata);
        self.service_cached(key, CachedService::new(&svc));
    }

    fn service_cached(&mut self, key: SvcKey, cached: CachedService) {
        if let Some(old) = self.services.get(&key) {
            if cached.rev != 0 && cached.rev <= old.rev {
                return;
            }
        }
        self.remove_service(&key);
        for (k, v) in cached.selector.iter().flatten() {
            self.svc_by_label
                .entry((key.0.clone(), k.clone(), v.clone()))
                .or_default()
                .insert(key.1.clone());
        }
        if cached.blocked {
            self.blocked_services.insert(key.clone());
        }
        self.services.insert(key.clone(), cached);
        self.dirty.services.insert(key);
    }

    fn service_deleted(&mut self, key: SvcKey, prev_rev: Option<Revision>) {
        if let (Some(old), Some(pr)) = (self.services.get(&key), prev_rev) {
            if pr != 0 && pr < old.rev {
                return;
            }
        }
        self.remove_service(&key);
        self.dirty.services.insert(key.clone());
        let owned: Vec<AllocKey> = self
            .allocs
            .owned_by("Service", Some(&key.0), &key.1)
            .map(|(k, _)| *k)
            .collect();
        self.dirty.allocs.extend(owned);
    }

    fn remove_service(&mut self, key: &SvcKey) {
        let Some(old) = self.services.remove(key) else {
            return;
        };
        self.blocked_services.remove(key);
        for (k, v) in old.selector.iter().flatten() {
            let lk = (key.0.clone(), k.clone(), v.clone());
            if let Some(set) = self.svc_by_label.get_mut(&lk) {
                set.remove(&key.1);
                if set.is_empty() {
                    self.svc_by_label.remove(&lk);
                }
            }
        }
    }

    /// A cached Service, decoded.
    pub fn service(&self, key: &SvcKey) -> Option<Service> {
        self.services.get(key).map(CachedService::object)
    }

    fn pod_deleted(&mut self, key: pods::PodKey, prev_rev: Option<Revision>) {
        if let (Some(old), Some(pr)) = (self.pods.get(&key), prev_rev) {
            if pr != 0 && pr < old.rev {
                return;
            }
        }
        if let Some(old) = self.pods.remove(&key) {
            self.mark_selecting(&old);
        }
    }

    fn pod_applied(&mut self, pod: SlimPod) {
        let unscheduled = pod.unscheduled.is_some();
        let key = pod.key();
        let new = pod.clone_slim();
        match self.pods.upsert(pod) {
            pods::Upsert::Stale => return,
            pods::Upsert::Stored(Some(old)) => {
                if !old.same_content(&new) {
                    self.mark_selecting(&old);
                    self.mark_selecting(&new);
                }
            }
            pods::Upsert::Stored(None) => self.mark_selecting(&new),
        }
        if unscheduled {
            self.dirty.pods.insert(key);
        }
    }

    /// Marks the services whose selector matches `pod`.
    fn mark_selecting(&mut self, pod: &SlimPod) {
        let mut hit = HashSet::new();
        for (k, v) in &pod.labels {
            let lk = (pod.namespace.clone(), k.clone(), v.clone());
            for name in self.svc_by_label.get(&lk).into_iter().flatten() {
                if hit.contains(name) {
                    continue;
                }
                let key = (pod.namespace.clone(), name.clone());
                let matches = self.services.get(&key).is_some_and(|s| s.selects(pod));
                if matches {
                    hit.insert(name.clone());
                    self.dirty.services.insert(key);
                }
            }
        }
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
