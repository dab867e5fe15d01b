//! Changes to an applied table, for planners that know what changed: the
//! batch costs O(change × log n), independent of the size of the table
//! (no walk over every element, as [`super::diff`] needs).

use std::collections::BTreeMap;

use super::batch::{Batch, Op};
use super::model::{Element, Set, Value};
use super::state::{ChainState, SetState, TableState};

/// What changes in one table. Applied in this order: new chains, new sets,
/// element removals and upserts, chain contents, removed chains and sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableChange {
    /// New (empty) sets and maps; fill them with `upsert_elements`.
    pub add_sets: Vec<Set>,
    pub remove_sets: Vec<String>,
    /// `(set, element)`: add the element, or replace the element with the
    /// same key (delete + add in the same transaction).
    pub upsert_elements: Vec<(String, Element)>,
    /// `(set, key)`: remove the element with this key, if there is one.
    pub remove_elements: Vec<(String, Vec<Value>)>,
    /// Add a chain, or replace the rules of an existing one (its
    /// definition must not change).
    pub put_chains: Vec<ChainState>,
    pub remove_chains: Vec<String>,
}

impl TableChange {
    pub fn is_empty(&self) -> bool {
        *self == TableChange::default()
    }
}

/// Per set: key -> the new element (`None`: removed). Last change wins.
type ElementEdits<'a> = BTreeMap<&'a str, BTreeMap<&'a [Value], Option<&'a Element>>>;

fn element_edits(change: &TableChange) -> ElementEdits<'_> {
    let mut edits: ElementEdits<'_> = BTreeMap::new();
    for (set, key) in &change.remove_elements {
        edits.entry(set).or_default().insert(key, None);
    }
    for (set, e) in &change.upsert_elements {
        edits.entry(set).or_default().insert(&e.key, Some(e));
    }
    edits
}

/// The batch that applies `change` to `applied`, or why it cannot be done
/// incrementally.
pub(crate) fn change_batch(applied: &TableState, change: &TableChange) -> Result<Batch, String> {
    let t = &applied.table;
    let mut b = Batch::new();
    for c in &change.put_chains {
        match applied.chains.get(&c.chain.name) {
            None => {
                b.push(Op::AddChain(t.clone(), c.chain.clone()));
            }
            Some(old) if old.chain != c.chain => {
                return Err(format!("chain {} changes its definition", c.chain.name));
            }
            Some(_) => {}
        }
    }
    let mut new_sets: BTreeMap<&str, &Set> = BTreeMap::new();
    for s in &change.add_sets {
        match applied.sets.get(&s.name) {
            None => {
                b.push(Op::AddSet(t.clone(), s.clone()));
                new_sets.insert(&s.name, s);
            }
            Some(old) if old.set != *s => {
                return Err(format!("set {} changes its definition", s.name));
            }
            Some(_) => {}
        }
    }
    for (name, edits) in element_edits(change) {
        let (set, old) = match (applied.sets.get(name), new_sets.get(name)) {
            (Some(old), _) => (&old.set, Some(old)),
            (None, Some(set)) => (*set, None),
            (None, None) => return Err(format!("no set {name} for element changes")),
        };
        let (mut dels, mut adds) = (Vec::new(), Vec::new());
        for (key, new) in edits {
            let current = old.and_then(|o| o.elements.get(key));
            match (current, new) {
                (Some(cur), Some(new)) if cur == new => {}
                (cur, new) => {
                    dels.extend(cur.cloned());
                    adds.extend(new.cloned());
                }
            }
        }
        if !dels.is_empty() {
            b.push(Op::DeleteElements(t.clone(), set.clone(), dels));
        }
        if !adds.is_empty() {
            b.push(Op::AddElements(t.clone(), set.clone(), adds));
        }
    }
    for c in &change.put_chains {
        let old = applied.chains.get(&c.chain.name);
        if old.is_some_and(|old| old.rules == c.rules) {
            continue;
        }
        if old.is_some_and(|old| !old.rules.is_empty()) {
            b.push(Op::FlushChain(t.clone(), c.chain.name.clone()));
        }
        for r in &c.rules {
            b.push(Op::AddRule(t.clone(), c.chain.name.clone(), r.clone()));
        }
    }
    let removed: Vec<&ChainState> = change
        .remove_chains
        .iter()
        .filter_map(|name| applied.chains.get(name))
        .collect();
    for c in &removed {
        if !c.rules.is_empty() {
            b.push(Op::FlushChain(t.clone(), c.chain.name.clone()));
        }
    }
    for name in &change.remove_sets {
        if applied.sets.contains_key(name) {
            b.push(Op::DeleteSet(t.clone(), name.clone()));
        }
    }
    for c in removed {
        b.push(Op::DeleteChain(t.clone(), c.chain.name.clone()));
    }
    Ok(b)
}

/// Make `state` what the kernel holds after `change` was committed.
pub(crate) fn apply_to(state: &mut TableState, change: TableChange) {
    for s in change.add_sets {
        state
            .sets
            .entry(s.name.clone())
            .or_insert_with(|| SetState::new(s));
    }
    for (set, key) in change.remove_elements {
        if let Some(s) = state.sets.get_mut(&set) {
            s.elements.remove(&key);
        }
    }
    for (set, e) in change.upsert_elements {
        if let Some(s) = state.sets.get_mut(&set) {
            s.insert(e);
        }
    }
    for c in change.put_chains {
        state.chains.insert(c.chain.name.clone(), c);
    }
    for name in change.remove_chains {
        state.chains.remove(&name);
    }
    for name in change.remove_sets {
        state.sets.remove(&name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::model::{DataType, Family, Table, Verdict};
    use crate::nft::{Chain, SetData};

    fn applied() -> TableState {
        let mut st = TableState::new(Table::new(Family::Ip, "t"));
        st.add_set(Set::map("m", vec![DataType::InetService], SetData::Verdict));
        st.insert_element(
            "m",
            Element::verdict(vec![Value::Port(1)], Verdict::Jump("a".into())),
        );
        st.add_chain(Chain::regular("a"), vec![]);
        st
    }

    #[test]
    fn upserts_touch_only_what_differs_and_removals_go_first() {
        let change = TableChange {
            upsert_elements: vec![
                (
                    "m".into(),
                    Element::verdict(vec![Value::Port(1)], Verdict::Jump("a".into())),
                ),
                (
                    "m".into(),
                    Element::verdict(vec![Value::Port(2)], Verdict::Drop),
                ),
            ],
            remove_elements: vec![("m".into(), vec![Value::Port(3)])],
            ..TableChange::default()
        };
        let b = change_batch(&applied(), &change).unwrap();
        assert_eq!(b.ops.len(), 1, "{:?}", b.ops);
        assert!(matches!(&b.ops[0], Op::AddElements(_, _, e) if e.len() == 1));
    }

    #[test]
    fn removing_a_chain_after_its_references() {
        let change = TableChange {
            remove_elements: vec![("m".into(), vec![Value::Port(1)])],
            remove_chains: vec!["a".into()],
            ..TableChange::default()
        };
        let mut st = applied();
        let b = change_batch(&st, &change).unwrap();
        assert!(matches!(&b.ops[0], Op::DeleteElements(..)));
        assert!(matches!(&b.ops[1], Op::DeleteChain(_, c) if c == "a"));
        apply_to(&mut st, change);
        assert!(st.chains.is_empty() && st.sets["m"].elements.is_empty());
    }

    #[test]
    fn definition_changes_are_refused() {
        let change = TableChange {
            add_sets: vec![Set::new("m", vec![DataType::InetService])],
            ..TableChange::default()
        };
        assert!(change_batch(&applied(), &change)
            .unwrap_err()
            .contains("definition"));
    }
}
