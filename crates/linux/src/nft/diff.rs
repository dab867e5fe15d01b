//! Applied state vs desired state: the batch that turns one into the other,
//! and the [`Applier`] that remembers what the kernel holds.

use std::collections::BTreeMap;

use super::batch::{Batch, Op};
use super::change::{apply_to, change_batch, TableChange};
use super::model::{Element, Value};
use super::socket::{Nft, NftError};
use super::state::{SetState, TableState};

/// The batch that turns `applied` into `desired`.
///
/// - `None` (start, or resync): an atomic replace — add table, delete
///   table, add table with all its content — in one batch, so packets never
///   see a moment without rules and the kernel is never listed.
/// - `Some`: only the difference, in an order the kernel accepts: new
///   chains; new sets with their elements; element deletes then adds in
///   kept sets (a changed element is deleted and re-added); chains whose
///   rules changed are flushed and refilled, new chains filled; removed
///   chains flushed; removed sets deleted; removed chains deleted. A chain
///   or set whose *definition* changed (hook, priority, key type, flags,
///   ...) makes it a full replace.
pub fn diff(applied: Option<&TableState>, desired: &TableState) -> Batch {
    match applied {
        Some(applied) if incremental_possible(applied, desired) => incremental(applied, desired),
        _ => full_replace(desired),
    }
}

fn incremental_possible(applied: &TableState, desired: &TableState) -> bool {
    applied.table == desired.table
        && desired.chains.iter().all(|(name, c)| {
            applied
                .chains
                .get(name)
                .is_none_or(|old| old.chain == c.chain)
        })
        && desired
            .sets
            .iter()
            .all(|(name, s)| applied.sets.get(name).is_none_or(|old| old.set == s.set))
}

/// The whole table, replacing whatever the kernel holds under its name.
pub fn full_replace(desired: &TableState) -> Batch {
    let t = &desired.table;
    let mut b = Batch::new();
    b.push(Op::AddTable(t.clone()));
    b.push(Op::DeleteTable(t.clone()));
    b.push(Op::AddTable(t.clone()));
    for c in desired.chains.values() {
        b.push(Op::AddChain(t.clone(), c.chain.clone()));
    }
    for s in desired.sets.values() {
        add_set(&mut b, desired, s);
    }
    for c in desired.chains.values() {
        for r in &c.rules {
            b.push(Op::AddRule(t.clone(), c.chain.name.clone(), r.clone()));
        }
    }
    b
}

fn add_set(b: &mut Batch, desired: &TableState, s: &SetState) {
    b.push(Op::AddSet(desired.table.clone(), s.set.clone()));
    if !s.elements.is_empty() {
        let elems = s.elements.values().cloned().collect();
        b.push(Op::AddElements(desired.table.clone(), s.set.clone(), elems));
    }
}

fn incremental(applied: &TableState, desired: &TableState) -> Batch {
    let t = &desired.table;
    let mut b = Batch::new();
    for c in desired.chains.values() {
        if !applied.chains.contains_key(&c.chain.name) {
            b.push(Op::AddChain(t.clone(), c.chain.clone()));
        }
    }
    for s in desired.sets.values() {
        match applied.sets.get(&s.set.name) {
            None => add_set(&mut b, desired, s),
            Some(old) => {
                let (dels, adds) = element_changes(&old.elements, &s.elements);
                if !dels.is_empty() {
                    b.push(Op::DeleteElements(t.clone(), s.set.clone(), dels));
                }
                if !adds.is_empty() {
                    b.push(Op::AddElements(t.clone(), s.set.clone(), adds));
                }
            }
        }
    }
    for c in desired.chains.values() {
        match applied.chains.get(&c.chain.name) {
            Some(old) if old.rules == c.rules => {}
            old => {
                if old.is_some_and(|old| !old.rules.is_empty()) {
                    b.push(Op::FlushChain(t.clone(), c.chain.name.clone()));
                }
                for r in &c.rules {
                    b.push(Op::AddRule(t.clone(), c.chain.name.clone(), r.clone()));
                }
            }
        }
    }
    let removed_chains: Vec<&String> = applied
        .chains
        .keys()
        .filter(|name| !desired.chains.contains_key(*name))
        .collect();
    for name in &removed_chains {
        if !applied.chains[*name].rules.is_empty() {
            b.push(Op::FlushChain(t.clone(), (*name).clone()));
        }
    }
    for name in applied.sets.keys() {
        if !desired.sets.contains_key(name) {
            b.push(Op::DeleteSet(t.clone(), name.clone()));
        }
    }
    for name in removed_chains {
        b.push(Op::DeleteChain(t.clone(), name.clone()));
    }
    b
}

/// Elements to delete (gone or changed) and to add (new or changed), by a
/// merge walk over both sorted maps.
fn element_changes(
    old: &BTreeMap<Vec<Value>, Element>,
    new: &BTreeMap<Vec<Value>, Element>,
) -> (Vec<Element>, Vec<Element>) {
    let (mut dels, mut adds) = (Vec::new(), Vec::new());
    let mut a = old.iter().peekable();
    let mut b = new.iter().peekable();
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some((_, e)), None) => {
                dels.push((*e).clone());
                a.next();
            }
            (None, Some((_, e))) => {
                adds.push((*e).clone());
                b.next();
            }
            (Some((ka, ea)), Some((kb, eb))) => match ka.cmp(kb) {
                std::cmp::Ordering::Less => {
                    dels.push((*ea).clone());
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    adds.push((*eb).clone());
                    b.next();
                }
                std::cmp::Ordering::Equal => {
                    if ea != eb {
                        dels.push((*ea).clone());
                        adds.push((*eb).clone());
                    }
                    a.next();
                    b.next();
                }
            },
        }
    }
    (dels, adds)
}

/// What one [`Applier::apply`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// A full replace (start, resync, definition change, earlier failure).
    pub full: bool,
    pub ops: usize,
    /// Netlink messages sent (batch begin and end included).
    pub messages: usize,
    pub bytes: usize,
    pub rules_added: usize,
    pub chains_flushed: usize,
    pub elements_added: usize,
    pub elements_deleted: usize,
}

impl Stats {
    fn of(batch: &Batch, full: bool) -> Stats {
        let mut s = Stats {
            full,
            ops: batch.ops.len(),
            ..Stats::default()
        };
        for op in &batch.ops {
            match op {
                Op::AddRule(..) => s.rules_added += 1,
                Op::FlushChain(..) => s.chains_flushed += 1,
                Op::AddElements(_, _, e) => s.elements_added += e.len(),
                Op::DeleteElements(_, _, e) => s.elements_deleted += e.len(),
                _ => {}
            }
        }
        s
    }
}

/// Keeps the state of one table as last committed, so that the next apply
/// sends only the difference. The state is kept only after a successful
/// commit; after a failure it is forgotten and the next apply replaces the
/// whole table.
#[derive(Debug, Default)]
pub struct Applier {
    applied: Option<TableState>,
    last: Stats,
}

impl Applier {
    pub fn new() -> Applier {
        Applier::default()
    }

    /// What the kernel holds, as far as this applier knows.
    pub fn applied(&self) -> Option<&TableState> {
        self.applied.as_ref()
    }

    /// Forget the applied state: the next apply is a full replace (resync).
    pub fn forget(&mut self) {
        self.applied = None;
    }

    /// Make the kernel's table equal `desired`, in one transaction: a full
    /// replace when nothing is known (start, after an error, after
    /// [`Applier::forget`]), otherwise only the difference ([`diff`]). Costs
    /// one walk over both states; planners that know what changed can use
    /// [`Applier::apply_change`] instead.
    pub fn apply(&mut self, nft: &Nft, desired: TableState) -> Result<Stats, NftError> {
        let (batch, full) = match &self.applied {
            Some(applied) if incremental_possible(applied, &desired) => {
                (incremental(applied, &desired), false)
            }
            _ => (full_replace(&desired), true),
        };
        self.commit(nft, &batch, full)?;
        let stats = self.last;
        self.applied = Some(desired);
        Ok(stats)
    }

    /// Apply a change to the applied state, in one transaction, at a cost
    /// that depends on the change only. Needs an applied state (a first
    /// [`Applier::apply`]); after any error the state is forgotten and the
    /// caller applies its full desired state.
    pub fn apply_change(&mut self, nft: &Nft, change: TableChange) -> Result<Stats, NftError> {
        let Some(applied) = &self.applied else {
            return Err(NftError::NotIncremental(
                "nothing applied yet (or forgotten after an error)".into(),
            ));
        };
        let batch = change_batch(applied, &change).map_err(|why| {
            self.applied = None;
            NftError::NotIncremental(why)
        })?;
        self.commit(nft, &batch, false)?;
        let stats = self.last;
        if let Some(applied) = &mut self.applied {
            apply_to(applied, change);
        }
        Ok(stats)
    }

    fn commit(&mut self, nft: &Nft, batch: &Batch, full: bool) -> Result<(), NftError> {
        let mut stats = Stats::of(batch, full);
        match nft.commit(batch) {
            Ok(sent) => {
                stats.messages = sent.messages;
                stats.bytes = sent.bytes;
                self.last = stats;
                Ok(())
            }
            Err(e) => {
                self.applied = None;
                Err(e)
            }
        }
    }
}
