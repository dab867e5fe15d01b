//! The store conformance suite: every case runs unchanged against every backend.
//!
//! A test binary (tests/embedded.rs, tests/etcd.rs) provides `async fn make(name,
//! exclusive) -> Ctx` and instantiates every case with `cases!(make)`. Cases use only
//! keys under `ctx.prefix`, so that they can share one server, except those marked
//! exclusive (they compact history or count revisions), which get a store of their own.
#![allow(dead_code)]

pub mod informer;
pub mod kv;
pub mod lease;
pub mod procs;
pub mod watch;

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use podnet_store::{Event, Store, WatchStream};

/// How long a case waits for something that should happen before it fails. Only a
/// guard against hanging: nothing asserts on how fast things happen.
pub const WAIT: Duration = Duration::from_secs(20);

/// What a case runs against.
pub struct Ctx {
    pub store: Arc<dyn Store>,
    /// The URL that opens the same store from another process.
    pub url: String,
    /// Every key the case uses starts with this (ends with `/`).
    pub prefix: String,
    /// Keeps the backend alive (temp dir, server) while the case runs.
    pub guard: Box<dyn Any + Send + Sync>,
}

impl Ctx {
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{}", self.prefix, suffix)
    }
}

/// The next change on `w`; fails the test when the stream errs, ends or stalls.
pub async fn next_event(w: &mut WatchStream) -> Event {
    match tokio::time::timeout(WAIT, w.next()).await {
        Ok(Some(Ok(ev))) => ev,
        Ok(Some(Err(e))) => panic!("expected a watch event, found error: {e}"),
        Ok(None) => panic!("expected a watch event, found the end of the stream"),
        Err(_) => panic!("expected a watch event within {WAIT:?}, found none"),
    }
}

/// The next `n` changes on `w`.
pub async fn next_events(w: &mut WatchStream, n: usize) -> Vec<Event> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next_event(w).await);
    }
    out
}

/// Polls `check` every 50 ms until it holds; fails the test after `WAIT`.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {what} within {WAIT:?}, it did not happen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Instantiates every case as a test; `$make` is `async fn(&'static str, bool) -> Ctx`
/// (name of the case, whether it needs a store of its own).
macro_rules! cases {
    ($make:path) => {
        cases!(@one $make, false, kv_get_put_delete, kv::case_get_put_delete);
        cases!(@one $make, false, kv_range_prefix, kv::case_range_prefix);
        cases!(@one $make, false, kv_delete_prefix, kv::case_delete_prefix);
        cases!(@one $make, false, txn_compares, kv::case_txn_compares);
        cases!(@one $make, false, txn_ops_and_failure_branch, kv::case_txn_ops_and_failure_branch);
        cases!(@one $make, false, txn_one_revision, kv::case_txn_one_revision);
        cases!(@one $make, false, txn_limits, kv::case_txn_limits);
        cases!(@one $make, true, revision_bumps_only_on_change, kv::case_revision_bumps_only_on_change);
        cases!(@one $make, false, watch_replay_then_live, watch::case_watch_replay_then_live);
        cases!(@one $make, false, watch_from_now, watch::case_watch_from_now);
        cases!(@one $make, false, watch_prev_values, watch::case_watch_prev_values);
        cases!(@one $make, false, watch_resume_without_gap, watch::case_watch_resume_without_gap);
        cases!(@one $make, true, watch_after_compaction, watch::case_watch_after_compaction);
        cases!(@one $make, false, lease_expiry, lease::case_lease_expiry);
        cases!(@one $make, false, lease_keep_alive, lease::case_lease_keep_alive);
        cases!(@one $make, false, lease_revoke, lease::case_lease_revoke);
        cases!(@one $make, false, processes_cas_counter, procs::case_processes_cas_counter);
        cases!(@one $make, false, processes_watch, procs::case_processes_watch);
        cases!(@one $make, false, informer_follows_and_resumes, informer::case_informer_follows_and_resumes);
        cases!(@one $make, true, informer_relists_after_compaction, informer::case_informer_relists_after_compaction);
    };
    (@one $make:path, $exclusive:expr, $name:ident, $($case:ident)::+) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let ctx = $make(stringify!($name), $exclusive).await;
            crate::conformance::$($case)::+(&ctx).await;
        }
    };
}
