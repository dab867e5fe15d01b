//! The whole desired (or applied) content of one table.

use std::collections::BTreeMap;

use super::model::{Chain, Element, Set, Table, Value};
use super::rule::Rule;

/// Everything one table holds: chains with their rules, sets and maps with
/// their elements. A planner returns one; [`super::diff`] compares two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableState {
    pub table: Table,
    /// By name.
    pub chains: BTreeMap<String, ChainState>,
    /// By name.
    pub sets: BTreeMap<String, SetState>,
}

/// A chain and its rules, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChainState {
    pub chain: Chain,
    pub rules: Vec<Rule>,
}

/// A set or map and its elements, keyed by [`Element::key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetState {
    pub set: Set,
    pub elements: BTreeMap<Vec<Value>, Element>,
}

impl SetState {
    pub fn new(set: Set) -> SetState {
        SetState {
            set,
            elements: BTreeMap::new(),
        }
    }

    /// Insert (or replace) an element, keyed by its key.
    pub fn insert(&mut self, element: Element) {
        self.elements.insert(element.key.clone(), element);
    }
}

impl TableState {
    /// An empty table.
    pub fn new(table: Table) -> TableState {
        TableState {
            table,
            chains: BTreeMap::new(),
            sets: BTreeMap::new(),
        }
    }

    /// Add (or replace) a chain with its rules.
    pub fn add_chain(&mut self, chain: Chain, rules: Vec<Rule>) -> &mut ChainState {
        let name = chain.name.clone();
        self.chains
            .insert(name.clone(), ChainState { chain, rules });
        self.chains.get_mut(&name).expect("just inserted")
    }

    /// Append a rule to an existing chain; panics when the chain was not added.
    pub fn push_rule(&mut self, chain: &str, rule: Rule) {
        self.chains
            .get_mut(chain)
            .unwrap_or_else(|| panic!("no chain {chain} in table {}", self.table.name))
            .rules
            .push(rule);
    }

    /// Add (or replace) an empty set or map.
    pub fn add_set(&mut self, set: Set) -> &mut SetState {
        let name = set.name.clone();
        self.sets.insert(name.clone(), SetState::new(set));
        self.sets.get_mut(&name).expect("just inserted")
    }

    /// Insert an element into an existing set; panics when the set was not added.
    pub fn insert_element(&mut self, set: &str, element: Element) {
        self.sets
            .get_mut(set)
            .unwrap_or_else(|| panic!("no set {set} in table {}", self.table.name))
            .insert(element);
    }

    /// Number of rules in all chains.
    pub fn rule_count(&self) -> usize {
        self.chains.values().map(|c| c.rules.len()).sum()
    }

    /// Number of elements in all sets.
    pub fn element_count(&self) -> usize {
        self.sets.values().map(|s| s.elements.len()).sum()
    }
}
