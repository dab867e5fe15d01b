//! Scale: 10,000 Services and 20,000 ready Pods (2 per service) applied to the
//! embedded store while the controller runs; every ClusterIP and EndpointSlice must be
//! in place within a generous bound. Run `cargo test --release -p podnet-controller
//! --test scale -- --ignored --nocapture` for the timing (the goal is under 5 s).

// Measurements are reported on stderr, for the person running the test.
#![allow(clippy::print_stderr)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use podnet_model::Object;
use podnet_store::typed::encode;
use podnet_store::{Op, Txn};
use serde_json::json;

const SERVICES: usize = 10_000;

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

async fn apply_all(store: &std::sync::Arc<dyn podnet_store::Store>) {
    let mut ops = Vec::new();
    for i in 0..SERVICES {
        let ns = format!("ns{}", i % 10);
        let svc = obj(svc_json(
            &ns,
            &format!("svc{i}"),
            json!({"selector": {"app": format!("app{i}")},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}),
        ));
        ops.push(Op::put(svc.key(), encode(&svc)));
        for r in 0..2 {
            let n = i * 2 + r;
            let ip = format!("10.244.{}.{}", n / 250, n % 250 + 1);
            let pod = obj(pod_json(
                &ns,
                &format!("pod{i}-{r}"),
                json!({"app": format!("app{i}")}),
                &ip,
                true,
            ));
            ops.push(Op::put(pod.key(), encode(&pod)));
        }
        if ops.len() >= 3000 {
            store
                .txn(Txn::new().and_then(std::mem::take(&mut ops)))
                .await
                .unwrap();
        }
    }
    if !ops.is_empty() {
        store.txn(Txn::new().and_then(ops)).await.unwrap();
    }
}

/// Not a test: the controller process of the scale run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of the scale run"]
async fn child_controller() {
    run_child_controller(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale run; see the module docs"]
async fn ten_thousand_services_and_twenty_thousand_pods() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let tmp = tempfile::tempdir().unwrap();
    let store = open(&tmp.path().join("s.db"));
    // the controller in its own process, so that its memory can be measured
    let child = ChildController::spawn("child_controller", &tmp.path().join("s.db"), "scale");
    eventually("leadership", Duration::from_secs(10), || async {
        leader(&store).await.map(|_| ())
    })
    .await;
    let idle = child.rss_kib().unwrap_or(0);
    let t0 = Instant::now();
    apply_all(&store).await;
    let applied = t0.elapsed();
    // cheap polls (raw bytes, no decoding) so that the measurement does not slow
    // the controller down; the full checks follow once the clock has stopped
    let mut polls = 0;
    eventually(
        "every cluster IP and a full slice per service",
        Duration::from_secs(120),
        || {
            polls += 1;
            let store = store.clone();
            async move {
                let ips = store
                    .range(&format!(
                        "{}serviceips/",
                        podnet_controller::alloc::ALLOC_PREFIX
                    ))
                    .await
                    .unwrap()
                    .kvs
                    .len();
                if ips < SERVICES {
                    return None;
                }
                let full = store
                    .range("/registry/endpointslices/")
                    .await
                    .unwrap()
                    .kvs
                    .iter()
                    .filter(|kv| count(&kv.value, b"\"addresses\"") == 2)
                    .count();
                (full == SERVICES).then_some(())
            }
        },
    )
    .await;
    let total = t0.elapsed();
    eprintln!("applied {SERVICES} services + {} pods in {applied:?}; all allocated after {total:?} ({polls} polls)", SERVICES * 2);
    let p = podnet_controller::progress(&store).await.unwrap();
    assert!(p.services == SERVICES && p.is_complete(), "{p:?}");
    let slices = list(&store, podnet_model::Kind::EndpointSlice).await;
    assert_eq!(slices.len(), SERVICES);
    assert!(slices
        .iter()
        .all(|o| matches!(o, Object::EndpointSlice(s) if s.endpoints.len() == 2)));
    assert_no_duplicates(&store).await;
    let peak = child.peak_rss_kib().expect("child's peak RSS");
    eprintln!(
        "controller process RSS: idle {} MiB, peak {} MiB, now {} MiB",
        idle / 1024,
        peak / 1024,
        child.rss_kib().unwrap_or(0) / 1024
    );
    assert!(peak < 100 * 1024, "controller used {} MiB", peak / 1024);
}
