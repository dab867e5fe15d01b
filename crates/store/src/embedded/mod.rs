//! Embedded backend: one SQLite file in WAL mode, safe for many processes at once.
//!
//! Every write is a `BEGIN IMMEDIATE` transaction that gets one revision; the `log`
//! table keeps every change (with the value before it) for watches. A poller thread per
//! opened store notices commits of any process through `PRAGMA data_version` and feeds
//! the watchers; a maintenance thread expires leases and compacts old history (the last
//! [`DEFAULT_RETENTION`] revisions are kept). See docs/store.md.
//!
//! A one-shot process (the CNI plugin, a CLI command) opens the store with
//! [`SqliteStore::open_oneshot`]: no background threads, so no lease expiry, no
//! compaction and no watches from that process; long-running processes do those.

mod lease;
mod read;
mod schema;
mod stream;
mod watch;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use crate::api::{
    KeyValue, LeaseId, RangeResult, Result, Revision, Store, StoreError, Txn, TxnResult,
    WatchStream,
};
use crate::util::{check_txn, txn_writes};
use schema::DbError;
pub use schema::BUSY_TIMEOUT;
use watch::{Hub, Signal};
use write::WriteTxn;

/// Revisions of history kept by automatic compaction: a watch may resume from any of
/// the last 100,000 revisions.
pub const DEFAULT_RETENTION: i64 = 100_000;

/// Pages of write-ahead log after which a one-shot process's commit checkpoints it
/// and truncates the log (SQLite's default is a passive checkpoint at 1000).
const ONESHOT_WAL_PAGES: i32 = 64;

/// The most operations one transaction may carry.
pub const MAX_TXN_OPS: usize = 10_000;

/// Tuning of an embedded store; `Options::default()` is what `open` uses.
#[derive(Debug, Clone)]
pub struct Options {
    /// Revisions of history to keep (older ones are compacted automatically);
    /// 0 turns automatic compaction off.
    pub retention: i64,
    /// How often the poller checks for commits of other processes.
    pub poll_interval: Duration,
    /// How often leases are checked for expiry and history for compaction.
    pub maintenance_interval: Duration,
    /// Changes a watcher may have queued before it falls back to reading the log.
    pub watch_queue: usize,
    /// Whether to start the poller and maintenance threads. Without them this process
    /// never expires leases nor compacts history (other processes that open the store
    /// with them still do), and [`Store::watch`] fails: for one-shot processes that only
    /// read and write, such as the CNI plugin.
    pub background: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retention: DEFAULT_RETENTION,
            poll_interval: Duration::from_millis(2),
            maintenance_interval: Duration::from_millis(200),
            watch_queue: 8192,
            background: true,
        }
    }
}

/// State shared by the store, its background threads and its watch streams.
pub(crate) struct Inner {
    path: PathBuf,
    write: Mutex<Connection>,
    /// The connection for reads; `None` in a one-shot store, which reads on `write`.
    read: Option<Mutex<Connection>>,
    hub: Hub,
    poll_signal: Signal,
    maintenance_signal: Signal,
    options: Options,
}

impl Inner {
    fn write_conn(&self) -> MutexGuard<'_, Connection> {
        self.write.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read_conn(&self) -> MutexGuard<'_, Connection> {
        match &self.read {
            Some(read) => read.lock().unwrap_or_else(|e| e.into_inner()),
            None => self.write_conn(),
        }
    }

    /// Runs `f` in a write transaction; returns its value and the revision after it.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut WriteTxn<'_>) -> Result<T, DbError>,
    ) -> Result<(T, Revision)> {
        let mut conn = self.write_conn();
        let run = || {
            let mut w = WriteTxn::begin(&mut conn)?;
            let out = f(&mut w)?;
            let (rev, changed) = w.commit()?;
            Ok::<_, DbError>((out, rev, changed))
        };
        let (out, rev, changed) = run().map_err(|e| e.into_store(&self.path))?;
        if changed {
            self.poll_signal.notify();
        }
        Ok((out, rev))
    }

    /// Runs `f` in a read snapshot; returns its value and the revision read at.
    fn read<T>(
        &self,
        f: impl FnOnce(&mut WriteTxn<'_>) -> Result<T, DbError>,
    ) -> Result<(T, Revision)> {
        let mut conn = self.read_conn();
        let run = || {
            let mut r = WriteTxn::begin_read(&mut conn)?;
            let out = f(&mut r)?;
            let (rev, _) = r.commit()?;
            Ok::<_, DbError>((out, rev))
        };
        run().map_err(|e| e.into_store(&self.path))
    }

    /// (current revision, compacted revision)
    fn meta(&self) -> Result<(Revision, Revision)> {
        self.read(|r| Ok(r.compacted())).map(|(c, rev)| (rev, c))
    }
}

/// The embedded store. Dropping it stops its background threads; watch streams still
/// open then end with an `Unavailable` error.
pub struct SqliteStore {
    inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
}

impl SqliteStore {
    /// Opens (creating when missing, with its parent directory) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        Self::open_with(path, Options::default())
    }

    /// Opens the database for a short-lived process: no background threads (see
    /// [`Options::background`]), so opening and dropping it cost no thread start/join.
    pub fn open_oneshot(path: &Path) -> Result<SqliteStore> {
        Self::open_with(
            path,
            Options {
                background: false,
                ..Options::default()
            },
        )
    }

    pub fn open_with(path: &Path, options: Options) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Backend(format!(
                    "creating directory {} for the store: {e}",
                    dir.display()
                ))
            })?;
        }
        let mut write = schema::connect(path)?;
        schema::migrate(&mut write, path)?;
        let background = options.background;
        // A one-shot process reads on its one connection too: it runs one request at
        // a time, and a second connection costs its open and schema parse.
        let read = if background {
            Some(schema::connect(path)?)
        } else {
            None
        };
        if !background {
            // A one-shot process leaves the write-ahead log in place when it closes
            // (it stays as durable as before); its commits checkpoint the log once it
            // grows past ONESHOT_WAL_PAGES.
            write
                .set_db_config(
                    rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                    true,
                )
                .map_err(schema::sql_err(path))?;
            // A short log: a process that opens the file while no other has it
            // open rebuilds the log's index by reading every frame of the log.
            write.wal_hook(Some(oneshot_wal_hook));
        }
        let poll_conn = if background {
            Some(schema::connect(path)?)
        } else {
            None
        };
        let (rev, _) =
            read::meta(read.as_ref().unwrap_or(&write)).map_err(schema::sql_err(path))?;
        let inner = Arc::new(Inner {
            path: path.to_path_buf(),
            write: Mutex::new(write),
            read: read.map(Mutex::new),
            hub: Hub::new(read::end_of(rev), options.watch_queue),
            poll_signal: Signal::default(),
            maintenance_signal: Signal::default(),
            options,
        });
        let spawn = |name: &str, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(body)
                .map_err(|e| StoreError::Backend(format!("starting thread {name}: {e}")))
        };
        // Should a thread fail to start, dropping `store` stops the ones started.
        let mut store = SqliteStore {
            inner: inner.clone(),
            threads: Vec::new(),
        };
        if let Some(poll_conn) = poll_conn {
            let i = inner.clone();
            store.threads.push(spawn(
                "podnet-store-watch",
                Box::new(move || watch::run_poller(i, poll_conn)),
            )?);
            store.threads.push(spawn(
                "podnet-store-lease",
                Box::new(move || lease::run_maintenance(inner)),
            )?);
        }
        tracing::debug!(path = %path.display(), revision = rev, background, "opened embedded store");
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Revokes expired leases now (the background check does this every 200 ms).
    pub fn expire_leases(&self) -> Result<usize> {
        self.inner.expire_leases()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if !self.inner.options.background {
            // A one-shot process does one thing at a time: it waits for each answer
            // anyway, so the call runs here rather than on a blocking-pool thread
            // (whose start and hand-offs cost more than most calls).
            return f(&self.inner);
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }
}

/// The write-ahead log hook of a one-shot connection, called after each commit with
/// the number of frames in the log.
///
/// A process that opens the database while no other has it open finds no valid
/// log index, rebuilds it from the log, and counts every frame as not yet copied
/// into the database; so SQLite's passive autocheckpoint never lets the next writer
/// restart the log, which grows by every commit of every one-shot process, each of
/// which then re-reads it all when it opens and checkpoints it (three fsyncs) when
/// it commits. Past `ONESHOT_WAL_PAGES` frames this checkpoints and truncates the log
/// instead, so the log stays short and the fsyncs come once per ~64 frames.
/// Durability is that of `synchronous=NORMAL` either way: a commit is in the log
/// before this runs, and a checkpoint syncs the log before copying it. The
/// checkpoint never waits for other processes: when one holds the write lock or
/// still reads from the log, it copies what it can (as SQLite's passive
/// autocheckpoint would) and leaves the truncation to a later commit; the commit
/// itself has already succeeded.
fn oneshot_wal_hook(wal: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    if pages >= ONESHOT_WAL_PAGES {
        let done = schema::without_waiting(|| {
            wal.checkpoint_v2(rusqlite::hooks::CheckpointMode::TRUNCATE)
        });
        if let Err(e) = done {
            tracing::debug!(error = %e, pages, "truncation of the write-ahead log deferred");
        }
    }
    Ok(())
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.inner.poll_signal.shutdown();
        self.inner.maintenance_signal.shutdown();
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!(path = %self.inner.path.display(), "store background thread panicked");
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite://{}", self.inner.path.display())
    }

    fn max_txn_ops(&self) -> usize {
        MAX_TXN_OPS
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_string();
        self.blocking(move |i| i.read(|r| r.get(&key)).map(|(kv, _)| kv))
            .await
    }

    async fn range(&self, prefix: &str) -> Result<RangeResult> {
        let prefix = prefix.to_string();
        self.blocking(move |i| {
            i.read(|r| r.range(&prefix))
                .map(|(kvs, revision)| RangeResult { kvs, revision })
        })
        .await
    }

    async fn put(&self, key: &str, value: Vec<u8>, lease: LeaseId) -> Result<Revision> {
        let key = key.to_string();
        self.blocking(move |i| i.write(|w| w.put(&key, &value, lease)).map(|(_, rev)| rev))
            .await
    }

    async fn delete(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_string();
        self.blocking(move |i| i.write(|w| w.delete(&key)).map(|(kv, _)| kv))
            .await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<usize> {
        let prefix = prefix.to_string();
        self.blocking(move |i| i.write(|w| w.delete_prefix(&prefix)).map(|(n, _)| n))
            .await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        check_txn(&txn, MAX_TXN_OPS)?;
        self.blocking(move |i| {
            let run = |w: &mut WriteTxn<'_>| w.txn(&txn);
            let ((succeeded, results), revision) = if txn_writes(&txn) {
                i.write(run)?
            } else {
                i.read(run)?
            };
            Ok(TxnResult {
                succeeded,
                revision,
                results,
            })
        })
        .await
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream> {
        if !self.inner.options.background {
            return Err(StoreError::Backend(format!(
                "watch on {}: expected a store opened with background threads, found one opened one-shot",
                self.inner.path.display()
            )));
        }
        let (rev, compacted) = self.blocking(|i| i.meta()).await?;
        if from != 0 && from <= compacted {
            return Err(StoreError::Compacted {
                requested: from,
                compacted,
            });
        }
        let from = if from <= 0 { rev + 1 } else { from };
        Ok(stream::Follow::start(self.inner.clone(), prefix, from)?.into_stream())
    }

    async fn revision(&self) -> Result<Revision> {
        self.blocking(|i| i.meta().map(|(rev, _)| rev)).await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        if revision <= 0 {
            return Err(StoreError::Backend(format!(
                "compact: expected a positive revision, found {revision}"
            )));
        }
        self.blocking(move |i| {
            i.write(|w| {
                if revision > w.base() {
                    return Err(StoreError::FutureRevision {
                        requested: revision,
                        current: w.base(),
                    }
                    .into());
                }
                if w.compacted() > 0 && revision - 1 <= w.compacted() {
                    return Err(StoreError::Compacted {
                        requested: revision,
                        compacted: w.compacted(),
                    }
                    .into());
                }
                w.compact(revision)
            })
            .map(|_| ())
        })
        .await
    }

    async fn lease_grant(&self, ttl: Duration) -> Result<LeaseId> {
        self.blocking(move |i| i.lease_grant(ttl)).await
    }

    async fn lease_keep_alive(&self, lease: LeaseId) -> Result<()> {
        self.blocking(move |i| i.lease_keep_alive(lease)).await
    }

    async fn lease_revoke(&self, lease: LeaseId) -> Result<()> {
        self.blocking(move |i| i.lease_revoke(lease)).await
    }
}
