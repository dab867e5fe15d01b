//! The conformance suite against the embedded SQLite backend, plus what only the
//! embedded backend has (files, several stores on one file, retention).

#[macro_use]
mod conformance;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use podnet_store::embedded::{Options, SqliteStore};
use podnet_store::{Op, Store, StoreError, Txn};

use conformance::{next_event, next_events, Ctx};

/// Every case gets a database file of its own.
async fn make(name: &'static str, _exclusive: bool) -> Ctx {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).expect("opening a new store");
    Ctx {
        store: Arc::new(store),
        url: format!("sqlite://{}", path.display()),
        prefix: format!("/t/{name}/"),
        guard: Box::new(dir),
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
async fn creates_parent_directory_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/state.db");
    let rev = {
        let s = SqliteStore::open(&path).unwrap();
        s.put("/k", b"v".to_vec(), 0).await.unwrap()
    };
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.revision().await.unwrap(), rev);
    let kv = s.get("/k").await.unwrap().unwrap();
    assert_eq!((kv.value.as_slice(), kv.mod_revision), (&b"v"[..], rev));
    let mut w = s.watch("/", rev).await.unwrap();
    assert_eq!(
        next_event(&mut w).await.kv.key,
        "/k",
        "history survives a reopen"
    );
    assert_eq!(s.describe(), format!("sqlite://{}", path.display()));
}

/// Two stores opened on one file in one process behave like two processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path).unwrap();
    let mut w = b.watch("/x/", 0).await.unwrap();
    let rev = a.put("/x/1", b"from a".to_vec(), 0).await.unwrap();
    let ev = next_event(&mut w).await;
    assert_eq!((ev.kv.key.as_str(), ev.kv.mod_revision), ("/x/1", rev));
    let lease = a.lease_grant(Duration::from_secs(30)).await.unwrap();
    b.put("/x/2", b"leased".to_vec(), lease).await.unwrap();
    b.lease_revoke(lease).await.unwrap();
    assert!(a.get("/x/2").await.unwrap().is_none());
}

/// A watcher with a tiny queue that reads nothing for a while still gets every event,
/// in order (it catches up from the log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_watcher_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        watch_queue: 4,
        ..Options::default()
    };
    let s = SqliteStore::open_with(&dir.path().join("state.db"), options).unwrap();
    let mut slow = s.watch("/s/", 0).await.unwrap();
    let mut fast = s.watch("/s/", 0).await.unwrap();
    let mut revs = Vec::new();
    for i in 0..200 {
        revs.push(
            s.put(&format!("/s/{i:03}"), b"v".to_vec(), 0)
                .await
                .unwrap(),
        );
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    // Let the poller overflow the queues.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for w in [&mut fast, &mut slow] {
        let got: Vec<_> = next_events(w, 200)
            .await
            .into_iter()
            .map(|e| e.kv.mod_revision)
            .collect();
        assert_eq!(got, revs);
    }
}

/// Automatic compaction keeps the configured number of revisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_compacts_automatically() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        retention: 10,
        maintenance_interval: Duration::from_millis(20),
        ..Options::default()
    };
    let s = SqliteStore::open_with(&dir.path().join("state.db"), options).unwrap();
    let first = s.put("/r/0", b"v".to_vec(), 0).await.unwrap();
    let mut last = first;
    for i in 1..50 {
        last = s.put(&format!("/r/{i}"), b"v".to_vec(), 0).await.unwrap();
    }
    conformance::eventually("old history to be compacted", || async {
        matches!(
            s.watch("/r/", first).await,
            Err(StoreError::Compacted { .. })
        )
    })
    .await;
    // The most recent revisions are still there.
    let mut w = s.watch("/r/", last - 9).await.unwrap();
    assert_eq!(next_event(&mut w).await.kv.mod_revision, last - 9);
    assert_eq!(s.range("/r/").await.unwrap().kvs.len(), 50);
}

/// Dropping the store ends its watches with an error (and stops its threads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_ends_watches() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("state.db")).unwrap();
    let mut w = s.watch("/", 0).await.unwrap();
    drop(s);
    match tokio::time::timeout(conformance::WAIT, w.next()).await {
        Ok(Some(Err(StoreError::Unavailable { .. }))) => {}
        other => panic!("expected Unavailable after the store was dropped, found {other:?}"),
    }
}

/// Many small transactions and a big one (the allocation pattern of the controller).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let mut w = s.watch("/m/", 0).await.unwrap();
    for i in 0..2000 {
        let key = format!("/m/one/{i:05}");
        let r = s
            .txn(
                Txn::new()
                    .when([podnet_store::Compare::absent(&key)])
                    .and_then([Op::put(&key, "v")]),
            )
            .await
            .unwrap();
        assert!(r.succeeded);
    }
    let ops = (0..s.max_txn_ops()).map(|i| Op::put(format!("/m/big/{i:05}"), "v"));
    let r = s.txn(Txn::new().and_then(ops)).await.unwrap();
    assert!(r.succeeded);
    assert_eq!(
        s.range("/m/").await.unwrap().kvs.len(),
        2000 + s.max_txn_ops()
    );
    let events = next_events(&mut w, 2000 + s.max_txn_ops()).await;
    assert!(events
        .windows(2)
        .all(|p| p[0].kv.mod_revision <= p[1].kv.mod_revision));
    assert_eq!(events.last().unwrap().kv.mod_revision, r.revision);
}

/// A one-shot store (the CNI plugin's) reads and writes like any other on the same
/// file, on one connection and without background threads; its writes reach the
/// watchers of a normal store; it refuses to watch; a later one-shot open sees its
/// data (the log it leaves uncheckpointed is read back).
#[tokio::test(flavor = "current_thread")]
async fn oneshot_store_reads_writes_and_refuses_watches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let normal = SqliteStore::open(&path).unwrap();
    let mut w = normal.watch("/o/", 0).await.unwrap();
    for i in 0..3 {
        let one = SqliteStore::open_oneshot(&path).unwrap();
        let key = format!("/o/k{i}");
        let r = one
            .txn(
                Txn::new()
                    .when([podnet_store::Compare::absent(&key)])
                    .and_then([Op::put(&key, b"v".to_vec())]),
            )
            .await
            .unwrap();
        assert!(r.succeeded);
        assert_eq!(one.range("/o/").await.unwrap().kvs.len(), i + 1);
        let err = one
            .watch("/o/", 0)
            .await
            .err()
            .expect("a one-shot store cannot watch");
        assert!(err.to_string().contains("one-shot"), "{err}");
        drop(one);
        let ev = next_event(&mut w).await;
        assert_eq!(ev.kv.key, key);
    }
    drop(w);
    drop(normal);
    let again = SqliteStore::open_oneshot(&path).unwrap();
    assert_eq!(again.range("/o/").await.unwrap().kvs.len(), 3);
}

/// One-shot processes that each open the file alone, commit and close keep the
/// write-ahead log short: every opener rebuilds the log's index by reading the whole
/// log, so a log that only grew would make every open (and every commit's
/// checkpoint) slower. Nothing committed is lost along the way.
#[tokio::test(flavor = "current_thread")]
async fn oneshot_commits_keep_the_log_short() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let wal = dir.path().join("state.db-wal");
    let mut largest = 0;
    for i in 0..300 {
        let one = SqliteStore::open_oneshot(&path).unwrap();
        let key = format!("/o/k{i:03}");
        one.put(&key, vec![b'v'; 200], 0).await.unwrap();
        drop(one);
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    // 64 pages of 4 KiB (plus frame headers) before a commit truncates the log,
    // plus the frames of that commit.
    assert!(
        largest < 80 * 4120,
        "the write-ahead log grew to {largest} bytes over 300 one-shot commits"
    );
    let again = SqliteStore::open_oneshot(&path).unwrap();
    assert_eq!(again.range("/o/").await.unwrap().kvs.len(), 300);
}

/// The truncation of the log by one-shot commits never waits for other processes: a
/// reader that keeps a snapshot open (so the log cannot be restarted) delays none of
/// them by the busy timeout, and the log is truncated once the reader is gone.
#[tokio::test(flavor = "current_thread")]
async fn oneshot_truncation_does_not_wait_for_readers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let wal = dir.path().join("state.db-wal");
    drop(SqliteStore::open_oneshot(&path).unwrap());
    let reader = rusqlite::Connection::open(&path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let n: i64 = reader
        .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    let started = std::time::Instant::now();
    for i in 0..100 {
        let one = SqliteStore::open_oneshot(&path).unwrap();
        one.put(&format!("/r/k{i:03}"), vec![b'v'; 200], 0)
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "100 one-shot commits beside a reader took {:?}",
        started.elapsed()
    );
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    for i in 100..130 {
        let one = SqliteStore::open_oneshot(&path).unwrap();
        one.put(&format!("/r/k{i:03}"), vec![b'v'; 200], 0)
            .await
            .unwrap();
    }
    let len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(len < 80 * 4120, "the log stayed at {len} bytes");
    let again = SqliteStore::open_oneshot(&path).unwrap();
    assert_eq!(again.range("/r/").await.unwrap().kvs.len(), 130);
}
