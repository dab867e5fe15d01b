//! A watch stream over the embedded store: replays the log from the requested
//! revision, then follows the hub's live feed; falls back to the log whenever its
//! live queue overflowed. Strictly ordered, no gaps, no duplicates.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::read::{self, end_of, LogEvent, Pos};
use super::watch::WatchFlags;
use super::Inner;
use crate::api::{Event, Revision, StoreError, WatchStream};

/// Log rows read per replay query.
const REPLAY_BATCH: usize = 1024;

pub(crate) struct Follow {
    inner: Arc<Inner>,
    prefix: String,
    /// Only changes at or after this revision are delivered.
    from: Revision,
    /// Every change up to here was queued in `buf` (or skipped).
    pos: Pos,
    /// The live feed starts after this position; replay the log up to it first.
    upto: Pos,
    rx: mpsc::Receiver<LogEvent>,
    flags: Arc<WatchFlags>,
    buf: VecDeque<LogEvent>,
    done: bool,
}

impl Follow {
    /// A watch of `prefix` from revision `from` (> 0); Unavailable when the store was
    /// closed.
    pub fn start(inner: Arc<Inner>, prefix: &str, from: Revision) -> Result<Self, StoreError> {
        let reg = inner.hub.register(prefix).ok_or_else(|| closed(&inner))?;
        // The poller may be idling: from now on it must poll at full speed.
        inner.poll_signal.notify();
        Ok(Follow {
            prefix: prefix.to_string(),
            from,
            pos: end_of(from - 1),
            upto: reg.pos,
            rx: reg.rx,
            flags: reg.flags,
            buf: VecDeque::new(),
            done: false,
            inner,
        })
    }

    pub fn into_stream(self) -> WatchStream {
        Box::pin(futures::stream::unfold(self, |mut f| async move {
            f.next().await.map(|item| (item, f))
        }))
    }

    async fn next(&mut self) -> Option<Result<Event, StoreError>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(ev) = self.buf.pop_front() {
                if ev.event.kv.mod_revision >= self.from {
                    return Some(Ok(ev.event));
                }
                continue;
            }
            if self.pos < self.upto {
                if let Err(e) = self.replay().await {
                    self.done = true;
                    return Some(Err(e));
                }
                continue;
            }
            match self.rx.recv().await {
                Some(ev) => {
                    if ev.pos > self.pos {
                        self.pos = ev.pos;
                        self.buf.push_back(ev);
                    }
                }
                None if self.flags.lagged.load(Ordering::SeqCst) => {
                    // Dropped by the hub: catch up from the log, then follow again.
                    match self.inner.hub.register(&self.prefix) {
                        Some(reg) => {
                            self.inner.poll_signal.notify();
                            self.upto = reg.pos;
                            self.rx = reg.rx;
                            self.flags = reg.flags;
                        }
                        None => {
                            self.done = true;
                            return Some(Err(closed(&self.inner)));
                        }
                    }
                }
                None => {
                    self.done = true;
                    return Some(Err(closed(&self.inner)));
                }
            }
        }
    }

    /// Reads the next batch of the log between `pos` and `upto`.
    async fn replay(&mut self) -> Result<(), StoreError> {
        let (inner, prefix, pos, upto) =
            (self.inner.clone(), self.prefix.clone(), self.pos, self.upto);
        let batch = tokio::task::spawn_blocking(move || inner.replay(&prefix, pos, upto))
            .await
            .map_err(|e| StoreError::Backend(format!("watch replay task failed: {e}")))??;
        self.pos = match batch.last() {
            Some(last) if batch.len() == REPLAY_BATCH => last.pos,
            _ => upto,
        };
        self.buf.extend(batch);
        Ok(())
    }
}

fn closed(inner: &Inner) -> StoreError {
    StoreError::Unavailable {
        endpoint: inner.path.display().to_string(),
        message: "the store was closed".into(),
    }
}

impl Inner {
    /// The log after `pos` up to `upto` under `prefix`, or `Compacted` when part of it
    /// is gone.
    fn replay(&self, prefix: &str, pos: Pos, upto: Pos) -> Result<Vec<LogEvent>, StoreError> {
        let mut conn = self.read_conn();
        let err = super::schema::sql_err(&self.path);
        let tx = conn.transaction().map_err(&err)?;
        let (_, compacted) = read::meta(&tx).map_err(&err)?;
        let need = if pos.1 == i64::MAX { pos.0 + 1 } else { pos.0 };
        if need <= compacted {
            return Err(StoreError::Compacted {
                requested: need,
                compacted,
            });
        }
        read::log_range(&tx, pos, upto, prefix, REPLAY_BATCH).map_err(&err)
    }
}
