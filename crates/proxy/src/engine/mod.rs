//! The incremental engine: keeps Services and EndpointSlices (reduced to the fields
//! the model reads, [`crate::input`]), re-plans only the services touched since the
//! last sync, and turns the difference into one nftables batch. The per-packet design
//! (see [`crate::ruleset`]) makes every service's rules a set of map elements plus
//! references to shared chains, so a service's change is the difference of its own
//! fragment: O(changes), whatever the number of services.
//!
//! Elements and chains are reference-counted across services (two services may both
//! add the same hairpin address or use the same balancing chain). Elements are kept
//! in a compact form (a set index and the key's and data's values as 32-bit words,
//! see [`Codec`]) and become nftables [`Element`]s only in a batch. The engine keeps
//! one copy of the desired content: after a successful commit it *is* what the kernel
//! holds, so a plan records the previous value of each key it touches and the batch
//! is the difference for those keys only. [`Engine::commit`] confirms it; a refused
//! batch ([`Engine::failed`]), or a plan that was neither committed nor failed, makes
//! the next sync a full, atomic replace.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use podnet_linux::nft::{Batch, Chain, Element, Op, Set, TableState, Value};
use podnet_model::k8s_openapi::api::core::v1::Service;
use podnet_model::k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::input::{ServiceInput, SliceInput};
use crate::model::{build_service_input, HealthCheck, SERVICE_NAME_LABEL};
use crate::ruleset::{fragment, skeleton, RulesetConfig};

mod codec;
mod desired;
mod pairs;

use codec::{Codec, Data, Key};
use desired::{Desired, Touched};
use pairs::{pairs, sticky_pairs, udp_backends, Pair, SetIds};

/// (namespace, name) of a Service.
pub type ServiceKey = (String, String);

/// ((frontend address, port), (backend address, port)).
pub type StalePair = ((Ipv4Addr, u16), (Ipv4Addr, u16));

/// What one sync changes, ready to commit.
#[derive(Debug)]
pub struct Planned {
    pub batch: Batch,
    /// A full replace (start, resync, or after a failure).
    pub full: bool,
    /// (UDP frontend, backend) pairs, each an (address, port), that are no longer
    /// balanced: their conntrack entries should go once the batch is committed.
    pub stale_udp_backends: Vec<StalePair>,
    pub services_planned: usize,
    /// Fields of the re-planned services that were skipped, with why (for the log:
    /// each is reported once per change of its service, not on every sync).
    pub warnings: Vec<String>,
}

/// One service's inputs.
#[derive(Debug, Default)]
struct Entry {
    inputs: Inputs,
    /// Its fragment is in [`Desired`]: planned from `inputs` (or from `before`, when
    /// set) and [`Engine::planned_node_ips`]. A fragment is not stored: planning one
    /// service again is cheap and gives the same elements.
    in_desired: bool,
    /// The inputs the fragment in [`Desired`] was planned from, when they changed
    /// since (kept until the next plan).
    before: Option<Box<Inputs>>,
}

#[derive(Debug, Default, Clone)]
struct Inputs {
    svc: Option<Box<ServiceInput>>,
    /// By slice name, sorted.
    slices: Vec<(Box<str>, SliceInput)>,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.inputs.svc.is_none()
            && self.inputs.slices.is_empty()
            && !self.in_desired
            && self.before.is_none()
    }

    /// Call before changing `inputs`: keeps the planned ones.
    fn changing(&mut self) -> &mut Inputs {
        if self.in_desired && self.before.is_none() {
            self.before = Some(Box::new(self.inputs.clone()));
        }
        &mut self.inputs
    }
}

/// The proxy's state for one node.
pub struct Engine {
    cfg: RulesetConfig,
    node: String,
    node_ips: Vec<Ipv4Addr>,
    /// The node addresses the fragments in [`Desired`] were planned with.
    planned_node_ips: Vec<Ipv4Addr>,
    skeleton: TableState,
    codec: Codec,
    entries: HashMap<ServiceKey, Entry>,
    service_count: usize,
    /// (namespace, slice name) -> the name of the service it belongs to (a slice's
    /// label could change).
    slice_owner: HashMap<(String, String), String>,
    health: HashMap<ServiceKey, Vec<HealthCheck>>,
    desired: Desired,
    dirty: std::collections::BTreeSet<ServiceKey>,
    need_full: bool,
    /// An incremental plan was handed out and neither committed nor failed yet.
    pending: bool,
}

impl Engine {
    pub fn new(cfg: RulesetConfig, node: &str, node_ips: Vec<Ipv4Addr>) -> Engine {
        let skeleton = skeleton(&cfg);
        Engine {
            codec: Codec::new(&skeleton),
            skeleton,
            cfg,
            node: node.to_string(),
            planned_node_ips: node_ips.clone(),
            node_ips,
            entries: HashMap::new(),
            service_count: 0,
            slice_owner: HashMap::new(),
            health: HashMap::new(),
            desired: Desired::default(),
            dirty: Default::default(),
            need_full: true,
            pending: false,
        }
    }

    pub fn config(&self) -> &RulesetConfig {
        &self.cfg
    }

    fn service_keys(&self) -> impl Iterator<Item = &ServiceKey> {
        self.entries
            .iter()
            .filter(|(_, e)| e.inputs.svc.is_some())
            .map(|(k, _)| k)
    }

    /// NodePorts listen on these; a change re-plans every service.
    pub fn set_node_ips(&mut self, ips: Vec<Ipv4Addr>) {
        if ips != self.node_ips {
            self.node_ips = ips;
            let keys: Vec<ServiceKey> = self.service_keys().cloned().collect();
            self.dirty.extend(keys);
        }
    }

    pub fn upsert_service(&mut self, svc: Service) {
        let key = service_key(&svc);
        let input = ServiceInput::from(&svc);
        drop(svc);
        let entry = self.entries.entry(key.clone()).or_default();
        if entry.inputs.svc.as_deref() != Some(&input) {
            if entry.inputs.svc.is_none() {
                self.service_count += 1;
            }
            entry.changing().svc = Some(Box::new(input));
            self.dirty.insert(key);
        }
    }

    pub fn remove_service(&mut self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        if let Some(e) = self.entries.get_mut(&key) {
            if e.inputs.svc.is_some() {
                e.changing().svc = None;
                self.service_count -= 1;
                self.dirty.insert(key);
            }
        }
    }

    pub fn upsert_slice(&mut self, slice: EndpointSlice) {
        let ns = slice
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = slice.metadata.name.clone().unwrap_or_default();
        let owner = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .cloned();
        let input = SliceInput::new(&slice, &self.node);
        drop(slice);
        // unchanged (same owner, same content): nothing to re-plan
        if let Some(svc) = &owner {
            if self.slice_owner.get(&(ns.clone(), name.clone())) == Some(svc) {
                let same = self
                    .entries
                    .get(&(ns.clone(), svc.clone()))
                    .and_then(|e| {
                        e.inputs
                            .slices
                            .binary_search_by(|(n, _)| (**n).cmp(name.as_str()))
                            .ok()
                            .map(|i| e.inputs.slices[i].1 == input)
                    })
                    .unwrap_or(false);
                if same {
                    return;
                }
            }
        }
        self.remove_slice(&ns, &name);
        let Some(svc) = owner else {
            return;
        };
        self.slice_owner
            .insert((ns.clone(), name.clone()), svc.clone());
        let key = (ns, svc);
        let slices = &mut self
            .entries
            .entry(key.clone())
            .or_default()
            .changing()
            .slices;
        match slices.binary_search_by(|(n, _)| (**n).cmp(name.as_str())) {
            Ok(i) => slices[i].1 = input,
            Err(i) => {
                // most services have one slice: no room for four
                slices.reserve_exact(1);
                slices.insert(i, (name.into(), input));
            }
        }
        self.dirty.insert(key);
    }

    pub fn remove_slice(&mut self, namespace: &str, name: &str) {
        if let Some(svc) = self
            .slice_owner
            .remove(&(namespace.to_string(), name.to_string()))
        {
            let key = (namespace.to_string(), svc);
            if let Some(e) = self.entries.get_mut(&key) {
                if let Ok(i) = e.inputs.slices.binary_search_by(|(n, _)| (**n).cmp(name)) {
                    let slices = &mut e.changing().slices;
                    slices.remove(i);
                    slices.shrink_to_fit();
                }
            }
            self.dirty.insert(key);
        }
    }

    /// Forget everything (an informer relisted): callers re-add the current objects.
    pub fn clear_services(&mut self) {
        for (k, e) in &mut self.entries {
            if e.inputs.svc.is_some() {
                e.changing().svc = None;
                self.dirty.insert(k.clone());
            }
        }
        self.service_count = 0;
    }

    pub fn clear_slices(&mut self) {
        for (k, e) in &mut self.entries {
            if !e.inputs.slices.is_empty() {
                e.changing().slices = Vec::new();
                self.dirty.insert(k.clone());
            }
        }
        self.slice_owner.clear();
    }

    /// The next sync replaces the whole table (on demand, or after a failure).
    pub fn request_full_resync(&mut self) {
        self.need_full = true;
    }

    pub fn has_pending(&self) -> bool {
        !self.dirty.is_empty() || self.need_full
    }

    /// Health-check node ports of every service, by port.
    pub fn health_checks(&self) -> BTreeMap<u16, HealthCheck> {
        self.health
            .values()
            .flatten()
            .map(|h| (h.port, h.clone()))
            .collect()
    }

    pub fn service_count(&self) -> usize {
        self.service_count
    }

    /// Re-plans the dirty services and returns the batch that brings the kernel from
    /// the applied state to the desired one. Nothing is considered applied until
    /// [`Engine::commit`]; every plan must be followed by `commit` or `failed`
    /// (otherwise the next one is a full replace).
    pub fn plan(&mut self) -> Planned {
        if self.pending {
            self.need_full = true;
        }
        let dirty = std::mem::take(&mut self.dirty);
        let mut touched = Touched {
            skip: self.need_full,
            ..Default::default()
        };
        let mut warnings: Vec<String> = Vec::new();
        let mut old_udp: std::collections::BTreeSet<StalePair> = Default::default();
        let mut new_udp: std::collections::BTreeSet<StalePair> = Default::default();
        // (frontend, backend) pairs of session-affinity frontends before, and all
        // pairs after: a removed pair means remembered clients may point at a gone
        // backend, so the affinity map is flushed (those clients re-balance).
        let mut old_sticky: std::collections::BTreeSet<Pair> = Default::default();
        let mut new_pairs: std::collections::BTreeSet<Pair> = Default::default();
        let sets = SetIds::new(&self.codec);
        for key in &dirty {
            let Some(entry) = self.entries.get_mut(key) else {
                continue;
            };
            // take back what the service added: its fragment as planned then
            if entry.in_desired {
                let before = entry.before.take();
                let inputs = before.as_deref().unwrap_or(&entry.inputs);
                if let Some(svc) = inputs.svc.as_deref() {
                    let (_, frag) = plan_service(svc, key, &inputs.slices, &self.planned_node_ips);
                    let old = encode(&mut self.codec, &frag.elements);
                    old_udp.extend(udp_backends(&sets, &old));
                    old_sticky.extend(sticky_pairs(&sets, &old));
                    self.desired.remove(&old, frag.chains.keys(), &mut touched);
                }
                entry.in_desired = false;
            }
            entry.before = None;
            self.health.remove(key);
            let Some(svc) = entry.inputs.svc.as_deref() else {
                if entry.is_empty() {
                    self.entries.remove(key);
                }
                continue;
            };
            let (model, frag) = plan_service(svc, key, &entry.inputs.slices, &self.node_ips);
            let elements = encode(&mut self.codec, &frag.elements);
            drop(frag.elements);
            for (name, rules) in frag.chains {
                self.desired.add_chain(&name, rules, &mut touched);
            }
            for (k, d) in &elements {
                self.desired.add_element(*k, *d, &mut touched);
            }
            new_udp.extend(udp_backends(&sets, &elements));
            new_pairs.extend(pairs(&sets, &elements));
            entry.in_desired = true;
            let health: Vec<HealthCheck> = model.health_checks.into_values().collect();
            if !health.is_empty() {
                self.health.insert(key.clone(), health);
            }
            warnings.extend(model.warnings);
        }
        self.planned_node_ips.clone_from(&self.node_ips);
        let stale_udp_backends: Vec<_> = old_udp.difference(&new_udp).copied().collect();
        let flush_affinity = old_sticky.difference(&new_pairs).next().is_some();
        let services_planned = dirty.len();
        // a full batch is large: free what is no longer needed first
        drop((dirty, old_udp, new_udp, old_sticky, new_pairs));

        if self.need_full {
            return Planned {
                batch: self.full_batch(),
                full: true,
                stale_udp_backends,
                services_planned,
                warnings,
            };
        }
        self.pending = true;
        let table = self.skeleton.table.clone();
        let mut deletes: BTreeMap<u8, Vec<Element>> = BTreeMap::new();
        let mut adds: BTreeMap<u8, Vec<Element>> = BTreeMap::new();
        for (key, have) in touched.elements {
            let want = self.desired.elements.get(&key).map(|(d, _)| *d);
            if want == have {
                continue;
            }
            if let Some(h) = have {
                deletes
                    .entry(key.set)
                    .or_default()
                    .push(self.codec.decode(key, h));
            }
            if let Some(w) = want {
                adds.entry(key.set)
                    .or_default()
                    .push(self.codec.decode(key, w));
            }
        }
        let mut batch = Batch::new();
        if flush_affinity {
            batch.push(Op::FlushSet(table.clone(), "affinity".into()));
        }
        let mut removed_chains = Vec::new();
        for (name, existed) in touched.chains {
            match (existed, self.desired.chains.get(&name)) {
                (false, Some((rules, _))) => {
                    batch.push(Op::AddChain(table.clone(), Chain::regular(name.clone())));
                    for r in rules {
                        batch.push(Op::AddRule(table.clone(), name.clone(), r.clone()));
                    }
                }
                (true, None) => removed_chains.push(name),
                _ => {}
            }
        }
        for (set, els) in deletes {
            batch.push(Op::DeleteElements(table.clone(), self.set_def(set), els));
        }
        for (set, els) in adds {
            batch.push(Op::AddElements(table.clone(), self.set_def(set), els));
        }
        for name in removed_chains {
            batch.push(Op::FlushChain(table.clone(), name.clone()));
            batch.push(Op::DeleteChain(table.clone(), name));
        }
        Planned {
            batch,
            full: false,
            stale_udp_backends,
            services_planned,
            warnings,
        }
    }

    /// Records that the kernel accepted `planned`: the desired content is now the
    /// applied one.
    pub fn commit(&mut self, planned: Planned) {
        if planned.full {
            self.need_full = false;
        }
        self.pending = false;
    }

    /// The kernel refused `planned`: the next sync replaces the whole table.
    pub fn failed(&mut self, _planned: Planned) {
        self.need_full = true;
        self.pending = false;
    }

    /// The whole desired table (for a full replace, and for tests).
    pub fn desired_state(&self) -> TableState {
        let mut t = self.skeleton.clone();
        for (key, (data, _)) in &self.desired.elements {
            t.insert_element(self.codec.set_name(*key), self.codec.decode(*key, *data));
        }
        for (name, (rules, _)) in &self.desired.chains {
            t.add_chain(Chain::regular(name.clone()), rules.clone());
        }
        t
    }

    /// `full_replace(&self.desired_state())`, without building that state: the
    /// skeleton and the chains go through `full_replace`, and each set's elements,
    /// in key order as a `TableState` holds them, are decoded once into the
    /// `AddElements` that follows its `AddSet`.
    fn full_batch(&self) -> Batch {
        let mut t = self.skeleton.clone();
        for (name, (rules, _)) in &self.desired.chains {
            t.add_chain(Chain::regular(name.clone()), rules.clone());
        }
        let skeleton = podnet_linux::nft::full_replace(&t);
        drop(t);
        let mut batch = Batch::new();
        batch.ops.reserve(skeleton.ops.len());
        let mut ops = skeleton.ops.into_iter().peekable();
        while let Some(op) = ops.next() {
            let Op::AddSet(table, set) = &op else {
                batch.push(op);
                continue;
            };
            // this set's elements (one pass over the map per set: only one set's
            // keys are held at a time)
            let i = self.codec.set_index(&set.name);
            let mut mine: Vec<(Key, Data)> = self
                .desired
                .elements
                .iter()
                .filter(|(k, _)| k.set == i)
                .map(|(k, (d, _))| (*k, *d))
                .collect();
            if mine.is_empty() {
                batch.push(op);
                continue;
            }
            let (table, set) = (table.clone(), set.clone());
            batch.push(op);
            mine.sort_unstable_by_key(|(k, _)| *k);
            let mut elements: Vec<Element> = mine
                .iter()
                .map(|(k, d)| self.codec.decode(*k, *d))
                .collect();
            drop(mine);
            // the skeleton's own elements of this set, if any; the desired ones win
            if let Some(Op::AddElements(_, s, _)) = ops.peek() {
                if s.name == set.name {
                    if let Some(Op::AddElements(_, _, own)) = ops.next() {
                        let mut merged: BTreeMap<Vec<Value>, Element> =
                            own.into_iter().map(|e| (e.key.clone(), e)).collect();
                        for e in elements {
                            merged.insert(e.key.clone(), e);
                        }
                        elements = merged.into_values().collect();
                    }
                }
            }
            batch.push(Op::AddElements(table, set, elements));
        }
        batch
    }

    fn set_def(&self, set: u8) -> Set {
        self.codec.sets[usize::from(set)].set.clone()
    }
}

/// The model and fragment of one service.
fn plan_service(
    svc: &ServiceInput,
    key: &ServiceKey,
    slices: &[(Box<str>, SliceInput)],
    node_ips: &[Ipv4Addr],
) -> (crate::model::ProxyModel, crate::ruleset::Fragment) {
    let slices: Vec<&SliceInput> = slices.iter().map(|(_, s)| s).collect();
    let model = build_service_input(svc, &key.0, &key.1, &slices, node_ips);
    let frag = fragment(&model);
    (model, frag)
}

fn encode(codec: &mut Codec, elements: &[(&'static str, Element)]) -> Vec<(Key, Data)> {
    elements
        .iter()
        .map(|(set, e)| codec.encode(set, e))
        .collect()
}

fn service_key(svc: &Service) -> ServiceKey {
    (
        svc.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        svc.metadata.name.clone().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests;
