//! Leases and background maintenance: expiry of leases (every process that opens the
//! store takes part; the check is repeated inside the write transaction so that racing
//! processes revoke each lease once) and automatic compaction of the change log.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::params;

use super::schema::DbError;
use super::write::now_ms;
use super::Inner;
use crate::api::{LeaseId, StoreError};

/// Expired leases revoked per maintenance round (the rest wait for the next one).
const EXPIRE_BATCH: i64 = 256;

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// A fresh lease id: random, positive, non-zero (ids are shared by processes).
fn new_lease_id() -> LeaseId {
    loop {
        let id = (uuid::Uuid::new_v4().as_u128() as u64 >> 1) as i64;
        if id > 0 {
            return id;
        }
    }
}

impl Inner {
    pub(crate) fn lease_grant(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        let conn = self.write_conn();
        let ttl = ttl_ms(ttl);
        loop {
            let id = new_lease_id();
            let inserted = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO leases (id, ttl_ms, expires_at_ms) VALUES (?1, ?2, ?3)",
                )
                .and_then(|mut s| s.execute(params![id, ttl, now_ms().saturating_add(ttl)]))
                .map_err(|e| DbError::from(e).into_store(&self.path))?;
            if inserted == 1 {
                return Ok(id);
            }
        }
    }

    pub(crate) fn lease_keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        let conn = self.write_conn();
        let now = now_ms();
        let renewed = conn
            .prepare_cached(
                "UPDATE leases SET expires_at_ms = ?2 + ttl_ms WHERE id = ?1 AND expires_at_ms > ?2",
            )
            .and_then(|mut s| s.execute(params![lease, now]))
            .map_err(|e| DbError::from(e).into_store(&self.path))?;
        if renewed == 0 {
            return Err(StoreError::LeaseNotFound(lease));
        }
        Ok(())
    }

    pub(crate) fn lease_revoke(&self, lease: LeaseId) -> Result<(), StoreError> {
        let (existed, _) = self.write(|w| w.revoke(lease))?;
        if !existed {
            return Err(StoreError::LeaseNotFound(lease));
        }
        Ok(())
    }

    /// Revokes the leases whose time is up; returns how many this process revoked.
    pub(crate) fn expire_leases(&self) -> Result<usize, StoreError> {
        let expired: Vec<LeaseId> = {
            let conn = self.read_conn();
            let ids = conn
                .prepare_cached(
                    "SELECT id FROM leases WHERE expires_at_ms <= ?1 ORDER BY expires_at_ms LIMIT ?2",
                )
                .and_then(|mut s| {
                    s.query_map(params![now_ms(), EXPIRE_BATCH], |r| r.get(0))?
                        .collect::<rusqlite::Result<Vec<LeaseId>>>()
                });
            ids.map_err(|e| DbError::from(e).into_store(&self.path))?
        };
        let mut revoked = 0;
        for lease in expired {
            let (did, _) = self.write(|w| w.expire(lease))?;
            if did {
                tracing::debug!(lease, "lease expired");
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// Keeps the last `retention` revisions of history; compacts in steps of about 1%
    /// of it so that the work is spread out.
    pub(crate) fn auto_compact(&self) -> Result<(), StoreError> {
        let retention = self.options.retention;
        if retention <= 0 {
            return Ok(());
        }
        let (rev, compacted) = self.meta()?;
        let slack = (retention / 100).max(1);
        if rev - compacted <= retention + slack {
            return Ok(());
        }
        self.write(|w| {
            let target = w.base() - retention + 1;
            if target - 1 > w.compacted() {
                tracing::debug!(revision = target, "compacting the change log");
                w.compact(target)?;
            }
            Ok::<_, DbError>(())
        })?;
        Ok(())
    }
}

/// The maintenance thread's body: runs until the store is dropped.
pub(crate) fn run_maintenance(inner: Arc<Inner>) {
    while inner
        .maintenance_signal
        .wait(inner.options.maintenance_interval)
    {
        if let Err(e) = inner.expire_leases() {
            tracing::warn!(error = %e, path = %inner.path.display(), "expiring leases failed");
        }
        if let Err(e) = inner.auto_compact() {
            tracing::warn!(error = %e, path = %inner.path.display(), "compacting the change log failed");
        }
    }
}
