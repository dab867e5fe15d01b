//! The reference-counted desired content of the table, and what a plan touched.

use std::collections::{BTreeMap, HashMap};

use podnet_linux::nft::Rule;

use super::codec::{Data, Key};

/// Reference-counted desired content. While no plan is pending and the last commit
/// succeeded, this is also what the kernel holds.
#[derive(Debug, Default)]
pub(super) struct Desired {
    pub(super) elements: HashMap<Key, (Data, u32)>,
    pub(super) chains: HashMap<String, (Vec<Rule>, u32)>,
}

/// The keys and chains a plan touched, with their content before it (= applied).
#[derive(Debug, Default)]
pub(super) struct Touched {
    /// A full replace needs no difference: don't record.
    pub(super) skip: bool,
    pub(super) elements: BTreeMap<Key, Option<Data>>,
    pub(super) chains: BTreeMap<String, bool>,
}

impl Desired {
    pub(super) fn touch(&self, key: Key, touched: &mut Touched) {
        if !touched.skip {
            touched
                .elements
                .entry(key)
                .or_insert_with(|| self.elements.get(&key).map(|(d, _)| *d));
        }
    }

    pub(super) fn touch_chain(&self, name: &str, touched: &mut Touched) {
        if !touched.skip && !touched.chains.contains_key(name) {
            touched
                .chains
                .insert(name.to_string(), self.chains.contains_key(name));
        }
    }

    pub(super) fn add_element(&mut self, key: Key, data: Data, touched: &mut Touched) {
        self.touch(key, touched);
        self.elements.entry(key).or_insert((data, 0)).1 += 1;
    }

    pub(super) fn add_chain(&mut self, name: &str, rules: Vec<Rule>, touched: &mut Touched) {
        self.touch_chain(name, touched);
        match self.chains.get_mut(name) {
            Some(slot) => slot.1 += 1,
            None => {
                self.chains.insert(name.to_string(), (rules, 1));
            }
        }
    }

    /// Takes back what one service added.
    pub(super) fn remove<'a>(
        &mut self,
        elements: &[(Key, Data)],
        chains: impl Iterator<Item = &'a String>,
        touched: &mut Touched,
    ) {
        for (key, _) in elements {
            self.touch(*key, touched);
            if let Some(slot) = self.elements.get_mut(key) {
                slot.1 -= 1;
                if slot.1 == 0 {
                    self.elements.remove(key);
                }
            }
        }
        for name in chains {
            self.touch_chain(name, touched);
            if let Some(slot) = self.chains.get_mut(name) {
                slot.1 -= 1;
                if slot.1 == 0 {
                    self.chains.remove(name);
                }
            }
        }
    }
}
