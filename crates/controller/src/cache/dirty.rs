//! The work queue: keys whose desired state must be recomputed, deduplicated, taken in
//! batches; and keys whose write conflicted, retried after a pause.

use std::collections::BTreeSet;

use super::pods::PodKey;
use super::slices::SvcKey;
use crate::alloc::AllocKey;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dirty {
    /// Allocation and EndpointSlices of these services.
    pub services: BTreeSet<SvcKey>,
    /// Pod CIDRs of these nodes.
    pub nodes: BTreeSet<String>,
    /// Pods to place.
    pub pods: BTreeSet<PodKey>,
    /// Allocations to check for release.
    pub allocs: BTreeSet<AllocKey>,
}

fn take<T: Ord + Clone>(set: &mut BTreeSet<T>, n: usize) -> BTreeSet<T> {
    if set.len() <= n {
        return std::mem::take(set);
    }
    match set.iter().nth(n).cloned() {
        Some(pivot) => {
            let rest = set.split_off(&pivot);
            std::mem::replace(set, rest)
        }
        None => std::mem::take(set),
    }
}

impl Dirty {
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
            && self.nodes.is_empty()
            && self.pods.is_empty()
            && self.allocs.is_empty()
    }

    pub fn len(&self) -> usize {
        self.services.len() + self.nodes.len() + self.pods.len() + self.allocs.len()
    }

    /// Takes at most `n` keys of each class.
    pub fn take_batch(&mut self, n: usize) -> Dirty {
        Dirty {
            services: take(&mut self.services, n),
            nodes: take(&mut self.nodes, n),
            pods: take(&mut self.pods, n),
            allocs: take(&mut self.allocs, n),
        }
    }

    /// Adds every key of `other`.
    pub fn merge(&mut self, other: Dirty) {
        self.services.extend(other.services);
        self.nodes.extend(other.nodes);
        self.pods.extend(other.pods);
        self.allocs.extend(other.allocs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_take_at_most_n_of_each_class_in_order() {
        let mut d = Dirty::default();
        d.nodes.extend((0..5).map(|i| format!("n{i}")));
        d.services.insert(("a".into(), "b".into()));
        let b = d.take_batch(3);
        assert_eq!(
            b.nodes.iter().cloned().collect::<Vec<_>>(),
            ["n0", "n1", "n2"]
        );
        assert_eq!(b.services.len(), 1);
        assert_eq!(d.len(), 2);
        d.merge(b);
        assert_eq!(d.len(), 6);
        let all = d.take_batch(100);
        assert_eq!(all.len(), 6);
        assert!(d.is_empty());
    }
}
