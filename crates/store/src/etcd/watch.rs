//! Watch streams over etcd: prefix, start revision and previous values; compaction
//! becomes `Compacted`, a lost connection or a server-side cancel ends the stream with
//! an `Unavailable` error so that the caller resumes from the last revision it saw.

use std::collections::VecDeque;

use etcd_client::{WatchOptions, Watcher};

use super::convert::{self, Failure};
use crate::api::{Event, Revision, StoreError, WatchStream};

pub(crate) struct Follow {
    /// Kept so that the server keeps the watch open; dropping it ends the watch.
    _watcher: Watcher,
    stream: etcd_client::WatchStream,
    endpoint: String,
    /// The first revision not delivered yet (for the compaction error).
    next: Revision,
    buf: VecDeque<Event>,
    done: bool,
}

/// What etcd should watch for `prefix` from `from`.
pub(crate) fn options(prefix: &str, from: Revision) -> (Vec<u8>, WatchOptions) {
    let mut opts = WatchOptions::new().with_prev_key();
    if from > 0 {
        opts = opts.with_start_revision(from);
    }
    let key = if prefix.is_empty() {
        opts = opts.with_all_keys();
        vec![0]
    } else {
        opts = opts.with_prefix();
        prefix.as_bytes().to_vec()
    };
    (key, opts)
}

impl Follow {
    pub fn new(
        watcher: Watcher,
        stream: etcd_client::WatchStream,
        endpoint: String,
        from: Revision,
    ) -> Self {
        Follow {
            _watcher: watcher,
            stream,
            endpoint,
            next: from,
            buf: VecDeque::new(),
            done: false,
        }
    }

    pub fn into_stream(self) -> WatchStream {
        Box::pin(futures::stream::unfold(self, |mut f| async move {
            f.next().await.map(|item| (item, f))
        }))
    }

    fn unavailable(&mut self, message: String) -> Option<Result<Event, StoreError>> {
        self.done = true;
        Some(Err(StoreError::Unavailable {
            endpoint: self.endpoint.clone(),
            message,
        }))
    }

    async fn next(&mut self) -> Option<Result<Event, StoreError>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(ev) = self.buf.pop_front() {
                self.next = self.next.max(ev.kv.mod_revision + 1);
                return Some(Ok(ev));
            }
            match self.stream.message().await {
                Ok(Some(resp)) => {
                    if resp.compact_revision() > 0 {
                        self.done = true;
                        return Some(Err(StoreError::Compacted {
                            requested: self.next,
                            compacted: resp.compact_revision() - 1,
                        }));
                    }
                    if resp.canceled() {
                        let reason = resp.cancel_reason().to_string();
                        return self.unavailable(format!("watch canceled by etcd: {reason}"));
                    }
                    self.buf
                        .extend(resp.events().iter().filter_map(convert::event));
                }
                Ok(None) => return self.unavailable("etcd closed the watch stream".into()),
                Err(e) => {
                    let message = match convert::classify(&e) {
                        Failure::Unavailable(m) | Failure::Other(m) => m,
                        _ => e.to_string(),
                    };
                    return self.unavailable(format!("watch lost: {message}"));
                }
            }
        }
    }
}
