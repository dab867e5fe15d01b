//! Write transactions: one `BEGIN IMMEDIATE` per store transaction, one revision for
//! all of its changes, a log row per change.

use std::cmp::Ordering;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::read::{self, KIND_DELETE, KIND_PUT};
use super::schema::DbError;
use crate::api::{
    Compare, CompareOp, KeyValue, LeaseId, Op, OpResult, Revision, StoreError, Target, Txn,
};

/// Wall-clock milliseconds since the Unix epoch (lease expiry is shared by processes).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An open transaction. Changes get revision `base + 1`; the revision is only bumped
/// at commit when something changed.
pub(crate) struct WriteTxn<'c> {
    tx: Transaction<'c>,
    base: Revision,
    compacted: Revision,
    /// Changes so far (the next change's sequence number).
    seq: i64,
    now_ms: i64,
}

impl<'c> WriteTxn<'c> {
    /// Takes the database write lock (waiting for other processes).
    pub fn begin(conn: &'c mut Connection) -> Result<Self, DbError> {
        Self::with(conn, TransactionBehavior::Immediate)
    }

    /// A read-only snapshot (no write lock); writing through it is a bug.
    pub fn begin_read(conn: &'c mut Connection) -> Result<Self, DbError> {
        Self::with(conn, TransactionBehavior::Deferred)
    }

    fn with(conn: &'c mut Connection, behavior: TransactionBehavior) -> Result<Self, DbError> {
        let tx = conn.transaction_with_behavior(behavior)?;
        let (base, compacted) = read::meta(&tx)?;
        Ok(WriteTxn {
            tx,
            base,
            compacted,
            seq: 0,
            now_ms: now_ms(),
        })
    }

    /// The store revision when the transaction began.
    pub fn base(&self) -> Revision {
        self.base
    }

    pub fn compacted(&self) -> Revision {
        self.compacted
    }

    fn rev(&self) -> Revision {
        self.base + 1
    }

    pub fn get(&self, key: &str) -> Result<Option<KeyValue>, DbError> {
        Ok(read::get_kv(&self.tx, key)?)
    }

    pub fn range(&self, prefix: &str) -> Result<Vec<KeyValue>, DbError> {
        Ok(read::range_kvs(&self.tx, prefix)?)
    }

    /// Whether `lease` exists and has not expired.
    pub fn lease_alive(&self, lease: LeaseId) -> Result<bool, DbError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT expires_at_ms FROM leases WHERE id = ?1")?;
        let expires: Option<i64> = stmt.query_row([lease], |r| r.get(0)).optional()?;
        Ok(expires.is_some_and(|at| at > self.now_ms))
    }

    fn log(
        &mut self,
        kind: i64,
        kv: (&str, &[u8], Revision, i64, LeaseId),
        prev: Option<&KeyValue>,
    ) -> Result<(), DbError> {
        let (key, value, create_rev, version, lease) = kv;
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO log (rev, seq, kind, key, value, create_rev, version, lease, \
               prev_value, prev_create_rev, prev_mod_rev, prev_version, prev_lease) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        stmt.execute(params![
            self.base + 1,
            self.seq,
            kind,
            key.as_bytes(),
            value,
            create_rev,
            version,
            lease,
            prev.map(|p| p.value.as_slice()),
            prev.map(|p| p.create_revision),
            prev.map(|p| p.mod_revision),
            prev.map(|p| p.version),
            prev.map(|p| p.lease),
        ])?;
        self.seq += 1;
        Ok(())
    }

    pub fn put(&mut self, key: &str, value: &[u8], lease: LeaseId) -> Result<(), DbError> {
        if lease != 0 && !self.lease_alive(lease)? {
            return Err(StoreError::LeaseNotFound(lease).into());
        }
        let prev = self.get(key)?;
        let (create_rev, version) = match &prev {
            Some(p) => (p.create_revision, p.version + 1),
            None => (self.rev(), 1),
        };
        let mut stmt = self.tx.prepare_cached(
            "INSERT OR REPLACE INTO kv (key, value, create_rev, mod_rev, version, lease) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        stmt.execute(params![
            key.as_bytes(),
            value,
            create_rev,
            self.rev(),
            version,
            lease
        ])?;
        drop(stmt);
        self.log(
            KIND_PUT,
            (key, value, create_rev, version, lease),
            prev.as_ref(),
        )
    }

    /// Deletes `key`; the value it had, when it existed.
    pub fn delete(&mut self, key: &str) -> Result<Option<KeyValue>, DbError> {
        let Some(prev) = self.get(key)? else {
            return Ok(None);
        };
        self.delete_known(&prev)?;
        Ok(Some(prev))
    }

    fn delete_known(&mut self, prev: &KeyValue) -> Result<(), DbError> {
        let mut stmt = self.tx.prepare_cached("DELETE FROM kv WHERE key = ?1")?;
        stmt.execute([prev.key.as_bytes()])?;
        drop(stmt);
        self.log(KIND_DELETE, (&prev.key, &[], 0, 0, 0), Some(prev))
    }

    pub fn delete_prefix(&mut self, prefix: &str) -> Result<usize, DbError> {
        let kvs = self.range(prefix)?;
        for kv in &kvs {
            self.delete_known(kv)?;
        }
        Ok(kvs.len())
    }

    /// etcd's comparison rules: a missing key has revisions and version 0, and a value
    /// comparison on a missing key is always false.
    pub fn compare(&self, c: &Compare) -> Result<bool, DbError> {
        let kv = self.get(&c.key)?;
        let ord = match (&c.target, &kv) {
            (Target::Value(_), None) => return Ok(false),
            (Target::Value(v), Some(kv)) => kv.value.as_slice().cmp(v.as_slice()),
            (Target::ModRevision(r), _) => kv.as_ref().map_or(0, |k| k.mod_revision).cmp(r),
            (Target::CreateRevision(r), _) => kv.as_ref().map_or(0, |k| k.create_revision).cmp(r),
            (Target::Version(v), _) => kv.as_ref().map_or(0, |k| k.version).cmp(v),
        };
        Ok(match c.op {
            CompareOp::Equal => ord == Ordering::Equal,
            CompareOp::NotEqual => ord != Ordering::Equal,
            CompareOp::Less => ord == Ordering::Less,
            CompareOp::Greater => ord == Ordering::Greater,
        })
    }

    /// Runs a store transaction's compares and the branch they select.
    pub fn txn(&mut self, txn: &Txn) -> Result<(bool, Vec<OpResult>), DbError> {
        let mut ok = true;
        for c in &txn.compare {
            if !self.compare(c)? {
                ok = false;
                break;
            }
        }
        let ops = if ok { &txn.success } else { &txn.failure };
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(match op {
                Op::Put { key, value, lease } => {
                    self.put(key, value, *lease)?;
                    OpResult::Put
                }
                Op::Delete { key } => OpResult::Delete(self.delete(key)?.is_some()),
                Op::Get { key } => OpResult::Get(self.get(key)?),
            });
        }
        Ok((ok, results))
    }

    /// Ends `lease` and deletes its keys; false when there was no such lease.
    pub fn revoke(&mut self, lease: LeaseId) -> Result<bool, DbError> {
        let mut stmt = self.tx.prepare_cached("DELETE FROM leases WHERE id = ?1")?;
        let existed = stmt.execute([lease])? > 0;
        drop(stmt);
        if existed {
            for key in read::lease_keys(&self.tx, lease)? {
                self.delete(&key)?;
            }
        }
        Ok(existed)
    }

    /// Revokes `lease` if it is (still) expired: another process may have renewed or
    /// revoked it since we looked.
    pub fn expire(&mut self, lease: LeaseId) -> Result<bool, DbError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT expires_at_ms FROM leases WHERE id = ?1")?;
        let expires: Option<i64> = stmt.query_row([lease], |r| r.get(0)).optional()?;
        drop(stmt);
        match expires {
            Some(at) if at <= self.now_ms => self.revoke(lease),
            _ => Ok(false),
        }
    }

    /// Drops the log before `rev` (`compacted` becomes `rev - 1`).
    pub fn compact(&mut self, rev: Revision) -> Result<(), DbError> {
        self.tx
            .prepare_cached("DELETE FROM log WHERE rev < ?1")?
            .execute([rev])?;
        self.tx
            .prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'compacted'")?
            .execute([rev - 1])?;
        self.compacted = rev - 1;
        Ok(())
    }

    /// Commits; returns the store revision after it and whether it changed anything.
    pub fn commit(self) -> Result<(Revision, bool), DbError> {
        let changed = self.seq > 0;
        let rev = if changed {
            self.tx
                .prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'revision'")?
                .execute([self.base + 1])?;
            self.base + 1
        } else {
            self.base
        };
        self.tx.commit()?;
        Ok((rev, changed))
    }
}
