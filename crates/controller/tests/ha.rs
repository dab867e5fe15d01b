//! High availability: racing controllers never hand out one item twice, and a
//! standby process takes over within the lease TTL when the leader is killed.

// Measurements are reported on stderr, for the person running the test.
#![allow(clippy::print_stderr)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use podnet_controller::{reconcile_once, ControllerOptions};
use podnet_model::Kind;
use serde_json::json;

const TTL: Duration = Duration::from_secs(2);

/// Not a test: the body of a controller child process (does nothing unless spawned
/// by the tests below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of the HA tests"]
async fn child_controller() {
    run_child_controller(TTL).await;
}

fn spawn_child(db: &std::path::Path, id: &str) -> ChildController {
    ChildController::spawn("child_controller", db, id)
}

async fn all_allocated(store: &std::sync::Arc<dyn podnet_store::Store>, n: usize) -> Option<()> {
    let svcs = list(store, Kind::Service).await;
    let done = svcs.iter().filter(|o| cluster_ip(o).is_some()).count();
    (svcs.len() == n && done == n).then_some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_controllers_never_duplicate() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("s.db");
    let store = open(&db);
    for i in 0..300 {
        put(&store, svc_json("race", &format!("s{i}"), json!({"type": "NodePort", "selector": {"app": format!("a{i}")}, "ports": [{"port": 80}]}))).await;
    }
    // two elected controllers in this process, one in a child process, and two
    // unfenced one-shot reconcilers playing stale leaders, all at once
    let a = start(store.clone(), options("in-process-a"));
    let b = start(store.clone(), options("in-process-b"));
    let _c = spawn_child(&db, "child-c");
    let opts = ControllerOptions::default();
    let (s1, s2) = (store.clone(), store.clone());
    let (o1, o2) = (opts.clone(), opts.clone());
    let r1 = tokio::spawn(async move { reconcile_once(&s1, &o1, 20).await.unwrap() });
    let r2 = tokio::spawn(async move { reconcile_once(&s2, &o2, 20).await.unwrap() });
    for i in 300..400 {
        put(
            &store,
            svc_json(
                "race",
                &format!("s{i}"),
                json!({"type": "NodePort", "ports": [{"port": 80}]}),
            ),
        )
        .await;
    }
    assert_eq!(r1.await.unwrap(), 0);
    assert_eq!(r2.await.unwrap(), 0);
    eventually("400 services allocated", Duration::from_secs(20), || {
        all_allocated(&store, 400)
    })
    .await;
    assert_no_duplicates(&store).await;
    let allocs = allocations(&store).await;
    assert_eq!(
        allocs.len(),
        800,
        "one cluster IP and one node port per service, nothing leaked"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_process_takes_over_within_the_lease_ttl_after_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("s.db");
    let store = open(&db);
    let mut first = spawn_child(&db, "first");
    eventually("first leads", Duration::from_secs(20), || async {
        (leader(&store).await.as_deref() == Some("first")).then_some(())
    })
    .await;
    let _second = spawn_child(&db, "second");
    for i in 0..50 {
        put(
            &store,
            svc_json("ha", &format!("s{i}"), json!({"ports": [{"port": 80}]})),
        )
        .await;
    }
    eventually("50 allocated by first", Duration::from_secs(20), || {
        all_allocated(&store, 50)
    })
    .await;
    assert_eq!(leader(&store).await.as_deref(), Some("first"));

    first.kill9();
    let killed = Instant::now();
    eventually("second leads", TTL * 3, || async {
        (leader(&store).await.as_deref() == Some("second")).then_some(())
    })
    .await;
    let takeover = killed.elapsed();
    eprintln!("take-over after kill -9: {takeover:?} (lease ttl {TTL:?})");
    assert!(
        takeover < TTL + Duration::from_secs(1),
        "take-over took {takeover:?}"
    );

    for i in 50..100 {
        put(
            &store,
            svc_json("ha", &format!("s{i}"), json!({"ports": [{"port": 80}]})),
        )
        .await;
    }
    eventually("100 allocated", Duration::from_secs(20), || {
        all_allocated(&store, 100)
    })
    .await;
    assert_no_duplicates(&store).await;
    assert_eq!(allocations(&store).await.len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_key_is_taken_stops_writing_and_campaigns_again() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(&tmp.path().join("s.db"));
    let ctrl = start(store.clone(), options("a"));
    eventually("a leads", Duration::from_secs(10), || async {
        (leader(&store).await.as_deref() == Some("a")).then_some(())
    })
    .await;
    put(
        &store,
        svc_json("d", "before", json!({"ports": [{"port": 80}]})),
    )
    .await;
    eventually("before allocated", Duration::from_secs(10), || {
        all_allocated(&store, 1)
    })
    .await;

    // somebody else takes the key (no lease): every write of "a" is fenced off
    store.delete(podnet_controller::LEADER_KEY).await.unwrap();
    store
        .put(podnet_controller::LEADER_KEY, b"intruder".to_vec(), 0)
        .await
        .unwrap();
    put(
        &store,
        svc_json("d", "during", json!({"ports": [{"port": 80}]})),
    )
    .await;
    // a negative: nothing may happen for a while (three renewal periods)
    tokio::time::sleep(TTL).await;
    let during = get(&store, Kind::Service, Some("d"), "during")
        .await
        .unwrap();
    assert_eq!(cluster_ip(&during), None, "a deposed leader allocated");
    assert_eq!(leader(&store).await.as_deref(), Some("intruder"));

    // the intruder goes: "a" campaigns, wins and catches up
    store.delete(podnet_controller::LEADER_KEY).await.unwrap();
    eventually("a leads again", Duration::from_secs(10), || async {
        (leader(&store).await.as_deref() == Some("a")).then_some(())
    })
    .await;
    eventually("during allocated", Duration::from_secs(10), || {
        all_allocated(&store, 2)
    })
    .await;
    assert_no_duplicates(&store).await;
    ctrl.stop().await;
}
