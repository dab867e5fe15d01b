//! Several processes on one store: the test binary runs itself as child processes
//! (`child_process` test, ignored unless `PODNET_STORE_TEST_CHILD` is set).

use std::collections::BTreeMap;
use std::process::Stdio;

use podnet_store::{Compare, EventKind, Op, Revision, Store, Txn};

use super::{next_event, Ctx, WAIT};

const CHILD: &str = "PODNET_STORE_TEST_CHILD";
const URL: &str = "PODNET_STORE_TEST_URL";
const PREFIX: &str = "PODNET_STORE_TEST_PREFIX";
const WORKER: &str = "PODNET_STORE_TEST_WORKER";
const ROUNDS: &str = "PODNET_STORE_TEST_ROUNDS";

/// Starts this test binary as a child running `child_process` in `mode`.
fn spawn_child(ctx: &Ctx, mode: &str, worker: usize, rounds: usize) -> tokio::process::Child {
    let exe = std::env::current_exe().expect("the test binary's path");
    tokio::process::Command::new(exe)
        .args([
            "child_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, mode)
        .env(URL, &ctx.url)
        .env(PREFIX, &ctx.prefix)
        .env(WORKER, worker.to_string())
        .env(ROUNDS, rounds.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting a child test process")
}

async fn wait_child(child: tokio::process::Child, what: &str) {
    let out = tokio::time::timeout(WAIT * 3, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("expected {what} to finish, it is still running"))
        .expect("waiting for a child process");
    assert!(
        out.status.success(),
        "expected {what} to succeed, it exited with {}:\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn counter_key(prefix: &str) -> String {
    format!("{prefix}counter")
}

fn own_key(prefix: &str, n: u64) -> String {
    format!("{prefix}own/{n:06}")
}

/// Children increment one counter with compare-and-swap, each increment writing a key
/// of its own in the same transaction. No increment is lost, and a watcher sees every
/// revision once, in order.
pub async fn case_processes_cas_counter(ctx: &Ctx) {
    const WORKERS: usize = 3;
    const ROUNDS_EACH: usize = 40;
    let total = (WORKERS * ROUNDS_EACH) as u64;
    let s = &ctx.store;
    let from = s.revision().await.unwrap() + 1;
    let mut w = s.watch(&ctx.prefix, from).await.unwrap();
    let children: Vec<_> = (0..WORKERS)
        .map(|i| spawn_child(ctx, "counter", i, ROUNDS_EACH))
        .collect();

    // Every increment is one revision with two puts: the counter and the own key.
    let mut by_rev: BTreeMap<Revision, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    let mut last_rev = 0;
    while by_rev.len() < total as usize || by_rev.values().any(|v| v.len() < 2) {
        let ev = next_event(&mut w).await;
        assert_eq!(ev.kind, EventKind::Put);
        assert!(
            ev.kv.mod_revision >= last_rev,
            "events in revision order: {} after {last_rev}",
            ev.kv.mod_revision
        );
        last_rev = ev.kv.mod_revision;
        by_rev
            .entry(ev.kv.mod_revision)
            .or_default()
            .push((ev.kv.key, ev.kv.value));
    }
    for (i, child) in children.into_iter().enumerate() {
        wait_child(child, &format!("counter worker {i}")).await;
    }
    for (n, (rev, mut changes)) in (1..).zip(by_rev) {
        changes.sort();
        assert_eq!(
            changes,
            [
                (counter_key(&ctx.prefix), n.to_string().into_bytes()),
                (own_key(&ctx.prefix, n), changes[1].1.clone(),),
            ],
            "revision {rev} is increment {n}"
        );
    }
    let counter = s.get(&counter_key(&ctx.prefix)).await.unwrap().unwrap();
    assert_eq!(
        counter.value,
        total.to_string().into_bytes(),
        "no lost update"
    );
    assert_eq!(counter.version, total as i64);
    let own = s.range(&format!("{}own/", ctx.prefix)).await.unwrap();
    assert_eq!(own.kvs.len(), total as usize);
    for i in 0..WORKERS {
        let mine = own
            .kvs
            .iter()
            .filter(|kv| kv.value == format!("w{i}").as_bytes());
        assert_eq!(mine.count(), ROUNDS_EACH, "worker {i} did all its rounds");
    }
}

/// A child process writes; the parent's watcher sees it.
pub async fn case_processes_watch(ctx: &Ctx) {
    let s = &ctx.store;
    let mut w = s.watch(&ctx.prefix, 0).await.unwrap();
    let child = spawn_child(ctx, "put", 0, 3);
    for i in 0..3 {
        let ev = next_event(&mut w).await;
        assert_eq!(ev.kv.key, format!("{}from-child/{i}", ctx.prefix));
        assert_eq!(ev.kv.value, b"hello from another process");
    }
    wait_child(child, "the writer process").await;
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{CHILD} is set, so {name} must be too: this test is only run by the conformance suite"
        )
    })
}

/// The child side; does nothing unless `PODNET_STORE_TEST_CHILD` is set.
pub fn child_main() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    let (url, prefix) = (env(URL), env(PREFIX));
    let worker: usize = env(WORKER).parse().expect("a numeric worker id");
    let rounds: usize = env(ROUNDS).parse().expect("a numeric round count");
    assert!(
        prefix.ends_with('/'),
        "expected a key prefix ending in /, found {prefix:?}"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let store = podnet_store::open(&url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
        match mode.as_str() {
            "counter" => counter(&*store, &prefix, worker, rounds).await,
            "put" => {
                for i in 0..rounds {
                    let key = format!("{prefix}from-child/{i}");
                    store
                        .put(&key, b"hello from another process".to_vec(), 0)
                        .await
                        .expect("child put");
                }
            }
            other => panic!("unknown {CHILD} mode {other:?}: expected counter or put"),
        }
    });
}

async fn counter(store: &dyn Store, prefix: &str, worker: usize, rounds: usize) {
    let key = counter_key(prefix);
    for _ in 0..rounds {
        loop {
            let current = match store.get(&key).await {
                Ok(kv) => kv,
                Err(e) if e.is_transient() => continue,
                Err(e) => panic!("reading the counter: {e}"),
            };
            let (value, rev) = current.map_or((0, 0), |kv| {
                let v: u64 = String::from_utf8(kv.value).unwrap().parse().unwrap();
                (v, kv.mod_revision)
            });
            let next = value + 1;
            let txn = Txn::new()
                .when([Compare::mod_revision(&key, rev)])
                .and_then([
                    Op::put(&key, next.to_string()),
                    Op::put(own_key(prefix, next), format!("w{worker}")),
                ]);
            match store.txn(txn).await {
                Ok(r) if r.succeeded => break,
                Ok(_) => continue,
                Err(e) if e.is_transient() => continue,
                Err(e) => panic!("incrementing the counter: {e}"),
            }
        }
    }
}
