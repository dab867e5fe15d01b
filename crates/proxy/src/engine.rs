//! The incremental engine: keeps Services and EndpointSlices, re-plans only the
//! services touched since the last sync, and turns the difference into one nftables
//! batch. The per-packet design (see [`crate::ruleset`]) makes every service's rules
//! a set of map elements plus references to shared chains, so a service's change is
//! the difference of its own fragment: O(changes), whatever the number of services.
//!
//! Elements and chains are reference-counted across services (two services may both
//! add the same hairpin address or use the same balancing chain). The engine keeps
//! what the kernel holds (`applied`) apart from what is wanted; [`Engine::commit`]
//! moves a planned change into `applied` only after the kernel accepted it, and any
//! failure makes the next sync a full, atomic replace.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use podnet_linux::nft::{Batch, Chain, ElemData, Element, Op, Rule, Set, TableState, Value};
use podnet_model::k8s_openapi::api::core::v1::Service;
use podnet_model::k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::model::{build_service, HealthCheck, SERVICE_NAME_LABEL};
use crate::ruleset::{fragment, skeleton, Fragment, RulesetConfig};

/// (namespace, name) of a Service.
pub type ServiceKey = (String, String);

type ElementKey = (&'static str, Vec<Value>);

/// ((frontend address, port), (backend address, port)).
pub type StalePair = ((Ipv4Addr, u16), (Ipv4Addr, u16));

/// Reference-counted desired content.
#[derive(Debug, Default)]
struct Counted {
    elements: HashMap<ElementKey, (Element, usize)>,
    chains: HashMap<String, (Vec<Rule>, usize)>,
}

impl Counted {
    fn add(&mut self, f: &Fragment, touched: &mut Touched) {
        for (set, e) in &f.elements {
            let key = (*set, e.key.clone());
            if !touched.skip {
                touched.elements.insert(key.clone());
            }
            let slot = self.elements.entry(key).or_insert_with(|| (e.clone(), 0));
            slot.1 += 1;
        }
        for (name, rules) in &f.chains {
            let slot = self
                .chains
                .entry(name.clone())
                .or_insert_with(|| (rules.clone(), 0));
            slot.1 += 1;
            if !touched.skip {
                touched.chains.insert(name.clone());
            }
        }
    }

    fn remove(&mut self, f: &Fragment, touched: &mut Touched) {
        for (set, e) in &f.elements {
            let key = (*set, e.key.clone());
            if let Some(slot) = self.elements.get_mut(&key) {
                slot.1 -= 1;
                if slot.1 == 0 {
                    self.elements.remove(&key);
                }
            }
            if !touched.skip {
                touched.elements.insert(key);
            }
        }
        for name in f.chains.keys() {
            if let Some(slot) = self.chains.get_mut(name) {
                slot.1 -= 1;
                if slot.1 == 0 {
                    self.chains.remove(name);
                }
            }
            if !touched.skip {
                touched.chains.insert(name.clone());
            }
        }
    }
}

#[derive(Debug, Default)]
struct Touched {
    /// A full replace needs no difference: don't record (it costs a sorted copy of
    /// every key at start).
    skip: bool,
    elements: BTreeSet<ElementKey>,
    chains: BTreeSet<String>,
}

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
    elements: Vec<(ElementKey, Option<Element>)>,
    chains: Vec<(String, Option<Vec<Rule>>)>,
}

/// The proxy's state for one node.
pub struct Engine {
    cfg: RulesetConfig,
    node: String,
    node_ips: Vec<Ipv4Addr>,
    skeleton: TableState,
    // boxed: a map's slots (and a B-tree node's eleven) hold a pointer, not a
    // kilobyte-sized object each (memory at tens of thousands of services)
    services: HashMap<ServiceKey, Box<Service>>,
    slices: HashMap<ServiceKey, BTreeMap<String, Box<EndpointSlice>>>,
    /// Which service each slice belongs to (a slice's label could change).
    slice_owner: HashMap<(String, String), ServiceKey>,
    fragments: HashMap<ServiceKey, Fragment>,
    health: HashMap<ServiceKey, Vec<HealthCheck>>,
    warnings: HashMap<ServiceKey, Vec<String>>,
    desired: Counted,
    applied_elements: HashMap<ElementKey, Element>,
    applied_chains: HashMap<String, Vec<Rule>>,
    dirty: BTreeSet<ServiceKey>,
    need_full: bool,
}

impl Engine {
    pub fn new(cfg: RulesetConfig, node: &str, node_ips: Vec<Ipv4Addr>) -> Engine {
        Engine {
            skeleton: skeleton(&cfg),
            cfg,
            node: node.to_string(),
            node_ips,
            services: HashMap::new(),
            slices: HashMap::new(),
            slice_owner: HashMap::new(),
            fragments: HashMap::new(),
            health: HashMap::new(),
            warnings: HashMap::new(),
            desired: Counted::default(),
            applied_elements: HashMap::new(),
            applied_chains: HashMap::new(),
            dirty: BTreeSet::new(),
            need_full: true,
        }
    }

    pub fn config(&self) -> &RulesetConfig {
        &self.cfg
    }

    /// NodePorts listen on these; a change re-plans every service.
    pub fn set_node_ips(&mut self, ips: Vec<Ipv4Addr>) {
        if ips != self.node_ips {
            self.node_ips = ips;
            self.dirty.extend(self.services.keys().cloned());
        }
    }

    pub fn upsert_service(&mut self, svc: Service) {
        let key = service_key(&svc);
        if self.services.get(&key).map(|s| &**s) != Some(&svc) {
            self.services.insert(key.clone(), Box::new(svc));
            self.dirty.insert(key);
        }
    }

    pub fn remove_service(&mut self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        if self.services.remove(&key).is_some() {
            self.dirty.insert(key);
        }
    }

    pub fn upsert_slice(&mut self, slice: EndpointSlice) {
        let ns = slice
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = slice.metadata.name.clone().unwrap_or_default();
        self.remove_slice(&ns, &name);
        let Some(svc) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .cloned()
        else {
            return;
        };
        let owner = (ns.clone(), svc);
        self.slice_owner.insert((ns, name.clone()), owner.clone());
        self.slices
            .entry(owner.clone())
            .or_default()
            .insert(name, Box::new(slice));
        self.dirty.insert(owner);
    }

    pub fn remove_slice(&mut self, namespace: &str, name: &str) {
        if let Some(owner) = self
            .slice_owner
            .remove(&(namespace.to_string(), name.to_string()))
        {
            if let Some(m) = self.slices.get_mut(&owner) {
                m.remove(name);
                if m.is_empty() {
                    self.slices.remove(&owner);
                }
            }
            self.dirty.insert(owner);
        }
    }

    /// Forget everything (an informer relisted): callers re-add the current objects.
    pub fn clear_services(&mut self) {
        self.dirty.extend(self.services.keys().cloned());
        self.services.clear();
    }

    pub fn clear_slices(&mut self) {
        self.dirty.extend(self.slices.keys().cloned());
        self.slices.clear();
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

    /// Warnings of the current services (skipped fields), for logs.
    pub fn warnings(&self) -> impl Iterator<Item = &String> {
        self.warnings.values().flatten()
    }

    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// Re-plans the dirty services and returns the batch that brings the kernel from
    /// the applied state to the desired one. Nothing is considered applied until
    /// [`Engine::commit`].
    pub fn plan(&mut self) -> Planned {
        let dirty = std::mem::take(&mut self.dirty);
        let mut touched = Touched {
            skip: self.need_full,
            ..Default::default()
        };
        let mut old_udp: BTreeSet<StalePair> = BTreeSet::new();
        let mut new_udp: BTreeSet<StalePair> = BTreeSet::new();
        // (frontend, backend) pairs of session-affinity frontends before, and all
        // pairs after: a removed pair means remembered clients may point at a gone
        // backend, so the affinity map is flushed (those clients re-balance).
        let mut old_sticky: BTreeSet<Pair> = BTreeSet::new();
        let mut new_pairs: BTreeSet<Pair> = BTreeSet::new();
        for key in &dirty {
            let new = self.services.get(key).map(|svc| {
                let slices: Vec<&EndpointSlice> = self
                    .slices
                    .get(key)
                    .map(|m| m.values().map(|s| &**s).collect())
                    .unwrap_or_default();
                let model = build_service(svc, &slices, &self.node, &self.node_ips);
                (
                    fragment(&model),
                    model.health_checks.into_values().collect::<Vec<_>>(),
                    model.warnings,
                )
            });
            if let Some(old) = self.fragments.remove(key) {
                old_udp.extend(udp_backends(&old));
                old_sticky.extend(sticky_pairs(&old));
                self.desired.remove(&old, &mut touched);
            }
            self.health.remove(key);
            self.warnings.remove(key);
            if let Some((frag, health, warnings)) = new {
                new_udp.extend(udp_backends(&frag));
                new_pairs.extend(pairs(&frag));
                self.desired.add(&frag, &mut touched);
                // kept for the next re-plan of this service, which needs the chain
                // names only (their rules are in `desired`, once per chain)
                let mut frag = frag;
                for rules in frag.chains.values_mut() {
                    *rules = Vec::new();
                }
                self.fragments.insert(key.clone(), frag);
                if !health.is_empty() {
                    self.health.insert(key.clone(), health);
                }
                if !warnings.is_empty() {
                    self.warnings.insert(key.clone(), warnings);
                }
            }
        }
        let stale_udp_backends: Vec<_> = old_udp.difference(&new_udp).copied().collect();
        let flush_affinity = old_sticky.difference(&new_pairs).next().is_some();

        if self.need_full {
            return Planned {
                batch: self.full_batch(),
                full: true,
                stale_udp_backends,
                services_planned: dirty.len(),
                elements: Vec::new(),
                chains: Vec::new(),
            };
        }
        let table = self.skeleton.table.clone();
        let mut elements = Vec::new();
        let mut deletes: BTreeMap<&'static str, Vec<Element>> = BTreeMap::new();
        let mut adds: BTreeMap<&'static str, Vec<Element>> = BTreeMap::new();
        for key in touched.elements {
            let want = self.desired.elements.get(&key).map(|(e, _)| e);
            let have = self.applied_elements.get(&key);
            if want == have {
                continue;
            }
            if let Some(h) = have {
                deletes.entry(key.0).or_default().push(h.clone());
            }
            if let Some(w) = want {
                adds.entry(key.0).or_default().push(w.clone());
            }
            elements.push((key, want.cloned()));
        }
        let mut chains = Vec::new();
        let mut batch = Batch::new();
        if flush_affinity {
            batch.push(Op::FlushSet(table.clone(), "affinity".into()));
        }
        let mut removed_chains = Vec::new();
        for name in touched.chains {
            let want = self.desired.chains.get(&name).map(|(r, _)| r);
            let have = self.applied_chains.get(&name);
            match (have, want) {
                (None, Some(rules)) => {
                    batch.push(Op::AddChain(table.clone(), Chain::regular(name.clone())));
                    for r in rules {
                        batch.push(Op::AddRule(table.clone(), name.clone(), r.clone()));
                    }
                }
                (Some(_), None) => removed_chains.push(name.clone()),
                _ => continue,
            }
            chains.push((name, want.cloned()));
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
            services_planned: dirty.len(),
            elements,
            chains,
        }
    }

    /// Records that the kernel accepted `planned`.
    pub fn commit(&mut self, planned: Planned) {
        if planned.full {
            self.applied_elements = self
                .desired
                .elements
                .iter()
                .map(|(k, (e, _))| (k.clone(), e.clone()))
                .collect();
            self.applied_chains = self
                .desired
                .chains
                .iter()
                .map(|(k, (r, _))| (k.clone(), r.clone()))
                .collect();
            self.need_full = false;
            return;
        }
        for (key, e) in planned.elements {
            match e {
                Some(e) => self.applied_elements.insert(key, e),
                None => self.applied_elements.remove(&key),
            };
        }
        for (name, rules) in planned.chains {
            match rules {
                Some(r) => self.applied_chains.insert(name, r),
                None => self.applied_chains.remove(&name),
            };
        }
    }

    /// The kernel refused `planned`: the next sync replaces the whole table.
    pub fn failed(&mut self, _planned: Planned) {
        self.need_full = true;
    }

    /// The whole desired table (for a full replace, and for tests).
    pub fn desired_state(&self) -> TableState {
        let mut t = self.skeleton.clone();
        for ((set, _), (e, _)) in &self.desired.elements {
            t.insert_element(set, e.clone());
        }
        for (name, (rules, _)) in &self.desired.chains {
            t.add_chain(Chain::regular(name.clone()), rules.clone());
        }
        t
    }

    /// `full_replace(&self.desired_state())`, without building that state: the
    /// skeleton and the chains go through `full_replace`, and each set's elements,
    /// in key order as a `TableState` holds them, are cloned once into the `AddElements`
    /// that follows its `AddSet`.
    fn full_batch(&self) -> Batch {
        let mut t = self.skeleton.clone();
        for (name, (rules, _)) in &self.desired.chains {
            t.add_chain(Chain::regular(name.clone()), rules.clone());
        }
        let mut by_set: HashMap<&str, BTreeMap<&Vec<Value>, &Element>> = HashMap::new();
        for ((set, key), (e, _)) in &self.desired.elements {
            by_set.entry(set).or_default().insert(key, e);
        }
        let skeleton = podnet_linux::nft::full_replace(&t);
        let mut batch = Batch::new();
        batch.ops.reserve(skeleton.ops.len());
        let mut ops = skeleton.ops.into_iter().peekable();
        while let Some(op) = ops.next() {
            let Op::AddSet(table, set) = &op else {
                batch.push(op);
                continue;
            };
            let Some(mut elements) = by_set.remove(set.name.as_str()) else {
                batch.push(op);
                continue;
            };
            let (table, set) = (table.clone(), set.clone());
            batch.push(op);
            // the skeleton's own elements of this set, if any; the desired ones win
            let mut own = Vec::new();
            if let Some(Op::AddElements(_, s, _)) = ops.peek() {
                if s.name == set.name {
                    if let Some(Op::AddElements(_, _, els)) = ops.next() {
                        own = els;
                    }
                }
            }
            for e in &own {
                elements.entry(&e.key).or_insert(e);
            }
            let elements = elements.into_values().cloned().collect();
            batch.push(Op::AddElements(table, set, elements));
        }
        batch
    }

    fn set_def(&self, name: &str) -> Set {
        self.skeleton.sets[name].set.clone()
    }
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

fn is_backend_map(set: &str) -> bool {
    set == "backends" || set == "backends-internal"
}

fn backend_of(e: &Element) -> Option<(Ipv4Addr, u16)> {
    match &e.data {
        Some(ElemData::Values(v)) => match (v.first(), v.get(1)) {
            (Some(Value::Ipv4(ip)), Some(Value::Port(p))) => Some((*ip, *p)),
            _ => None,
        },
        _ => None,
    }
}

/// ((frontend address, protocol, port), (backend address, port)).
type Pair = ((Ipv4Addr, u8, u16), (Ipv4Addr, u16));

/// Every (frontend, backend) pair a fragment balances.
fn pairs(f: &Fragment) -> impl Iterator<Item = Pair> + '_ {
    f.elements
        .iter()
        .filter(|(set, _)| is_backend_map(set))
        .filter_map(|(_, e)| match (&e.key[0], &e.key[1], &e.key[2]) {
            (Value::Ipv4(ip), Value::Proto(p), Value::Port(port)) => {
                Some(((*ip, *p, *port), backend_of(e)?))
            }
            _ => None,
        })
}

/// The pairs of the fragment's session-affinity frontends.
fn sticky_pairs(f: &Fragment) -> Vec<Pair> {
    let sticky: BTreeSet<(Ipv4Addr, u8, u16)> = f
        .elements
        .iter()
        .filter(|(set, _)| *set == "affinity-frontends")
        .filter_map(|(_, e)| match (&e.key[0], &e.key[1], &e.key[2]) {
            (Value::Ipv4(ip), Value::Proto(p), Value::Port(port)) => Some((*ip, *p, *port)),
            _ => None,
        })
        .collect();
    pairs(f).filter(|(fe, _)| sticky.contains(fe)).collect()
}

fn udp_backends(f: &Fragment) -> impl Iterator<Item = StalePair> + '_ {
    f.elements
        .iter()
        .filter(|(set, e)| is_backend_map(set) && e.key.get(1) == Some(&Value::Proto(17)))
        .filter_map(|(_, e)| match (&e.key[0], &e.key[2]) {
            (Value::Ipv4(ip), Value::Port(port)) => Some(((*ip, *port), backend_of(e)?)),
            _ => None,
        })
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
