//! Cross-process change notification: one poller thread per opened store.
//!
//! Every committed write bumps SQLite's `PRAGMA data_version` as seen from any *other*
//! connection, in this process or another one. The poller owns a connection of its
//! own, checks `data_version` every poll interval (or at once when this process
//! writes), and when it moved, reads the new log rows and fans them out to the
//! watchers whose prefix matches. A watcher's queue is bounded: one that falls behind
//! is dropped from the hub and catches up by itself from the log (see `stream.rs`),
//! so a slow watcher never holds up the others.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::mpsc::{self, error::TrySendError};

use super::read::{self, end_of, LogEvent, Pos};
use super::Inner;

/// Log rows read per query by the poller.
const POLL_BATCH: usize = 4096;

/// How often the poller looks for commits while nobody watches.
const IDLE_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A wake-up call for a background thread, and its shutdown flag.
#[derive(Default)]
pub(crate) struct Signal {
    /// (pending wake-up, shut down)
    state: Mutex<(bool, bool)>,
    cv: Condvar,
}

impl Signal {
    fn lock(&self) -> MutexGuard<'_, (bool, bool)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn notify(&self) {
        self.lock().0 = true;
        self.cv.notify_all();
    }

    pub fn shutdown(&self) {
        self.lock().1 = true;
        self.cv.notify_all();
    }

    /// Sleeps until notified, `timeout` passed or shut down; false when shut down.
    pub fn wait(&self, timeout: Duration) -> bool {
        let guard = self.lock();
        let (mut guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |(pending, down)| !*pending && !*down)
            .unwrap_or_else(|e| e.into_inner());
        guard.0 = false;
        !guard.1
    }
}

/// Shared between a watcher's stream and the hub.
#[derive(Default)]
pub(crate) struct WatchFlags {
    /// The hub dropped this watcher because its queue was full.
    pub lagged: AtomicBool,
}

struct Watcher {
    prefix: String,
    tx: mpsc::Sender<LogEvent>,
    flags: Arc<WatchFlags>,
}

struct HubState {
    /// Every change up to here has been handed to the watchers registered then.
    pos: Pos,
    watchers: Vec<Watcher>,
    closed: bool,
}

/// The registered watchers and how far the log has been dispatched to them.
pub(crate) struct Hub {
    state: Mutex<HubState>,
    queue: usize,
}

/// A live registration: changes after `pos` arrive on `rx`.
pub(crate) struct Registration {
    pub pos: Pos,
    pub rx: mpsc::Receiver<LogEvent>,
    pub flags: Arc<WatchFlags>,
}

impl Hub {
    pub fn new(pos: Pos, queue: usize) -> Self {
        Hub {
            state: Mutex::new(HubState {
                pos,
                watchers: Vec::new(),
                closed: false,
            }),
            queue: queue.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a watcher of `prefix`; None when the store was closed.
    pub fn register(&self, prefix: &str) -> Option<Registration> {
        let mut st = self.lock();
        if st.closed {
            return None;
        }
        let (tx, rx) = mpsc::channel(self.queue);
        let flags = Arc::new(WatchFlags::default());
        st.watchers.push(Watcher {
            prefix: prefix.to_string(),
            tx,
            flags: flags.clone(),
        });
        Some(Registration {
            pos: st.pos,
            rx,
            flags,
        })
    }

    /// Whether nobody is watching (the poller may then check less often).
    pub fn idle(&self) -> bool {
        self.lock().watchers.is_empty()
    }

    /// Ends every watcher (their streams report the store as closed).
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.watchers.clear();
    }

    /// Reads the changes after the dispatched position and hands them out.
    pub fn poll(&self, conn: &mut Connection) -> rusqlite::Result<()> {
        let mut st = self.lock();
        st.watchers.retain(|w| !w.tx.is_closed());
        let tx = conn.transaction()?;
        let (rev, compacted) = read::meta(&tx)?;
        if st.watchers.is_empty() {
            st.pos = end_of(rev);
            return Ok(());
        }
        let need = if st.pos.1 == i64::MAX {
            st.pos.0 + 1
        } else {
            st.pos.0
        };
        if need <= compacted && need <= rev {
            // The history we have not dispatched yet is gone; every watcher finds out
            // by catching up from the log.
            tracing::warn!(
                from = need,
                compacted,
                "watch history compacted before it was dispatched"
            );
            for w in st.watchers.drain(..) {
                w.flags.lagged.store(true, Ordering::SeqCst);
            }
            st.pos = end_of(rev);
            return Ok(());
        }
        loop {
            let batch = read::log_after(&tx, st.pos, POLL_BATCH)?;
            for ev in &batch {
                dispatch(&mut st.watchers, ev);
            }
            match batch.last() {
                Some(last) if batch.len() == POLL_BATCH => st.pos = last.pos,
                _ => break,
            }
        }
        st.pos = end_of(rev);
        Ok(())
    }
}

fn dispatch(watchers: &mut Vec<Watcher>, ev: &LogEvent) {
    watchers.retain(|w| {
        if !ev.event.kv.key.starts_with(&w.prefix) {
            return true;
        }
        match w.tx.try_send(ev.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                w.flags.lagged.store(true, Ordering::SeqCst);
                tracing::debug!(prefix = %w.prefix, "watcher fell behind; it will catch up from the log");
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    });
}

fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))
}

/// The poller thread's body: runs until the store is dropped.
pub(crate) fn run_poller(inner: Arc<Inner>, mut conn: Connection) {
    // None forces a first poll: a commit may have landed since the hub was set up.
    let mut seen: Option<i64> = None;
    loop {
        // Without watchers only the dispatched position needs to keep up (a new
        // watcher replays the log up to it), so there is no hurry.
        let interval = if inner.hub.idle() {
            IDLE_POLL_INTERVAL.max(inner.options.poll_interval)
        } else {
            inner.options.poll_interval
        };
        if !inner.poll_signal.wait(interval) {
            break;
        }
        match data_version(&conn) {
            Ok(v) if seen == Some(v) => continue,
            Ok(v) => seen = Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "reading data_version failed");
                continue;
            }
        }
        if let Err(e) = inner.hub.poll(&mut conn) {
            tracing::warn!(error = %e, path = %inner.path.display(), "reading the change log failed; retrying");
            seen = None;
        }
    }
    inner.hub.close();
}
