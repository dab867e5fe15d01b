//! Watches: replay from a past revision, live changes, previous values, resuming,
//! compaction.

use futures::StreamExt;
use podnet_store::{EventKind, Revision, StoreError, WatchStream};

use super::{next_event, next_events, Ctx};

pub async fn case_watch_replay_then_live(ctx: &Ctx) {
    let s = &ctx.store;
    let r1 = s.put(&ctx.key("w/a"), b"1".to_vec(), 0).await.unwrap();
    let r2 = s.put(&ctx.key("w/b"), b"1".to_vec(), 0).await.unwrap();
    // A sibling prefix that must not show up.
    let sibling = format!("{}x", ctx.key("w").trim_end_matches('/'));
    s.put(&format!("{sibling}/no"), b"no".to_vec(), 0)
        .await
        .unwrap();
    assert!(s.delete(&ctx.key("w/a")).await.unwrap().is_some());
    let mut w = s.watch(&ctx.key("w/"), r1).await.unwrap();
    let ev = next_events(&mut w, 3).await;
    assert_eq!(
        ev.iter()
            .map(|e| (e.kind, e.kv.key.as_str()))
            .collect::<Vec<_>>(),
        [
            (EventKind::Put, ctx.key("w/a").as_str()),
            (EventKind::Put, ctx.key("w/b").as_str()),
            (EventKind::Delete, ctx.key("w/a").as_str()),
        ]
    );
    assert_eq!(ev[0].kv.mod_revision, r1);
    assert_eq!(ev[1].kv.mod_revision, r2);
    assert!(ev[2].kv.mod_revision > r2);
    assert!(ev[2].kv.value.is_empty());
    // Live changes follow the replay in order.
    let mut revs: Vec<Revision> = Vec::new();
    for i in 0..20 {
        s.put(&format!("{sibling}/no{i}"), b"no".to_vec(), 0)
            .await
            .unwrap();
        revs.push(
            s.put(&ctx.key(&format!("w/live{i:02}")), b"v".to_vec(), 0)
                .await
                .unwrap(),
        );
    }
    for (i, rev) in revs.iter().enumerate() {
        let e = next_event(&mut w).await;
        assert_eq!(e.kv.key, ctx.key(&format!("w/live{i:02}")));
        assert_eq!(e.kv.mod_revision, *rev);
        assert_eq!((e.kv.version, e.kv.create_revision), (1, *rev));
    }
    // Watching from a revision between events starts at the next one.
    let mut w = s.watch(&ctx.key("w/"), r1 + 1).await.unwrap();
    assert_eq!(next_event(&mut w).await.kv.mod_revision, r2);
}

pub async fn case_watch_from_now(ctx: &Ctx) {
    let s = &ctx.store;
    s.put(&ctx.key("before"), b"old".to_vec(), 0).await.unwrap();
    let mut w = s.watch(&ctx.prefix, 0).await.unwrap();
    let rev = s.put(&ctx.key("after"), b"new".to_vec(), 0).await.unwrap();
    let ev = next_event(&mut w).await;
    assert_eq!((ev.kv.key, ev.kv.mod_revision), (ctx.key("after"), rev));
}

pub async fn case_watch_prev_values(ctx: &Ctx) {
    let s = &ctx.store;
    let k = ctx.key("p");
    let from = s.revision().await.unwrap() + 1;
    let mut w = s.watch(&ctx.prefix, from).await.unwrap();
    let r1 = s.put(&k, b"v1".to_vec(), 0).await.unwrap();
    let r2 = s.put(&k, b"v2".to_vec(), 0).await.unwrap();
    s.delete(&k).await.unwrap().expect("k existed");
    let ev = next_events(&mut w, 3).await;
    assert_eq!(ev[0].kind, EventKind::Put);
    assert_eq!(ev[0].prev, None, "a created key has no previous value");
    assert_eq!(ev[1].kind, EventKind::Put);
    let prev = ev[1].prev.as_ref().expect("a previous value for an update");
    assert_eq!(
        (prev.value.as_slice(), prev.mod_revision, prev.version),
        (&b"v1"[..], r1, 1)
    );
    assert_eq!((ev[1].kv.version, ev[1].kv.create_revision), (2, r1));
    let del = &ev[2];
    assert_eq!(del.kind, EventKind::Delete);
    assert_eq!(del.kv.key, k);
    assert!(del.kv.value.is_empty());
    assert!(
        del.kv.mod_revision > r2,
        "a delete carries its own revision"
    );
    let prev = del
        .prev
        .as_ref()
        .expect("a delete carries the deleted value");
    assert_eq!(
        (
            prev.value.as_slice(),
            prev.create_revision,
            prev.mod_revision,
            prev.version
        ),
        (&b"v2"[..], r1, r2, 2)
    );
}

/// A watcher reads some events, goes away, and resumes from the last revision + 1:
/// it sees every change exactly once.
pub async fn case_watch_resume_without_gap(ctx: &Ctx) {
    let s = &ctx.store;
    let from = s.revision().await.unwrap() + 1;
    for i in 0..10 {
        s.put(
            &ctx.key(&format!("r/{i:02}")),
            format!("{i}").into_bytes(),
            0,
        )
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut w = s.watch(&ctx.key("r/"), from).await.unwrap();
    for ev in next_events(&mut w, 4).await {
        seen.push(ev);
    }
    drop(w);
    for i in 10..15 {
        s.put(
            &ctx.key(&format!("r/{i:02}")),
            format!("{i}").into_bytes(),
            0,
        )
        .await
        .unwrap();
    }
    let last = seen.last().unwrap().kv.mod_revision;
    let mut w = s.watch(&ctx.key("r/"), last + 1).await.unwrap();
    for ev in next_events(&mut w, 11).await {
        seen.push(ev);
    }
    for i in 15..20 {
        s.put(
            &ctx.key(&format!("r/{i:02}")),
            format!("{i}").into_bytes(),
            0,
        )
        .await
        .unwrap();
    }
    for ev in next_events(&mut w, 5).await {
        seen.push(ev);
    }
    let keys: Vec<String> = seen.iter().map(|e| e.kv.key.clone()).collect();
    let expected: Vec<String> = (0..20).map(|i| ctx.key(&format!("r/{i:02}"))).collect();
    assert_eq!(keys, expected);
    assert!(seen
        .windows(2)
        .all(|p| p[0].kv.mod_revision < p[1].kv.mod_revision));
}

/// The first item of a watch from `from`: `watch` itself may refuse, or the stream may
/// end with the error.
async fn first(w: Result<WatchStream, StoreError>) -> Result<podnet_store::Event, StoreError> {
    let mut w = w?;
    match tokio::time::timeout(super::WAIT, w.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("expected an event or an error, found the end of the stream"),
        Err(_) => panic!("expected an event or an error within {:?}", super::WAIT),
    }
}

/// Exclusive: compacts the store.
pub async fn case_watch_after_compaction(ctx: &Ctx) {
    let s = &ctx.store;
    let k = ctx.key("c");
    let r1 = s.put(&k, b"1".to_vec(), 0).await.unwrap();
    let _r2 = s.put(&k, b"2".to_vec(), 0).await.unwrap();
    let r3 = s.put(&k, b"3".to_vec(), 0).await.unwrap();
    s.put(&ctx.key("d"), b"later".to_vec(), 0).await.unwrap();
    s.compact(r3).await.unwrap();
    match first(s.watch(&ctx.prefix, r1).await).await {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, r1);
            assert!(
                compacted >= r3 - 1 && compacted < r3,
                "compacted {compacted}"
            );
        }
        other => panic!("expected Compacted, found {other:?}"),
    }
    // History from the compaction revision on is still there.
    let ev = first(s.watch(&ctx.prefix, r3).await).await.unwrap();
    assert_eq!(
        (ev.kv.value.as_slice(), ev.kv.mod_revision),
        (&b"3"[..], r3)
    );
    assert_eq!(s.get(&k).await.unwrap().unwrap().value, b"3");
    // Compacting again below or at the compaction point, or into the future, fails.
    assert!(matches!(
        s.compact(r3 - 1).await,
        Err(StoreError::Compacted { .. })
    ));
    let now = s.revision().await.unwrap();
    match s.compact(now + 100).await {
        Err(StoreError::FutureRevision { requested, current }) => {
            assert_eq!((requested, current), (now + 100, now));
        }
        other => panic!("expected FutureRevision, found {other:?}"),
    }
    // A live watcher is not disturbed by a compaction.
    let mut w = s.watch(&ctx.prefix, 0).await.unwrap();
    let r5 = s.put(&k, b"5".to_vec(), 0).await.unwrap();
    s.compact(r5).await.unwrap();
    let r6 = s.put(&k, b"6".to_vec(), 0).await.unwrap();
    assert_eq!(next_event(&mut w).await.kv.mod_revision, r5);
    assert_eq!(next_event(&mut w).await.kv.mod_revision, r6);
}
