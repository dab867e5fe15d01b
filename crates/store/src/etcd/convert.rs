//! Conversions between the store's types and etcd's, and error mapping.

use std::error::Error as _;

use etcd_client::{
    Compare as EtcdCompare, CompareOp as EtcdCompareOp, DeleteOptions, Error as EtcdError,
    GetOptions, PutOptions, TxnOp, TxnOpResponse,
};

use crate::api::{
    Compare, CompareOp, Event, EventKind, KeyValue, LeaseId, Op, OpResult, StoreError, Target,
};

// gRPC status codes (tonic::Code as i32).
const CANCELLED: i32 = 1;
const UNKNOWN: i32 = 2;
const DEADLINE_EXCEEDED: i32 = 4;
const NOT_FOUND: i32 = 5;
const ABORTED: i32 = 10;
const OUT_OF_RANGE: i32 = 11;
const UNAVAILABLE: i32 = 14;

/// What one failed request means for the store.
pub(crate) enum Failure {
    /// The connection or the server is in trouble: retry later.
    Unavailable(String),
    /// The lease named in the request does not exist.
    LeaseNotFound,
    /// The requested revision has been compacted.
    Compacted,
    /// The requested revision is in the future.
    FutureRevision,
    /// Anything else.
    Other(String),
}

/// An error and its sources, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        src = cause.source();
    }
    s
}

pub(crate) fn classify(e: &EtcdError) -> Failure {
    match e {
        EtcdError::GRpcStatus(status) => {
            let msg = status.message();
            let code = status.code() as i32;
            if msg.contains("lease not found") {
                Failure::LeaseNotFound
            } else if msg.contains("required revision has been compacted") {
                Failure::Compacted
            } else if msg.contains("required revision is a future revision") {
                Failure::FutureRevision
            } else if matches!(code, CANCELLED | DEADLINE_EXCEEDED | ABORTED | UNAVAILABLE)
                || (code == UNKNOWN
                    && (status.source().is_some()
                        || ["h2 protocol", "transport", "connection", "broken pipe"]
                            .iter()
                            .any(|w| msg.contains(w))))
            {
                Failure::Unavailable(chain(status))
            } else if code == OUT_OF_RANGE || code == NOT_FOUND {
                Failure::Other(format!("etcd: {msg}"))
            } else {
                Failure::Other(format!("etcd: {}", chain(status)))
            }
        }
        EtcdError::TransportError(_)
        | EtcdError::IoError(_)
        | EtcdError::WatchError(_)
        | EtcdError::EndpointError(_) => Failure::Unavailable(chain(e)),
        EtcdError::LeaseKeepAliveError(m) if m.contains("not found") => Failure::LeaseNotFound,
        other => Failure::Other(format!("etcd client: {}", chain(other))),
    }
}

/// The usual mapping, for requests where compaction and leases cannot come up.
pub(crate) fn store_err(endpoint: &str, e: EtcdError) -> StoreError {
    match classify(&e) {
        Failure::Unavailable(message) => StoreError::Unavailable {
            endpoint: endpoint.to_string(),
            message,
        },
        Failure::Other(m) => StoreError::Backend(m),
        Failure::LeaseNotFound | Failure::Compacted | Failure::FutureRevision => {
            StoreError::Backend(format!("etcd: {}", chain(&e)))
        }
    }
}

pub(crate) fn kv(k: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: String::from_utf8_lossy(k.key()).into_owned(),
        value: k.value().to_vec(),
        create_revision: k.create_revision(),
        mod_revision: k.mod_revision(),
        version: k.version(),
        lease: k.lease(),
    }
}

pub(crate) fn event(e: &etcd_client::Event) -> Option<Event> {
    let kind = match e.event_type() {
        etcd_client::EventType::Put => EventKind::Put,
        etcd_client::EventType::Delete => EventKind::Delete,
    };
    Some(Event {
        kind,
        kv: kv(e.kv()?),
        prev: e.prev_kv().map(kv),
    })
}

fn compare_op(op: CompareOp) -> EtcdCompareOp {
    match op {
        CompareOp::Equal => EtcdCompareOp::Equal,
        CompareOp::NotEqual => EtcdCompareOp::NotEqual,
        CompareOp::Less => EtcdCompareOp::Less,
        CompareOp::Greater => EtcdCompareOp::Greater,
    }
}

pub(crate) fn compare(c: &Compare) -> EtcdCompare {
    let (key, op) = (c.key.as_bytes(), compare_op(c.op));
    match &c.target {
        Target::ModRevision(r) => EtcdCompare::mod_revision(key, op, *r),
        Target::CreateRevision(r) => EtcdCompare::create_revision(key, op, *r),
        Target::Version(v) => EtcdCompare::version(key, op, *v),
        Target::Value(v) => EtcdCompare::value(key, op, v.clone()),
    }
}

pub(crate) fn op(o: &Op) -> TxnOp {
    match o {
        Op::Put { key, value, lease } => {
            let opts = (*lease != 0).then(|| PutOptions::new().with_lease(*lease));
            TxnOp::put(key.as_bytes(), value.clone(), opts)
        }
        Op::Delete { key } => TxnOp::delete(key.as_bytes(), Some(DeleteOptions::new())),
        Op::Get { key } => TxnOp::get(key.as_bytes(), Some(GetOptions::new())),
    }
}

pub(crate) fn op_result(r: &TxnOpResponse) -> OpResult {
    match r {
        TxnOpResponse::Put(_) => OpResult::Put,
        TxnOpResponse::Delete(d) => OpResult::Delete(d.deleted() > 0),
        TxnOpResponse::Get(g) => OpResult::Get(g.kvs().first().map(kv)),
        // Nested transactions are never sent.
        TxnOpResponse::Txn(_) => OpResult::Put,
    }
}

/// The first lease a list of ops attaches keys to (for a LeaseNotFound answer).
pub(crate) fn first_lease<'a>(ops: impl IntoIterator<Item = &'a Op>) -> LeaseId {
    ops.into_iter()
        .find_map(|o| match o {
            Op::Put { lease, .. } if *lease != 0 => Some(*lease),
            _ => None,
        })
        .unwrap_or(0)
}
