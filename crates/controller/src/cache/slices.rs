//! The EndpointSlices this controller manages, slim: per service, each slice's name,
//! revision and a fingerprint of its content (compared with the fingerprint of the
//! desired slice, so identical slices are never rewritten).

use std::collections::HashMap;

use podnet_model::k8s_openapi::api::discovery::v1::EndpointSlice;
use podnet_model::Object;
use podnet_store::typed::encode;
use podnet_store::Revision;

use crate::hash::fnv64;
use crate::plan::slices::{MANAGED_BY, MANAGED_BY_LABEL, SERVICE_NAME_LABEL};
use crate::small::SmallMap;

/// (namespace, service name).
pub type SvcKey = (String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceInfo {
    pub rev: Revision,
    pub fingerprint: u64,
}

/// The content fingerprint of a slice (ignoring its resourceVersion).
pub fn fingerprint(slice: &EndpointSlice) -> u64 {
    fnv64(&encode(&Object::EndpointSlice(slice.clone())))
}

/// The service a slice belongs to, when this controller manages it.
pub fn managed_owner(slice: &EndpointSlice) -> Option<SvcKey> {
    let labels = slice.metadata.labels.as_ref()?;
    (labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)).then_some(())?;
    let svc = labels.get(SERVICE_NAME_LABEL)?;
    Some((
        slice
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        svc.clone(),
    ))
}

#[derive(Debug, Default)]
pub struct Slices {
    by_service: HashMap<SvcKey, SmallMap<String, SliceInfo>>,
    /// (namespace, slice name) -> service.
    owner: HashMap<(String, String), SvcKey>,
}

impl Slices {
    pub fn clear(&mut self) {
        *self = Slices::default();
    }

    pub fn len(&self) -> usize {
        self.owner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owner.is_empty()
    }

    /// The slices of one service, by name.
    pub fn of(&self, svc: &SvcKey) -> Option<&SmallMap<String, SliceInfo>> {
        self.by_service.get(svc)
    }

    /// Every service that has slices.
    pub fn owners(&self) -> impl Iterator<Item = &SvcKey> {
        self.by_service.keys()
    }

    /// Records a slice; returns the services whose slices changed (none when the
    /// event is old or repeats what is known).
    pub fn upsert(
        &mut self,
        ns: &str,
        name: &str,
        info: Option<(SvcKey, SliceInfo)>,
    ) -> Vec<SvcKey> {
        let skey = (ns.to_string(), name.to_string());
        let mut touched = Vec::new();
        if let Some(old_owner) = self.owner.get(&skey).cloned() {
            let old = self
                .by_service
                .get(&old_owner)
                .and_then(|m| m.get(name))
                .copied();
            if let (Some(old), Some((owner, new))) = (old, &info) {
                if *owner == old_owner && (new.rev < old.rev || *new == old) {
                    return touched;
                }
            }
            self.forget(&skey, &old_owner);
            touched.push(old_owner);
        }
        if let Some((owner, info)) = info {
            self.by_service
                .entry(owner.clone())
                .or_default()
                .insert(name.to_string(), info);
            self.owner.insert(skey, owner.clone());
            if !touched.contains(&owner) {
                touched.push(owner);
            }
        }
        touched
    }

    /// Forgets a deleted slice; returns its service. A deletion older than what is
    /// known (`prev_rev` below the cached revision) is ignored.
    pub fn remove(&mut self, ns: &str, name: &str, prev_rev: Option<Revision>) -> Option<SvcKey> {
        let skey = (ns.to_string(), name.to_string());
        let owner = self.owner.get(&skey)?.clone();
        let cached = self.by_service.get(&owner)?.get(name)?.rev;
        if prev_rev.is_some_and(|r| r < cached) {
            return None;
        }
        self.forget(&skey, &owner);
        Some(owner)
    }

    fn forget(&mut self, skey: &(String, String), owner: &SvcKey) {
        self.owner.remove(skey);
        if let Some(m) = self.by_service.get_mut(owner) {
            m.remove(&skey.1);
            if m.is_empty() {
                self.by_service.remove(owner);
            }
        }
    }
}
