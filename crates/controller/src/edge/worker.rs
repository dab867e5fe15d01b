//! One batch of work: plan every dirty key from the cache (pure), turn the plans into
//! transaction items, apply them, record what committed in the cache and hand back
//! what conflicted for a later retry.

use podnet_model::k8s_openapi::api::core::v1::{Node, Pod, Service};
use podnet_model::k8s_openapi::api::discovery::v1::EndpointSlice;
use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use podnet_model::{Kind, Object};
use podnet_store::typed::encode;
use podnet_store::{Compare, Op, Revision, Store};
use rand::rngs::StdRng;

use super::txn::{apply, ApplyError, Fence, Item};
use crate::alloc::{AllocKey, Allocation, Owner};
use crate::cache::slices::fingerprint;
use crate::cache::{rev_of, Cache, Dirty, SvcKey};
use crate::plan::gc::{holds, OwnerObject};
use crate::plan::pod_cidr::plan_node;
use crate::plan::schedule::{candidates, schedule};
use crate::plan::slices::desired_slices;
use crate::plan::{plan_service, AllocPlan, Ctx, Planned};

/// What the edge needs besides the cache.
pub struct Worker<'a> {
    pub store: &'a dyn Store,
    pub fence: Option<Fence>,
    pub rng: &'a mut StdRng,
    pub max_endpoints_per_slice: usize,
}

fn now() -> Time {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Time(podnet_model::k8s_openapi::jiff::Timestamp::from_second(secs).unwrap_or_default())
}

fn with_rev<T: Clone>(obj: &T, meta: impl Fn(&mut T) -> &mut ObjectMeta, rev: Revision) -> T {
    let mut o = obj.clone();
    meta(&mut o).resource_version = Some(rev.to_string());
    o
}

/// A committed allocation plan, to be recorded in the cache.
struct AllocTag<T> {
    object: Option<T>,
    owner: Owner,
    claims: Vec<AllocKey>,
    releases: Vec<AllocKey>,
}

fn alloc_item<T>(
    key: String,
    read_rev: Revision,
    plan: AllocPlan<T>,
    encoded: Option<Vec<u8>>,
) -> Item<AllocTag<T>> {
    let mut compares = vec![Compare::mod_revision(&key, read_rev)];
    let mut ops = Vec::new();
    if let Some(bytes) = encoded {
        ops.push(Op::put(&key, bytes));
    }
    let owner_bytes = plan.owner.encode();
    for k in &plan.claims {
        compares.push(Compare::absent(k.key()));
        ops.push(Op::put(k.key(), owner_bytes.clone()));
    }
    for (k, rev) in &plan.releases {
        compares.push(Compare::mod_revision(k.key(), *rev));
        ops.push(Op::delete(k.key()));
    }
    Item {
        compares,
        ops,
        tag: AllocTag {
            object: plan.object,
            owner: plan.owner,
            claims: plan.claims,
            releases: plan.releases.into_iter().map(|(k, _)| k).collect(),
        },
    }
}

fn record_allocs<T>(cache: &mut Cache, tag: &AllocTag<T>, rev: Revision) {
    for k in &tag.claims {
        cache.allocs.insert(
            *k,
            Allocation {
                owner: tag.owner.clone(),
                rev,
            },
        );
    }
    for k in &tag.releases {
        cache.released(*k);
    }
}

/// Records an own write without queueing its key again.
fn record_own(cache: &mut Cache, obj: Object, svc: Option<&SvcKey>) {
    let queued = svc.is_some_and(|k| cache.dirty.services.contains(k));
    let node = match &obj {
        Object::Node(n) => n.metadata.name.clone(),
        _ => None,
    };
    let node_queued = node.as_ref().is_some_and(|n| cache.dirty.nodes.contains(n));
    cache.applied(obj);
    if let (Some(k), false) = (svc, queued) {
        cache.dirty.services.remove(k);
    }
    if let (Some(n), false) = (node, node_queued) {
        cache.dirty.nodes.remove(&n);
    }
}

impl Worker<'_> {
    /// Processes one batch; returns the keys to retry later.
    pub async fn process(&mut self, cache: &mut Cache, batch: Dirty) -> Result<Dirty, ApplyError> {
        let mut retry = Dirty::default();
        let result = self.process_inner(cache, &batch, &mut retry).await;
        cache.allocs.end_batch();
        result.map(|()| retry)
    }

    async fn process_inner(
        &mut self,
        cache: &mut Cache,
        batch: &Dirty,
        retry: &mut Dirty,
    ) -> Result<(), ApplyError> {
        self.services(cache, batch, retry).await?;
        self.slices(cache, batch, retry).await?;
        self.nodes(cache, batch, retry).await?;
        self.pods(cache, batch, retry).await?;
        self.gc(cache, batch, retry).await?;
        Ok(())
    }

    async fn services(
        &mut self,
        cache: &mut Cache,
        batch: &Dirty,
        retry: &mut Dirty,
    ) -> Result<(), ApplyError> {
        let cfg = cache.config.clone();
        let pools = cache.pools.clone();
        let ctx = Ctx {
            cfg: &cfg,
            pools: &pools,
            now: now(),
        };
        let mut items = Vec::new();
        for key in &batch.services {
            let Some(svc) = cache.service(key) else {
                continue;
            };
            match plan_service(&svc, &ctx, &mut cache.allocs, self.rng) {
                Planned::Busy => {
                    retry.services.insert(key.clone());
                }
                Planned::Plan(plan) if plan.is_noop() => {}
                Planned::Plan(plan) => {
                    if plan.object.is_some() {
                        for p in &plan.problems {
                            tracing::warn!(service = %format!("{}/{}", key.0, key.1), condition = p.type_, reason = p.reason, message = %p.message, "allocation failed");
                        }
                    }
                    let okey = Kind::Service.key(Some(&key.0), &key.1);
                    let encoded = plan
                        .object
                        .as_ref()
                        .map(|s| encode(&Object::Service(s.clone())));
                    items.push((
                        key.clone(),
                        alloc_item(okey, rev_of(&svc.metadata), plan, encoded),
                    ));
                }
            }
        }
        let (keys, items): (Vec<SvcKey>, Vec<Item<AllocTag<Service>>>) = items.into_iter().unzip();
        let items = items
            .into_iter()
            .zip(keys)
            .map(|(it, k)| Item {
                compares: it.compares,
                ops: it.ops,
                tag: (k, it.tag),
            })
            .collect();
        let applied = apply(self.store, self.fence.as_ref(), items).await?;
        for ((key, tag), rev) in applied.done {
            record_allocs(cache, &tag, rev);
            if let Some(svc) = &tag.object {
                let svc = with_rev(svc, |s| &mut s.metadata, rev);
                record_own(cache, Object::Service(svc), Some(&key));
            }
        }
        for (key, _) in applied.conflicts {
            tracing::debug!(service = %format!("{}/{}", key.0, key.1), "conflict; will retry");
            retry.services.insert(key);
        }
        Ok(())
    }

    async fn slices(
        &mut self,
        cache: &mut Cache,
        batch: &Dirty,
        retry: &mut Dirty,
    ) -> Result<(), ApplyError> {
        let mut items = Vec::new();
        for key in &batch.services {
            let desired: Vec<EndpointSlice> = match cache.service(key) {
                Some(svc) if svc.metadata.uid.as_deref().unwrap_or_default().is_empty() => {
                    continue; // gets a uid first
                }
                Some(svc) => {
                    desired_slices(&svc, &cache.pods_of(&svc), self.max_endpoints_per_slice)
                }
                None => Vec::new(),
            };
            let existing = cache.slices.of(key).cloned().unwrap_or_default();
            let mut compares = Vec::new();
            let mut ops = Vec::new();
            let mut puts = Vec::new();
            let mut deletes = Vec::new();
            let desired_names: std::collections::HashSet<String> = desired
                .iter()
                .filter_map(|s| s.metadata.name.clone())
                .collect();
            for s in desired {
                let name = s.metadata.name.clone().unwrap_or_default();
                let skey = Kind::EndpointSlice.key(Some(&key.0), &name);
                let fp = fingerprint(&s);
                match existing.get(&name) {
                    Some(info) if info.fingerprint == fp => continue,
                    Some(info) => compares.push(Compare::mod_revision(&skey, info.rev)),
                    None => compares.push(Compare::absent(&skey)),
                }
                ops.push(Op::put(&skey, encode(&Object::EndpointSlice(s.clone()))));
                puts.push(s);
            }
            for (name, info) in existing.iter() {
                if desired_names.contains(name) {
                    continue;
                }
                let skey = Kind::EndpointSlice.key(Some(&key.0), name);
                compares.push(Compare::mod_revision(&skey, info.rev));
                ops.push(Op::delete(&skey));
                deletes.push(name.clone());
            }
            if !ops.is_empty() {
                items.push(Item {
                    compares,
                    ops,
                    tag: (key.clone(), puts, deletes),
                });
            }
        }
        let applied = apply(self.store, self.fence.as_ref(), items).await?;
        for ((key, puts, deletes), rev) in applied.done {
            for s in puts {
                let s = with_rev(&s, |s| &mut s.metadata, rev);
                record_own(cache, Object::EndpointSlice(s), Some(&key));
            }
            for name in deletes {
                cache.slices.remove(&key.0, &name, None);
            }
        }
        for (key, _, _) in applied.conflicts {
            retry.services.insert(key);
        }
        Ok(())
    }

    async fn nodes(
        &mut self,
        cache: &mut Cache,
        batch: &Dirty,
        retry: &mut Dirty,
    ) -> Result<(), ApplyError> {
        let cfg = cache.config.clone();
        let ctx = Ctx {
            cfg: &cfg,
            pools: &[],
            now: now(),
        };
        let mut items = Vec::new();
        for name in &batch.nodes {
            let Some(node) = cache.nodes.get(name) else {
                continue;
            };
            match plan_node(node, &ctx, &mut cache.allocs, self.rng) {
                Planned::Busy => {
                    retry.nodes.insert(name.clone());
                }
                Planned::Plan(plan) if plan.is_noop() => {}
                Planned::Plan(plan) => {
                    if plan.object.is_some() {
                        for p in &plan.problems {
                            tracing::warn!(node = %name, reason = p.reason, message = %p.message, "pod CIDR allocation failed");
                        }
                    }
                    let encoded = plan
                        .object
                        .as_ref()
                        .map(|n| encode(&Object::Node(n.clone())));
                    let it = alloc_item(
                        Kind::Node.key(None, name),
                        rev_of(&node.metadata),
                        plan,
                        encoded,
                    );
                    items.push(Item {
                        compares: it.compares,
                        ops: it.ops,
                        tag: (name.clone(), it.tag),
                    });
                }
            }
        }
        let applied = apply(self.store, self.fence.as_ref(), items).await?;
        for ((_, tag), rev) in applied.done {
            record_allocs(cache, &tag, rev);
            if let Some(n) = &tag.object {
                let n: Node = with_rev(n, |n| &mut n.metadata, rev);
                record_own(cache, Object::Node(n), None);
            }
        }
        for (name, _) in applied.conflicts {
            retry.nodes.insert(name);
        }
        Ok(())
    }

    async fn pods(
        &mut self,
        cache: &mut Cache,
        batch: &Dirty,
        retry: &mut Dirty,
    ) -> Result<(), ApplyError> {
        if batch.pods.is_empty() {
            return Ok(());
        }
        let pending: Vec<&Pod> = batch
            .pods
            .iter()
            .filter_map(|k| cache.pods.get(k)?.unscheduled.as_deref())
            .collect();
        let cands = candidates(cache.nodes.values(), |n| cache.pods.on_node(n));
        let (bound, unplaced) = schedule(pending, cands, &now());
        for p in unplaced {
            tracing::debug!(pod = %format!("{}/{}", p.metadata.namespace.as_deref().unwrap_or("default"), p.metadata.name.as_deref().unwrap_or_default()), "no node fits; pod stays pending");
        }
        let items = bound
            .into_iter()
            .map(|pod| {
                let obj = Object::Pod(pod);
                let key = obj.key();
                Item {
                    compares: vec![Compare::mod_revision(&key, rev_of(obj.meta()))],
                    ops: vec![Op::put(&key, encode(&obj))],
                    tag: obj,
                }
            })
            .collect();
        let applied = apply(self.store, self.fence.as_ref(), items).await?;
        for (mut obj, rev) in applied.done {
            obj.meta_mut().resource_version = Some(rev.to_string());
            tracing::info!(pod = %obj.object_ref(), "bound");
            cache.applied(obj);
        }
        for obj in applied.conflicts {
            retry.pods.insert((
                obj.namespace().unwrap_or("default").to_string(),
                obj.name().to_string(),
            ));
        }
        Ok(())
    }

    async fn gc(
        &mut self,
        cache: &mut Cache,
        batch: &Dirty,
        retry: &mut Dirty,
    ) -> Result<(), ApplyError> {
        let mut items = Vec::new();
        for k in &batch.allocs {
            let Some(a) = cache.allocs.get(k) else {
                continue;
            };
            let Some(owner_key) = a.owner.object_key() else {
                tracing::warn!(key = %k.key(), owner = %a.owner, "allocation owned by an unknown kind; leaving it");
                continue;
            };
            let ns = a.owner.namespace.clone().unwrap_or_default();
            let svc = match a.owner.kind.as_str() {
                "Service" => cache.service(&(ns, a.owner.name.clone())),
                _ => None,
            };
            let (obj, owner_rev) = match a.owner.kind.as_str() {
                "Service" => match &svc {
                    Some(s) => (OwnerObject::Service(s), rev_of(&s.metadata)),
                    None => (OwnerObject::Absent, 0),
                },
                _ => match cache.nodes.get(&a.owner.name) {
                    Some(n) => (OwnerObject::Node(n), rev_of(&n.metadata)),
                    None => (OwnerObject::Absent, 0),
                },
            };
            if holds(k, &a.owner, obj) {
                continue;
            }
            // A plan of this batch may still claim it for the same owner (uid given
            // on first write): the owner compare below makes the release safe anyway.
            items.push(Item {
                compares: vec![
                    Compare::mod_revision(k.key(), a.rev),
                    Compare::mod_revision(owner_key, owner_rev),
                ],
                ops: vec![Op::delete(k.key())],
                tag: (*k, a.owner.clone()),
            });
        }
        let applied = apply(self.store, self.fence.as_ref(), items).await?;
        for ((k, owner), _) in applied.done {
            tracing::info!(item = %k, owner = %owner, "released");
            cache.released(k);
        }
        for (k, _) in applied.conflicts {
            retry.allocs.insert(k);
        }
        Ok(())
    }
}
