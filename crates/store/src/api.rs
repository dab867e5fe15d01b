//! The store contract: etcd's data model and semantics, backend-neutral.
//!
//! Every mutation bumps one global revision. A key carries the revision that created it
//! (`create_revision`), last changed it (`mod_revision`) and how often it changed since
//! creation (`version`). Watches deliver every change at or after a revision, in
//! revision order, until the history is compacted. Leases expire after their TTL unless
//! kept alive, deleting the keys attached to them.

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;

/// A store revision. 0 means "none" (a missing key has `mod_revision` 0).
pub type Revision = i64;
/// A lease handle. 0 means "no lease".
pub type LeaseId = i64;

/// One key and its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub version: i64,
    pub lease: LeaseId,
}

/// A range read: the keys and the store revision they were read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeResult {
    pub kvs: Vec<KeyValue>,
    pub revision: Revision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change. For a delete, `kv` has the key, an empty value and `mod_revision` set to
/// the revision of the deletion; `prev` holds the value that was deleted when the
/// backend knows it (both backends here always do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev: Option<KeyValue>,
}

/// A stream of changes, in revision order. It ends with an `Err` when the watch cannot
/// go on (compaction, lost connection); resume from the last revision seen + 1.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Event, StoreError>> + Send>>;

/// What a comparison in a transaction looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `mod_revision` (0 when the key is absent).
    ModRevision(Revision),
    /// `create_revision` (0 when the key is absent): `CreateRevision(0)` with `Equal`
    /// means "the key does not exist".
    CreateRevision(Revision),
    Version(i64),
    Value(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Less,
    Greater,
}

/// One condition of a transaction, on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    pub key: String,
    pub op: CompareOp,
    pub target: Target,
}

impl Compare {
    /// The key does not exist.
    pub fn absent(key: impl Into<String>) -> Self {
        Compare {
            key: key.into(),
            op: CompareOp::Equal,
            target: Target::CreateRevision(0),
        }
    }

    /// The key was last modified at `rev` (0: it does not exist).
    pub fn mod_revision(key: impl Into<String>, rev: Revision) -> Self {
        Compare {
            key: key.into(),
            op: CompareOp::Equal,
            target: Target::ModRevision(rev),
        }
    }

    pub fn value(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Compare {
            key: key.into(),
            op: CompareOp::Equal,
            target: Target::Value(value.into()),
        }
    }
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put {
        key: String,
        value: Vec<u8>,
        lease: LeaseId,
    },
    Delete {
        key: String,
    },
    Get {
        key: String,
    },
}

impl Op {
    pub fn put(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Op::Put {
            key: key.into(),
            value: value.into(),
            lease: 0,
        }
    }

    pub fn delete(key: impl Into<String>) -> Self {
        Op::Delete { key: key.into() }
    }

    pub fn get(key: impl Into<String>) -> Self {
        Op::Get { key: key.into() }
    }
}

/// If every comparison holds, `success` runs, else `failure`; atomically, at one
/// revision (a transaction with any write bumps the revision by exactly one, as etcd).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub compare: Vec<Compare>,
    pub success: Vec<Op>,
    pub failure: Vec<Op>,
}

impl Txn {
    pub fn new() -> Self {
        Txn::default()
    }

    pub fn when(mut self, c: impl IntoIterator<Item = Compare>) -> Self {
        self.compare.extend(c);
        self
    }

    pub fn and_then(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.success.extend(ops);
        self
    }

    pub fn or_else(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.failure.extend(ops);
        self
    }
}

/// The result of one op of a transaction, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    Put,
    /// Whether the key existed.
    Delete(bool),
    Get(Option<KeyValue>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResult {
    pub succeeded: bool,
    /// The store revision after the transaction.
    pub revision: Revision,
    pub results: Vec<OpResult>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("revision {requested} has been compacted (oldest available is {compacted} + 1): list again and watch from the list's revision")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    #[error("revision {requested} is in the future (current revision is {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    #[error("lease {0} not found (expired or revoked)")]
    LeaseNotFound(LeaseId),
    #[error("store unavailable at {endpoint}: {message}")]
    Unavailable { endpoint: String, message: String },
    #[error("store url {url:?}: {message}")]
    BadUrl { url: String, message: String },
    #[error("transaction too large: {ops} operations, the backend allows {max}")]
    TooManyOps { ops: usize, max: usize },
    #[error("store backend error: {0}")]
    Backend(String),
}

impl StoreError {
    /// A later retry may succeed (connection trouble, busy database).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The store: etcd's semantics behind one trait. Implementations are cheap to share
/// (`Arc<dyn Store>`), safe to use from many tasks, and - for the embedded backend -
/// from many processes at once.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// A human-readable description (`sqlite:///var/lib/podnet/state.db`).
    fn describe(&self) -> String;

    /// Largest number of operations one transaction may carry (etcd: 128 by default).
    fn max_txn_ops(&self) -> usize;

    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Every key starting with `prefix`, sorted by key, and the revision read at.
    async fn range(&self, prefix: &str) -> Result<RangeResult>;

    /// Writes `value` at `key` (attached to `lease` unless 0); returns the new revision.
    async fn put(&self, key: &str, value: Vec<u8>, lease: LeaseId) -> Result<Revision>;

    /// Deletes `key`; returns the deleted value when it existed.
    async fn delete(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Deletes every key under `prefix` in one revision; returns how many.
    async fn delete_prefix(&self, prefix: &str) -> Result<usize>;

    async fn txn(&self, txn: Txn) -> Result<TxnResult>;

    /// Changes to keys under `prefix` with `mod_revision >= from` (0: from now on).
    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream>;

    /// The current revision of the store.
    async fn revision(&self) -> Result<Revision>;

    /// Drops history older than `revision`: watches from before it fail with `Compacted`.
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// A new lease that expires `ttl` after its last keep-alive.
    async fn lease_grant(&self, ttl: Duration) -> Result<LeaseId>;

    /// Renews the lease; `LeaseNotFound` when it already expired.
    async fn lease_keep_alive(&self, lease: LeaseId) -> Result<()>;

    /// Ends the lease now, deleting the keys attached to it.
    async fn lease_revoke(&self, lease: LeaseId) -> Result<()>;
}
