//! Applying inputs to the cache: each change updates the indexes and queues exactly
//! the keys whose desired state may have changed. Events older than what is cached
//! (a watch lagging behind the controller's own committed write) change nothing.

use std::collections::HashSet;

use podnet_model::k8s_openapi::api::core::v1::Service;
use podnet_model::{ClusterConfigSpec, Kind, Object, ObjectRef};
use podnet_store::{InformerEvent, Revision};

use super::pods::{self, SlimPod};
use super::slices::{fingerprint, managed_owner};
use super::{
    rev_of, svc_key, Cache, CachedService, PodEvent, ServiceEvent, SliceEvent, SliceInfo, Source,
    SvcKey,
};
use crate::alloc::AllocKey;

impl Cache {
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
}
