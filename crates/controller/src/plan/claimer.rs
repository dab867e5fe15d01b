//! Claims one plan makes against the allocation view: what it keeps, what it creates,
//! and whether it must wait for another object of the batch.

use std::collections::BTreeSet;

use crate::alloc::{AllocKey, Allocations, Claim, Owner};

pub(crate) struct Claimer<'a> {
    pub allocs: &'a mut Allocations,
    pub owner: Owner,
    /// Keys this plan creates.
    pub new: Vec<AllocKey>,
    /// Keys this plan holds afterwards (new and already held).
    pub keep: BTreeSet<AllocKey>,
    /// Another object of this batch reserved something this plan needs.
    pub busy: bool,
}

impl<'a> Claimer<'a> {
    pub fn new(allocs: &'a mut Allocations, owner: Owner) -> Self {
        Claimer {
            allocs,
            owner,
            new: Vec::new(),
            keep: BTreeSet::new(),
            busy: false,
        }
    }

    /// Takes `key` for the owner. `Err(Some(holder))` when somebody else holds it,
    /// `Err(None)` when it is reserved by the batch (and the plan is then busy).
    pub fn claim(&mut self, key: AllocKey) -> Result<(), Option<Owner>> {
        if self.keep.contains(&key) {
            return Ok(());
        }
        match self.allocs.claim(key, &self.owner) {
            Claim::Held => {
                self.keep.insert(key);
                Ok(())
            }
            Claim::New => {
                self.new.push(key);
                self.keep.insert(key);
                Ok(())
            }
            Claim::Taken(o) => Err(Some(o)),
            Claim::Busy => {
                self.busy = true;
                Err(None)
            }
        }
    }

    /// Free for a new claim (neither allocated, reserved, nor taken by this plan).
    pub fn is_free(&self, key: &AllocKey) -> bool {
        !self.keep.contains(key) && self.allocs.is_free(key)
    }

    /// Already held by this owner (same uid) and not yet used by this plan.
    pub fn held_unused(&self, key: &AllocKey) -> bool {
        !self.keep.contains(key)
            && self
                .allocs
                .get(key)
                .is_some_and(|a| a.owner.same_object(&self.owner))
    }

    /// Items of one class the owner (by name) holds in the store.
    pub fn owned(&self, pred: impl Fn(&AllocKey) -> bool) -> Vec<AllocKey> {
        self.allocs
            .owned_by(
                &self.owner.kind,
                self.owner.namespace.as_deref(),
                &self.owner.name,
            )
            .map(|(k, _)| *k)
            .filter(|k| pred(k))
            .collect()
    }

    /// The plan: `object` to write when it changed, the keys this plan creates, and
    /// the held keys of the class `pred` selects that it no longer keeps.
    pub fn finish<T>(
        &mut self,
        owner: Owner,
        object: Option<T>,
        problems: Vec<crate::plan::conditions::Problem>,
        pred: impl Fn(&AllocKey) -> bool,
    ) -> crate::plan::service::AllocPlan<T> {
        let releases = self
            .owned(pred)
            .into_iter()
            .filter(|k| !self.keep.contains(k))
            .filter_map(|k| self.allocs.get(&k).map(|a| (k, a.rev)))
            .collect();
        crate::plan::service::AllocPlan {
            owner,
            object,
            claims: std::mem::take(&mut self.new),
            releases,
            problems,
        }
    }

    /// Gives back this plan's reservations (it will not be written).
    pub fn rollback(&mut self) {
        for k in self.new.drain(..) {
            self.allocs.unreserve(&k);
        }
    }
}
