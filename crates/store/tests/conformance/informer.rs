//! The typed informer over each backend: list, follow, resume after a lost watch,
//! relist after compaction. A wrapper store lets the test cut watch streams.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use podnet_model::{Kind, Object, ObjectRef};
use podnet_store::{
    Api, Informer, InformerEvent, KeyValue, LeaseId, RangeResult, Result, Revision, Store,
    StoreError, Txn, TxnResult, WatchStream,
};
use tokio::sync::watch;

use super::{Ctx, WAIT};

/// Delegates to a store; `cut()` ends every open watch stream with `Unavailable`, as a
/// lost connection would.
struct Cuttable {
    inner: Arc<dyn Store>,
    cuts: watch::Sender<u64>,
}

impl Cuttable {
    fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Cuttable {
            inner,
            cuts: watch::channel(0).0,
        })
    }

    fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }
}

#[async_trait::async_trait]
impl Store for Cuttable {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn max_txn_ops(&self) -> usize {
        self.inner.max_txn_ops()
    }
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.inner.get(key).await
    }
    async fn range(&self, prefix: &str) -> Result<RangeResult> {
        self.inner.range(prefix).await
    }
    async fn put(&self, key: &str, value: Vec<u8>, lease: LeaseId) -> Result<Revision> {
        self.inner.put(key, value, lease).await
    }
    async fn delete(&self, key: &str) -> Result<Option<KeyValue>> {
        self.inner.delete(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<usize> {
        self.inner.delete_prefix(prefix).await
    }
    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        self.inner.txn(txn).await
    }
    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream> {
        let stream = self.inner.watch(prefix, from).await?;
        let cuts = self.cuts.subscribe();
        Ok(Box::pin(futures::stream::unfold(
            Some((stream, cuts)),
            |state| async move {
                let (mut stream, mut cuts) = state?;
                tokio::select! {
                    biased;
                    _ = cuts.changed() => Some((
                        Err(StoreError::Unavailable {
                            endpoint: "test".into(),
                            message: "watch cut by the test".into(),
                        }),
                        None,
                    )),
                    item = stream.next() => item.map(|i| (i, Some((stream, cuts)))),
                }
            },
        )))
    }
    async fn revision(&self) -> Result<Revision> {
        self.inner.revision().await
    }
    async fn compact(&self, revision: Revision) -> Result<()> {
        self.inner.compact(revision).await
    }
    async fn lease_grant(&self, ttl: Duration) -> Result<LeaseId> {
        self.inner.lease_grant(ttl).await
    }
    async fn lease_keep_alive(&self, lease: LeaseId) -> Result<()> {
        self.inner.lease_keep_alive(lease).await
    }
    async fn lease_revoke(&self, lease: LeaseId) -> Result<()> {
        self.inner.lease_revoke(lease).await
    }
}

/// A namespace of this case's own (kube names: lower-case, digits, dashes).
fn namespace(ctx: &Ctx) -> String {
    let clean: String = ctx
        .prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("t{}", clean.trim_matches('-')).replace("--", "-")
}

fn config_map(ns: &str, name: &str, value: &str) -> Object {
    Object::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": {"v": value},
    }))
    .expect("a valid ConfigMap")
}

async fn next(inf: &mut Informer) -> InformerEvent {
    tokio::time::timeout(WAIT, inf.next())
        .await
        .unwrap_or_else(|_| panic!("expected an informer event within {WAIT:?}"))
}

fn applied(ev: InformerEvent) -> (String, String) {
    match ev {
        InformerEvent::Applied(o) => {
            let v = o.to_value()["data"]["v"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (o.name().to_string(), v)
        }
        other => panic!("expected Applied, found {other:?}"),
    }
}

fn names(objs: &[Object]) -> Vec<String> {
    objs.iter().map(|o| o.name().to_string()).collect()
}

pub async fn case_informer_follows_and_resumes(ctx: &Ctx) {
    let store = Cuttable::new(ctx.store.clone());
    let api = Api::new(store.clone());
    let ns = namespace(ctx);
    api.put(&config_map(&ns, "a", "1")).await.unwrap();
    // Another namespace is not followed.
    api.put(&config_map(&format!("{ns}-other"), "x", "1"))
        .await
        .unwrap();
    let mut inf = Informer::new(api.clone(), Kind::ConfigMap, Some(&ns));
    match next(&mut inf).await {
        InformerEvent::Restarted(objs) => {
            assert_eq!(names(&objs), ["a"]);
            assert!(
                podnet_store::typed::revision_of(&objs[0]) > 0,
                "resourceVersion set"
            );
        }
        other => panic!("expected Restarted, found {other:?}"),
    }
    api.put(&config_map(&ns, "b", "1")).await.unwrap();
    assert_eq!(applied(next(&mut inf).await), ("b".into(), "1".into()));
    let a = ObjectRef::new(Kind::ConfigMap, Some(&ns), "a");
    assert!(api.delete(&a).await.unwrap());
    match next(&mut inf).await {
        InformerEvent::Deleted(r, Some(prev)) => {
            assert_eq!(r, a);
            assert_eq!(prev.name(), "a");
        }
        other => panic!("expected Deleted with the last state, found {other:?}"),
    }
    // The watch is lost; changes made meanwhile arrive after the resume, in order,
    // without a relist.
    store.cut();
    api.put(&config_map(&ns, "c", "1")).await.unwrap();
    api.put(&config_map(&ns, "b", "2")).await.unwrap();
    assert_eq!(applied(next(&mut inf).await), ("c".into(), "1".into()));
    assert_eq!(applied(next(&mut inf).await), ("b".into(), "2".into()));
    api.put(&config_map(&ns, "d", "1")).await.unwrap();
    assert_eq!(applied(next(&mut inf).await), ("d".into(), "1".into()));
}

/// Exclusive: compacts the store.
pub async fn case_informer_relists_after_compaction(ctx: &Ctx) {
    let store = Cuttable::new(ctx.store.clone());
    let api = Api::new(store.clone());
    let ns = namespace(ctx);
    api.put(&config_map(&ns, "a", "1")).await.unwrap();
    let mut inf = Informer::new(api.clone(), Kind::ConfigMap, Some(&ns));
    assert!(matches!(next(&mut inf).await, InformerEvent::Restarted(o) if names(&o) == ["a"]));
    api.put(&config_map(&ns, "b", "1")).await.unwrap();
    assert_eq!(applied(next(&mut inf).await).0, "b");
    // Lose the watch, change things, and compact past the informer's position: it
    // cannot resume, so it lists again.
    store.cut();
    api.put(&config_map(&ns, "c", "1")).await.unwrap();
    api.delete(&ObjectRef::new(Kind::ConfigMap, Some(&ns), "b"))
        .await
        .unwrap();
    let now = store.revision().await.unwrap();
    store.compact(now).await.unwrap();
    match next(&mut inf).await {
        InformerEvent::Restarted(objs) => assert_eq!(names(&objs), ["a", "c"]),
        other => panic!("expected Restarted after compaction, found {other:?}"),
    }
    api.put(&config_map(&ns, "e", "1")).await.unwrap();
    assert_eq!(applied(next(&mut inf).await).0, "e");
}
