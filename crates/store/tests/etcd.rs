//! The conformance suite against a real etcd (started by the tests; they fail when the
//! etcd binary is missing), plus what only etcd has: a server that goes away.

#[macro_use]
mod conformance;

use std::sync::{Arc, OnceLock};

use futures::StreamExt;
use podnet_model::{Kind, Object};
use podnet_store::etcd::EtcdStore;
use podnet_store::{Api, Informer, InformerEvent, Store, StoreError};

use conformance::{next_event, next_events, Ctx, WAIT};
use podnet_store::testing::EtcdServer;

/// One etcd for the cases that can share it (each under its own key prefix).
fn shared() -> &'static EtcdServer {
    static SHARED: OnceLock<EtcdServer> = OnceLock::new();
    SHARED.get_or_init(EtcdServer::start)
}

async fn connect(endpoint: String) -> EtcdStore {
    EtcdStore::connect(std::slice::from_ref(&endpoint))
        .await
        .unwrap_or_else(|e| panic!("connecting to etcd at {endpoint}: {e}"))
}

/// Shared cases use the shared etcd; exclusive ones (compaction, revision counting)
/// get an etcd of their own.
async fn make(name: &'static str, exclusive: bool) -> Ctx {
    let (endpoint, url, guard): (String, String, Box<dyn std::any::Any + Send + Sync>) =
        if exclusive {
            let server = tokio::task::spawn_blocking(EtcdServer::start)
                .await
                .unwrap();
            (server.endpoint(), server.url(), Box::new(server))
        } else {
            let server = tokio::task::spawn_blocking(shared).await.unwrap();
            (server.endpoint(), server.url(), Box::new(()))
        };
    Ctx {
        store: Arc::new(connect(endpoint).await),
        url,
        prefix: format!("/t/{name}/"),
        guard,
    }
}

cases!(make);

/// Run by the multi-process cases as a child process; does nothing otherwise.
#[test]
#[ignore = "run as a child process by the conformance suite"]
fn child_process() {
    conformance::procs::child_main();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describes_itself() {
    let server = tokio::task::spawn_blocking(shared).await.unwrap();
    let store = connect(server.endpoint()).await;
    assert_eq!(store.describe(), server.url());
    assert_eq!(store.max_txn_ops(), 128);
    let via_url = podnet_store::open(&server.url()).await.unwrap();
    assert_eq!(via_url.describe(), server.url());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    match EtcdStore::connect(&[format!("http://127.0.0.1:{port}")]).await {
        Err(e @ StoreError::Unavailable { .. }) => assert!(e.is_transient()),
        Err(other) => panic!("expected Unavailable, found {other}"),
        Ok(_) => panic!("expected Unavailable, found a connection"),
    }
}

fn config_map(name: &str) -> Object {
    Object::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "restart"},
    }))
    .unwrap()
}

/// etcd is killed and started again on the same data dir and port: the watch ends
/// with an error, resuming from the last revision + 1 misses nothing and repeats
/// nothing, and an informer carries on without relisting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_without_gap() {
    let mut server = tokio::task::spawn_blocking(EtcdServer::start)
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(connect(server.endpoint()).await);
    let api = Api::new(store.clone());
    let mut informer = Informer::new(api.clone(), Kind::ConfigMap, Some("restart"));
    assert!(matches!(
        informer.next().await,
        InformerEvent::Restarted(o) if o.is_empty()
    ));

    let from = store.revision().await.unwrap() + 1;
    for i in 0..5 {
        store
            .put(&format!("/k/{i}"), b"before".to_vec(), 0)
            .await
            .unwrap();
    }
    api.put(&config_map("before")).await.unwrap();
    let mut w = store.watch("/k/", from).await.unwrap();
    let mut seen = next_events(&mut w, 5).await;
    assert!(matches!(informer.next().await, InformerEvent::Applied(o) if o.name() == "before"));

    let mut server = tokio::task::spawn_blocking(move || {
        server.kill();
        server
    })
    .await
    .unwrap();
    match tokio::time::timeout(WAIT, w.next()).await {
        Ok(Some(Err(e @ StoreError::Unavailable { .. }))) => assert!(e.is_transient()),
        other => panic!("expected the watch to end with Unavailable, found {other:?}"),
    }
    match store.put("/k/down", b"x".to_vec(), 0).await {
        Err(e) => assert!(e.is_transient(), "expected a transient error, found {e}"),
        Ok(rev) => panic!("expected a write to a dead etcd to fail, found revision {rev}"),
    }

    let server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    for i in 5..10 {
        let key = format!("/k/{i}");
        conformance::eventually("a write to the restarted etcd", || async {
            store.put(&key, b"after".to_vec(), 0).await.is_ok()
        })
        .await;
    }
    api.put(&config_map("after")).await.unwrap();
    let last = seen.last().unwrap().kv.mod_revision;
    let mut w = store.watch("/k/", last + 1).await.unwrap();
    seen.extend(next_events(&mut w, 5).await);
    let keys: Vec<String> = seen.iter().map(|e| e.kv.key.clone()).collect();
    let expected: Vec<String> = (0..10).map(|i| format!("/k/{i}")).collect();
    assert_eq!(keys, expected, "no gap, no duplicate");
    assert!(seen
        .windows(2)
        .all(|p| p[0].kv.mod_revision < p[1].kv.mod_revision));

    let ev = tokio::time::timeout(WAIT, informer.next())
        .await
        .expect("an informer event after the restart");
    assert!(
        matches!(&ev, InformerEvent::Applied(o) if o.name() == "after"),
        "expected the informer to resume with Applied(after), found {ev:?}"
    );
    let put = store.put("/k/live", b"v".to_vec(), 0).await.unwrap();
    assert_eq!(next_event(&mut w).await.kv.mod_revision, put);
    drop(server);
}
