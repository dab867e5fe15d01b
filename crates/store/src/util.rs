//! Helpers both backends share: key ranges and transaction checks.

use std::collections::HashSet;

use crate::api::{Op, StoreError, Txn};

/// The first key after every key starting with `prefix` (etcd's `range_end` for a
/// prefix), or `None` when the range is unbounded (empty prefix, or only 0xff bytes).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Rejects what etcd rejects before running a transaction: more than `max` compares
/// or ops in a branch, and a key written twice in one branch.
pub(crate) fn check_txn(txn: &Txn, max: usize) -> Result<(), StoreError> {
    let ops = txn
        .compare
        .len()
        .max(txn.success.len())
        .max(txn.failure.len());
    if ops > max {
        return Err(StoreError::TooManyOps { ops, max });
    }
    for branch in [&txn.success, &txn.failure] {
        let mut written = HashSet::new();
        for op in branch {
            let key = match op {
                Op::Put { key, .. } | Op::Delete { key } => key,
                Op::Get { .. } => continue,
            };
            if !written.insert(key.as_str()) {
                return Err(StoreError::Backend(format!(
                    "transaction writes key {key:?} twice in one branch: expected each key at most once"
                )));
            }
        }
    }
    Ok(())
}

/// Whether any branch of `txn` writes.
pub(crate) fn txn_writes(txn: &Txn) -> bool {
    txn.success
        .iter()
        .chain(&txn.failure)
        .any(|op| !matches!(op, Op::Get { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"/a/b/"), Some(b"/a/b0".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }

    #[test]
    fn txn_checks() {
        let ok = Txn::new().and_then([Op::put("a", "1"), Op::get("a")]);
        assert!(check_txn(&ok, 2).is_ok());
        assert!(matches!(
            check_txn(&ok, 1),
            Err(StoreError::TooManyOps { ops: 2, max: 1 })
        ));
        let dup = Txn::new().and_then([Op::put("a", "1"), Op::delete("a")]);
        assert!(check_txn(&dup, 10).is_err());
        let branches = Txn::new()
            .and_then([Op::put("a", "1")])
            .or_else([Op::put("a", "2")]);
        assert!(check_txn(&branches, 10).is_ok());
    }
}
