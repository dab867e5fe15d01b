//! etcd backend over the `etcd-client` crate: the store's operations map one to one
//! onto etcd's KV, Watch and Lease services (see docs/store.md).

mod convert;
pub mod unix;
mod watch;

use std::future::Future;
use std::time::Duration;

use etcd_client::{
    Client, CompactionOptions, ConnectOptions, DeleteOptions, GetOptions, PutOptions,
    Txn as EtcdTxn,
};

use crate::api::{
    KeyValue, LeaseId, RangeResult, Result, Revision, Store, StoreError, Txn, TxnResult,
    WatchStream,
};
use crate::util::{check_txn, prefix_end};
use convert::{store_err, Failure};

/// etcd's default `--max-txn-ops`.
pub const MAX_TXN_OPS: usize = 128;

/// How long one request may take before the store reports etcd unavailable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Keys read per range request (a range is read page by page at one revision).
const PAGE: i64 = 1000;

/// Largest response accepted (a page of big objects, or a burst of watch events).
const MAX_MESSAGE: usize = 256 << 20;

pub struct EtcdStore {
    client: Client,
    endpoint: String,
}

impl EtcdStore {
    /// Connects to etcd at `endpoints` (`http://host:port`) and checks it answers.
    pub async fn connect(endpoints: &[String]) -> Result<EtcdStore> {
        let endpoint = endpoints.join(",");
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(|e| store_err(&endpoint, e))?;
        let store = EtcdStore { client, endpoint };
        store.revision().await?;
        tracing::debug!(endpoint = %store.endpoint, "connected to etcd");
        Ok(store)
    }

    fn unavailable(&self, message: impl Into<String>) -> StoreError {
        StoreError::Unavailable {
            endpoint: self.endpoint.clone(),
            message: message.into(),
        }
    }

    /// Runs one request with the request timeout; maps a timeout to `Unavailable`.
    async fn call<T>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, etcd_client::Error> {
        match tokio::time::timeout(REQUEST_TIMEOUT, f).await {
            Ok(r) => r,
            Err(_) => Err(etcd_client::Error::EndpointError(format!(
                "{what}: no answer within {REQUEST_TIMEOUT:?}"
            ))),
        }
    }

    fn kv(&self) -> etcd_client::KvClient {
        self.client
            .kv_client()
            .max_decoding_message_size(MAX_MESSAGE)
    }

    fn lease_err(&self, lease: LeaseId, e: etcd_client::Error) -> StoreError {
        match convert::classify(&e) {
            Failure::LeaseNotFound => StoreError::LeaseNotFound(lease),
            _ => store_err(&self.endpoint, e),
        }
    }

    /// One page-by-page read of `prefix` at one revision.
    async fn range_once(&self, prefix: &str) -> Result<RangeResult, etcd_client::Error> {
        let end = prefix_end(prefix.as_bytes()).unwrap_or_else(|| vec![0]);
        let mut start = if prefix.is_empty() {
            vec![0]
        } else {
            prefix.as_bytes().to_vec()
        };
        let (mut kvs, mut revision) = (Vec::new(), 0);
        loop {
            let mut opts = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if revision > 0 {
                opts = opts.with_revision(revision);
            }
            let resp = self
                .call("range", self.kv().get(start.clone(), Some(opts)))
                .await?;
            if revision == 0 {
                revision = resp.header().map_or(0, |h| h.revision());
            }
            kvs.extend(resp.kvs().iter().map(convert::kv));
            match resp.kvs().last() {
                Some(last) if resp.more() => {
                    start = last.key().to_vec();
                    start.push(0);
                }
                _ => return Ok(RangeResult { kvs, revision }),
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    fn describe(&self) -> String {
        format!(
            "etcd://{}",
            self.endpoint
                .split(',')
                .map(|e| e.trim_start_matches("http://"))
                .collect::<Vec<_>>()
                .join(",")
        )
    }

    fn max_txn_ops(&self) -> usize {
        MAX_TXN_OPS
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let resp = self
            .call("get", self.kv().get(key, None))
            .await
            .map_err(|e| store_err(&self.endpoint, e))?;
        Ok(resp.kvs().first().map(convert::kv))
    }

    async fn range(&self, prefix: &str) -> Result<RangeResult> {
        // A later page's revision may be compacted under us: read again from the top.
        let mut attempts = 0;
        loop {
            match self.range_once(prefix).await {
                Ok(r) => return Ok(r),
                Err(e) if matches!(convert::classify(&e), Failure::Compacted) && attempts < 3 => {
                    attempts += 1;
                }
                Err(e) => return Err(store_err(&self.endpoint, e)),
            }
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>, lease: LeaseId) -> Result<Revision> {
        let opts = (lease != 0).then(|| PutOptions::new().with_lease(lease));
        let resp = self
            .call("put", self.kv().put(key, value, opts))
            .await
            .map_err(|e| self.lease_err(lease, e))?;
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    async fn delete(&self, key: &str) -> Result<Option<KeyValue>> {
        let opts = DeleteOptions::new().with_prev_key();
        let resp = self
            .call("delete", self.kv().delete(key, Some(opts)))
            .await
            .map_err(|e| store_err(&self.endpoint, e))?;
        Ok(resp.prev_kvs().first().map(convert::kv))
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<usize> {
        let end = prefix_end(prefix.as_bytes()).unwrap_or_else(|| vec![0]);
        let start = if prefix.is_empty() {
            vec![0]
        } else {
            prefix.as_bytes().to_vec()
        };
        let opts = DeleteOptions::new().with_range(end);
        let resp = self
            .call("delete_prefix", self.kv().delete(start, Some(opts)))
            .await
            .map_err(|e| store_err(&self.endpoint, e))?;
        Ok(usize::try_from(resp.deleted()).unwrap_or(0))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        check_txn(&txn, MAX_TXN_OPS)?;
        let compares: Vec<_> = txn.compare.iter().map(convert::compare).collect();
        let success: Vec<_> = txn.success.iter().map(convert::op).collect();
        let failure: Vec<_> = txn.failure.iter().map(convert::op).collect();
        let request = EtcdTxn::new()
            .when(compares)
            .and_then(success)
            .or_else(failure);
        let resp = self
            .call("txn", self.kv().txn(request))
            .await
            .map_err(|e| {
                self.lease_err(
                    convert::first_lease(txn.success.iter().chain(&txn.failure)),
                    e,
                )
            })?;
        Ok(TxnResult {
            succeeded: resp.succeeded(),
            revision: resp.header().map_or(0, |h| h.revision()),
            results: resp.op_responses().iter().map(convert::op_result).collect(),
        })
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream> {
        let (key, opts) = watch::options(prefix, from);
        let mut client = self
            .client
            .watch_client()
            .max_decoding_message_size(MAX_MESSAGE);
        let (watcher, stream) = self
            .call("watch", client.watch(key, Some(opts)))
            .await
            .map_err(|e| store_err(&self.endpoint, e))?;
        Ok(watch::Follow::new(watcher, stream, self.endpoint.clone(), from).into_stream())
    }

    async fn revision(&self) -> Result<Revision> {
        let opts = GetOptions::new().with_count_only();
        let resp = self
            .call("revision", self.kv().get("/", Some(opts)))
            .await
            .map_err(|e| store_err(&self.endpoint, e))?;
        resp.header()
            .map(|h| h.revision())
            .ok_or_else(|| self.unavailable("expected a response header, found none"))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let opts = CompactionOptions::new().with_physical();
        match self
            .call("compact", self.kv().compact(revision, Some(opts)))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match convert::classify(&e) {
                // etcd does not say how far it compacted; at least up to here.
                Failure::Compacted => Err(StoreError::Compacted {
                    requested: revision,
                    compacted: revision - 1,
                }),
                Failure::FutureRevision => Err(StoreError::FutureRevision {
                    requested: revision,
                    current: self.revision().await?,
                }),
                _ => Err(store_err(&self.endpoint, e)),
            },
        }
    }

    async fn lease_grant(&self, ttl: Duration) -> Result<LeaseId> {
        // etcd counts whole seconds (and raises very short TTLs to its minimum).
        let secs = i64::try_from(ttl.as_millis().div_ceil(1000))
            .unwrap_or(i64::MAX)
            .max(1);
        let resp = self
            .call("lease_grant", self.client.lease_client().grant(secs, None))
            .await
            .map_err(|e| store_err(&self.endpoint, e))?;
        if !resp.error().is_empty() {
            return Err(StoreError::Backend(format!(
                "etcd lease grant: {}",
                resp.error()
            )));
        }
        Ok(resp.id())
    }

    async fn lease_keep_alive(&self, lease: LeaseId) -> Result<()> {
        // One request on a keep-alive stream; etcd answers TTL 0 for an unknown lease.
        let mut client = self.client.lease_client();
        self.call("lease_keep_alive", client.keep_alive(lease))
            .await
            .map(|_| ())
            .map_err(|e| self.lease_err(lease, e))
    }

    async fn lease_revoke(&self, lease: LeaseId) -> Result<()> {
        let mut client = self.client.lease_client();
        self.call("lease_revoke", client.revoke(lease))
            .await
            .map(|_| ())
            .map_err(|e| self.lease_err(lease, e))
    }
}
