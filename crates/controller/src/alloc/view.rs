//! The allocations the controller knows of (from its watch on the allocation prefix,
//! plus its own committed writes), indexed by item and by owner, and the claims made
//! by the batch being planned (so that one batch never hands one item out twice).

use std::collections::{HashMap, HashSet};

use podnet_store::Revision;

use super::key::{AllocKey, Owner};
use crate::small::SmallSet;

/// One allocation key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub owner: Owner,
    /// `mod_revision` of the allocation key.
    pub rev: Revision,
}

/// What [`Allocations::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Already allocated to this owner.
    Held,
    /// Free: the caller creates the key (now reserved for this batch).
    New,
    /// Allocated to somebody else.
    Taken(Owner),
    /// Claimed by another object of the batch being planned; try again later.
    Busy,
}

/// Owners are indexed without their uid, so a recreated object finds (and releases)
/// what its predecessor of the same name held.
type OwnerName = (String, Option<String>, String);

fn owner_name(o: &Owner) -> OwnerName {
    (o.kind.clone(), o.namespace.clone(), o.name.clone())
}

#[derive(Debug, Default)]
pub struct Allocations {
    by_key: HashMap<AllocKey, Allocation>,
    by_owner: HashMap<OwnerName, SmallSet<AllocKey>>,
    pending: HashSet<AllocKey>,
}

impl Allocations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Replaces everything (after a relist).
    pub fn reset(&mut self, all: impl IntoIterator<Item = (AllocKey, Allocation)>) {
        self.by_key.clear();
        self.by_owner.clear();
        for (k, a) in all {
            self.insert(k, a);
        }
    }

    /// Records a stored allocation; ignored when older than what is known.
    /// Returns whether anything changed.
    pub fn insert(&mut self, key: AllocKey, alloc: Allocation) -> bool {
        if let Some(old) = self.by_key.get(&key) {
            if old.rev >= alloc.rev && old.rev != 0 {
                return false;
            }
            let old_owner = owner_name(&old.owner);
            self.unindex(&old_owner, key);
        }
        self.by_owner
            .entry(owner_name(&alloc.owner))
            .or_default()
            .insert(key);
        self.by_key.insert(key, alloc);
        true
    }

    /// Forgets a deleted allocation; returns what it was.
    pub fn remove(&mut self, key: AllocKey) -> Option<Allocation> {
        let old = self.by_key.remove(&key)?;
        self.unindex(&owner_name(&old.owner), key);
        Some(old)
    }

    fn unindex(&mut self, owner: &OwnerName, key: AllocKey) {
        if let Some(set) = self.by_owner.get_mut(owner) {
            set.remove(&key);
            if set.is_empty() {
                self.by_owner.remove(owner);
            }
        }
    }

    pub fn get(&self, key: &AllocKey) -> Option<&Allocation> {
        self.by_key.get(key)
    }

    /// Every allocation key, for a full garbage collection pass.
    pub fn keys(&self) -> impl Iterator<Item = &AllocKey> {
        self.by_key.keys()
    }

    /// The items held by an object of this kind and name (any uid).
    pub fn owned_by<'a>(
        &'a self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> impl Iterator<Item = (&'a AllocKey, &'a Allocation)> + 'a {
        let k = (
            kind.to_string(),
            namespace.map(str::to_string),
            name.to_string(),
        );
        self.by_owner
            .get(&k)
            .into_iter()
            .flatten()
            .filter_map(|key| self.by_key.get(key).map(|a| (key, a)))
    }

    /// Neither allocated nor claimed by the batch being planned.
    pub fn is_free(&self, key: &AllocKey) -> bool {
        !self.by_key.contains_key(key) && !self.pending.contains(key)
    }

    /// Whether `owner` may use `key`; reserves it for this batch when free.
    pub fn claim(&mut self, key: AllocKey, owner: &Owner) -> Claim {
        match self.by_key.get(&key) {
            Some(a) if a.owner.same_object(owner) => Claim::Held,
            Some(a) => Claim::Taken(a.owner.clone()),
            None if self.pending.contains(&key) => Claim::Busy,
            None => {
                self.pending.insert(key);
                Claim::New
            }
        }
    }

    /// Gives back a reservation of this batch that will not be written.
    pub fn unreserve(&mut self, key: &AllocKey) {
        self.pending.remove(key);
    }

    /// Ends a batch: forgets its reservations (what was written comes back as
    /// allocations through [`Allocations::insert`]).
    pub fn end_batch(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::key::Protocol;
    use podnet_model::Kind;

    fn owner(name: &str, uid: &str) -> Owner {
        Owner::new(Kind::Service, Some("default"), name, uid)
    }

    #[test]
    fn claims_and_ownership() {
        let mut a = Allocations::new();
        let k = AllocKey::NodePort(Protocol::Tcp, 30000);
        assert_eq!(a.claim(k, &owner("a", "1")), Claim::New);
        assert_eq!(a.claim(k, &owner("b", "2")), Claim::Busy);
        a.end_batch();
        a.insert(
            k,
            Allocation {
                owner: owner("a", "1"),
                rev: 5,
            },
        );
        assert_eq!(a.claim(k, &owner("a", "1")), Claim::Held);
        assert_eq!(a.claim(k, &owner("b", "2")), Claim::Taken(owner("a", "1")));
        assert_eq!(a.owned_by("Service", Some("default"), "a").count(), 1);
        // an older revision never replaces a newer one
        assert!(!a.insert(
            k,
            Allocation {
                owner: owner("b", "2"),
                rev: 4
            }
        ));
        assert_eq!(a.remove(k).map(|x| x.rev), Some(5));
        assert_eq!(a.owned_by("Service", Some("default"), "a").count(), 0);
        assert!(a.is_free(&k));
    }
}
