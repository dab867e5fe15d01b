//! Typed access to objects in the store, and an informer (list, then watch, resuming
//! after errors and relisting after compaction) for the long-running loops.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use podnet_model::{Kind, Object, ObjectRef};

use crate::api::{Compare, EventKind, KeyValue, Op, Revision, Store, StoreError, Txn, WatchStream};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored object at {key} does not decode: {source}")]
    Decode {
        key: String,
        #[source]
        source: podnet_model::object::DecodeError,
    },
}

/// Decodes a stored object; `metadata.resourceVersion` becomes its `mod_revision`, as
/// kube-apiserver does.
pub fn decode(kv: &KeyValue) -> Result<Object, ApiError> {
    let mut obj = Object::from_json(&kv.value).map_err(|source| ApiError::Decode {
        key: kv.key.clone(),
        source,
    })?;
    obj.meta_mut().resource_version = Some(kv.mod_revision.to_string());
    Ok(obj)
}

/// The stored form: JSON without `resourceVersion` (the store's revision is the truth).
pub fn encode(obj: &Object) -> Vec<u8> {
    if obj.meta().resource_version.is_some() {
        let mut o = obj.clone();
        o.meta_mut().resource_version = None;
        o.to_json()
    } else {
        obj.to_json()
    }
}

/// The `mod_revision` an object was read at (from its resourceVersion), or 0.
pub fn revision_of(obj: &Object) -> Revision {
    obj.meta()
        .resource_version
        .as_deref()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Objects by kind over any store.
#[derive(Clone)]
pub struct Api {
    store: Arc<dyn Store>,
}

impl Api {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Api { store }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub async fn get(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Object>, ApiError> {
        match self.store.get(&kind.key(namespace, name)).await? {
            Some(kv) => Ok(Some(decode(&kv)?)),
            None => Ok(None),
        }
    }

    /// Every object of `kind` (in `namespace` when given), sorted by key, and the
    /// revision of the read (watch from `revision + 1` to follow on).
    pub async fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
    ) -> Result<(Vec<Object>, Revision), ApiError> {
        list_prefix(self, kind, &kind.prefix(namespace)).await
    }

    /// Writes `obj` if it was not changed since `expected` (its mod_revision; 0: it must
    /// not exist). Returns the new revision, or None when somebody else changed it.
    pub async fn put_if(
        &self,
        obj: &Object,
        expected: Revision,
    ) -> Result<Option<Revision>, ApiError> {
        let key = obj.key();
        let r = self
            .store
            .txn(
                Txn::new()
                    .when([Compare::mod_revision(&key, expected)])
                    .and_then([Op::put(&key, encode(obj))]),
            )
            .await?;
        Ok(r.succeeded.then_some(r.revision))
    }

    /// Writes `obj` unconditionally.
    pub async fn put(&self, obj: &Object) -> Result<Revision, ApiError> {
        Ok(self.store.put(&obj.key(), encode(obj), 0).await?)
    }

    /// Deletes an object; true when it existed.
    pub async fn delete(&self, oref: &ObjectRef) -> Result<bool, ApiError> {
        Ok(self.store.delete(&oref.key()).await?.is_some())
    }
}

/// What an informer reports.
#[derive(Debug, Clone)]
pub enum InformerEvent {
    /// The complete current set (after the first list and after every relist): replace
    /// whatever you knew.
    Restarted(Vec<Object>),
    Applied(Object),
    /// The object as it was last stored, when known.
    Deleted(ObjectRef, Option<Object>),
}

enum State {
    /// Must list (start, or after compaction).
    Empty,
    /// Watching; `next` is the first revision not yet seen.
    Watching { stream: WatchStream, next: Revision },
    /// Lost the watch; retry from `next` after a pause.
    Backoff { next: Revision, wait: Duration },
}

/// Follows one kind (optionally in one namespace): list, then watch, resuming from the
/// last revision seen after a lost watch and relisting after compaction.
pub struct Informer {
    api: Api,
    kind: Kind,
    prefix: String,
    state: State,
}

const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl Informer {
    pub fn new(api: Api, kind: Kind, namespace: Option<&str>) -> Self {
        Informer {
            prefix: kind.prefix(namespace),
            api,
            kind,
            state: State::Empty,
        }
    }

    /// The next event; retries store trouble forever (with backoff), logging it.
    pub async fn next(&mut self) -> InformerEvent {
        loop {
            if let Some(ev) = self.step().await {
                return ev;
            }
        }
    }

    /// One step of the state machine; `None` when it only changed state.
    async fn step(&mut self) -> Option<InformerEvent> {
        match std::mem::replace(&mut self.state, State::Empty) {
            State::Empty => match list_prefix(&self.api, self.kind, &self.prefix).await {
                Ok((objs, rev)) => {
                    match self.api.store.watch(&self.prefix, rev + 1).await {
                        Ok(stream) => {
                            self.state = State::Watching {
                                stream,
                                next: rev + 1,
                            }
                        }
                        Err(e) => {
                            tracing::warn!(kind = %self.kind, error = %e, "watch failed; retrying");
                            self.state = State::Backoff {
                                next: rev + 1,
                                wait: Duration::from_millis(100),
                            };
                        }
                    }
                    Some(InformerEvent::Restarted(objs))
                }
                Err(e) => {
                    tracing::warn!(kind = %self.kind, error = %e, "list failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    None
                }
            },
            State::Watching { mut stream, next } => match stream.next().await {
                Some(Ok(ev)) => {
                    let next = ev.kv.mod_revision + 1;
                    let out = self.translate(ev);
                    self.state = State::Watching { stream, next };
                    out
                }
                Some(Err(StoreError::Compacted { .. })) => {
                    tracing::info!(kind = %self.kind, "watch history compacted; relisting");
                    None
                }
                Some(Err(e)) => {
                    tracing::warn!(kind = %self.kind, error = %e, "watch lost; resuming");
                    self.state = State::Backoff {
                        next,
                        wait: Duration::from_millis(50),
                    };
                    None
                }
                None => {
                    self.state = State::Backoff {
                        next,
                        wait: Duration::from_millis(50),
                    };
                    None
                }
            },
            State::Backoff { next, wait } => {
                tokio::time::sleep(wait).await;
                match self.api.store.watch(&self.prefix, next).await {
                    Ok(stream) => self.state = State::Watching { stream, next },
                    Err(StoreError::Compacted { .. }) => self.state = State::Empty,
                    Err(e) => {
                        tracing::warn!(kind = %self.kind, error = %e, "rewatch failed");
                        self.state = State::Backoff {
                            next,
                            wait: (wait * 2).min(MAX_BACKOFF),
                        };
                    }
                }
                None
            }
        }
    }

    fn translate(&self, ev: crate::api::Event) -> Option<InformerEvent> {
        let (ns, name) = self.kind.parse_key(&ev.kv.key)?;
        match ev.kind {
            EventKind::Put => match decode(&ev.kv) {
                Ok(o) => Some(InformerEvent::Applied(o)),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping undecodable object");
                    None
                }
            },
            EventKind::Delete => Some(InformerEvent::Deleted(
                ObjectRef::new(self.kind, ns.as_deref(), &name),
                ev.prev.as_ref().and_then(|kv| decode(kv).ok()),
            )),
        }
    }
}

/// Every object of `kind` under `prefix`, and the revision read at. (A free function so
/// that the informer's future holds no shared borrow of the informer, whose watch
/// stream is `Send` but not `Sync`.)
async fn list_prefix(
    api: &Api,
    kind: Kind,
    prefix: &str,
) -> Result<(Vec<Object>, Revision), ApiError> {
    let r = api.store.range(prefix).await?;
    let objs = r
        .kvs
        .iter()
        .filter(|kv| kind.parse_key(&kv.key).is_some())
        .map(decode)
        .collect::<Result<_, _>>()?;
    Ok((objs, r.revision))
}
