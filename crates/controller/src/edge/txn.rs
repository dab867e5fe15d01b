//! Applying many independent items (each: compares + ops) in few transactions: items
//! are packed into transactions up to the backend's limit, every transaction also
//! checks the leader fence, and a failed transaction is split in halves until the
//! conflicting items are found (the others still commit).

use podnet_store::{Compare, KeyValue, Op, OpResult, Revision, Store, StoreError, Target, Txn};
use std::collections::HashSet;

/// Proof of leadership that every write carries: the leader key still exists with the
/// create revision of this term, so a deposed leader's writes all fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub key: String,
    pub create_rev: Revision,
}

impl Fence {
    fn compare(&self) -> Compare {
        Compare {
            key: self.key.clone(),
            op: podnet_store::CompareOp::Equal,
            target: Target::CreateRevision(self.create_rev),
        }
    }

    fn holds(&self, kv: Option<&KeyValue>) -> bool {
        kv.is_some_and(|kv| kv.create_revision == self.create_rev)
    }
}

/// One unit of change that must commit atomically.
#[derive(Debug)]
pub struct Item<T> {
    pub compares: Vec<Compare>,
    pub ops: Vec<Op>,
    pub tag: T,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("lost leadership: the leader key no longer has this term's create revision")]
    LostLeadership,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of a list of items.
#[derive(Debug)]
pub struct Applied<T> {
    /// Committed, with the revision of their transaction (their keys' mod_revision).
    pub done: Vec<(T, Revision)>,
    /// A compare failed: somebody changed something since it was read.
    pub conflicts: Vec<T>,
}

fn op_key(op: &Op) -> &str {
    match op {
        Op::Put { key, .. } | Op::Delete { key } | Op::Get { key } => key,
    }
}

/// Groups item indices into transactions of at most `max` compares and `max` ops,
/// never writing one key twice in a transaction.
fn pack<T>(items: &[Item<T>], max: usize) -> Vec<Vec<usize>> {
    let max = max.max(2);
    let mut groups = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    let (mut nc, mut no) = (1usize, 0usize);
    let mut keys: HashSet<&str> = HashSet::new();
    for (i, it) in items.iter().enumerate() {
        let clash = it.ops.iter().any(|op| keys.contains(op_key(op)));
        if !cur.is_empty() && (clash || nc + it.compares.len() > max || no + it.ops.len() > max) {
            groups.push(std::mem::take(&mut cur));
            keys.clear();
            nc = 1;
            no = 0;
        }
        nc += it.compares.len();
        no += it.ops.len();
        keys.extend(it.ops.iter().map(op_key));
        cur.push(i);
    }
    if !cur.is_empty() {
        groups.push(cur);
    }
    groups
}

/// Applies `items`; every transaction checks `fence` when given.
pub async fn apply<T>(
    store: &dyn Store,
    fence: Option<&Fence>,
    items: Vec<Item<T>>,
) -> Result<Applied<T>, ApplyError> {
    let max = store.max_txn_ops().min(1024);
    let mut stack: Vec<Vec<usize>> = pack(&items, max);
    stack.reverse();
    let mut done_idx: Vec<(usize, Revision)> = Vec::new();
    let mut conflict_idx: Vec<usize> = Vec::new();
    while let Some(group) = stack.pop() {
        let mut txn = Txn::new();
        if let Some(f) = fence {
            txn.compare.push(f.compare());
            txn.failure.push(Op::get(&f.key));
        }
        for &i in &group {
            txn.compare.extend(items[i].compares.iter().cloned());
            txn.success.extend(items[i].ops.iter().cloned());
        }
        let r = store.txn(txn).await?;
        if r.succeeded {
            done_idx.extend(group.iter().map(|&i| (i, r.revision)));
            continue;
        }
        if let Some(f) = fence {
            let kv = match r.results.first() {
                Some(OpResult::Get(kv)) => kv.as_ref(),
                _ => None,
            };
            if !f.holds(kv) {
                return Err(ApplyError::LostLeadership);
            }
        }
        if group.len() == 1 {
            conflict_idx.push(group[0]);
        } else {
            let mut a = group;
            let b = a.split_off(a.len() / 2);
            stack.push(b);
            stack.push(a);
        }
    }
    let mut slots: Vec<Option<T>> = items.into_iter().map(|it| Some(it.tag)).collect();
    Ok(Applied {
        done: done_idx
            .into_iter()
            .filter_map(|(i, rev)| slots[i].take().map(|t| (t, rev)))
            .collect(),
        conflicts: conflict_idx
            .into_iter()
            .filter_map(|i| slots[i].take())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(compares: usize, keys: &[&str]) -> Item<()> {
        Item {
            compares: (0..compares)
                .map(|i| Compare::absent(format!("c{i}")))
                .collect(),
            ops: keys.iter().map(|k| Op::delete(*k)).collect(),
            tag: (),
        }
    }

    #[test]
    fn packing_respects_limits_and_unique_keys() {
        let items = vec![
            item(2, &["a", "b"]),
            item(2, &["c"]),
            item(1, &["a"]),
            item(5, &["d"]),
        ];
        // fence + 2 + 2 = 5 compares fit in 6; then "a" repeats; then 5 compares alone
        assert_eq!(pack(&items, 6), vec![vec![0, 1], vec![2], vec![3]]);
        assert_eq!(pack(&items, 100), vec![vec![0, 1], vec![2, 3]]);
    }
}
