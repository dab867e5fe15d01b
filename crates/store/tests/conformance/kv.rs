//! Keys, ranges and transactions.

use futures::StreamExt;
use podnet_store::{
    Compare, CompareOp, EventKind, KeyValue, Op, OpResult, StoreError, Target, Txn,
};

use super::{next_events, Ctx};

pub async fn case_get_put_delete(ctx: &Ctx) {
    let s = &ctx.store;
    let k = ctx.key("a");
    assert_eq!(s.get(&k).await.unwrap(), None);
    let r1 = s.put(&k, b"one".to_vec(), 0).await.unwrap();
    assert!(r1 > 0);
    let kv = s.get(&k).await.unwrap().expect("the key just written");
    assert_eq!(
        kv,
        KeyValue {
            key: k.clone(),
            value: b"one".to_vec(),
            create_revision: r1,
            mod_revision: r1,
            version: 1,
            lease: 0,
        }
    );
    let r2 = s.put(&k, b"two".to_vec(), 0).await.unwrap();
    assert!(r2 > r1, "revisions grow: {r2} after {r1}");
    let kv = s.get(&k).await.unwrap().unwrap();
    assert_eq!(
        (
            kv.value.as_slice(),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
        (&b"two"[..], r1, r2, 2)
    );
    assert!(s.revision().await.unwrap() >= r2);

    let deleted = s
        .delete(&k)
        .await
        .unwrap()
        .expect("delete returns the value");
    assert_eq!((deleted.value, deleted.mod_revision), (b"two".to_vec(), r2));
    assert_eq!(s.get(&k).await.unwrap(), None);
    assert_eq!(
        s.delete(&k).await.unwrap(),
        None,
        "deleting again finds nothing"
    );

    // Created again: a new life, version starts over.
    let r3 = s.put(&k, b"three".to_vec(), 0).await.unwrap();
    let kv = s.get(&k).await.unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.version), (r3, 1));
    // Empty values are values.
    s.put(&ctx.key("empty"), Vec::new(), 0).await.unwrap();
    let kv = s
        .get(&ctx.key("empty"))
        .await
        .unwrap()
        .expect("empty value kept");
    assert!(kv.value.is_empty());
}

pub async fn case_range_prefix(ctx: &Ctx) {
    let s = &ctx.store;
    let keys = [
        "a/b", "a/b/", "a/b/c", "a/b/x/y", "a/bc/d", "a/a", "a/c", "ü/1", "a/b/ü",
    ];
    let mut last = 0;
    for k in keys {
        last = s.put(&ctx.key(k), k.as_bytes().to_vec(), 0).await.unwrap();
    }
    let names = |r: &podnet_store::RangeResult| {
        r.kvs
            .iter()
            .map(|kv| kv.key.strip_prefix(&ctx.prefix).unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let r = s.range(&ctx.key("a/b/")).await.unwrap();
    assert_eq!(names(&r), ["a/b/", "a/b/c", "a/b/x/y", "a/b/ü"]);
    assert!(
        r.revision >= last,
        "read at {} after write {last}",
        r.revision
    );
    for kv in &r.kvs {
        assert_eq!(
            kv.value,
            kv.key.strip_prefix(&ctx.prefix).unwrap().as_bytes()
        );
        assert!(kv.mod_revision <= r.revision);
    }
    let r = s.range(&ctx.key("a/b")).await.unwrap();
    assert_eq!(
        names(&r),
        ["a/b", "a/b/", "a/b/c", "a/b/x/y", "a/b/ü", "a/bc/d"]
    );
    let r = s.range(&ctx.prefix).await.unwrap();
    let mut sorted: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    sorted.sort();
    assert_eq!(names(&r), sorted, "sorted by key bytes");
    assert!(s.range(&ctx.key("zz/")).await.unwrap().kvs.is_empty());
    assert_eq!(names(&s.range(&ctx.key("ü/")).await.unwrap()), ["ü/1"]);
}

pub async fn case_delete_prefix(ctx: &Ctx) {
    let s = &ctx.store;
    for k in ["d/1", "d/2", "d/3/x", "d2/x", "d"] {
        s.put(&ctx.key(k), b"v".to_vec(), 0).await.unwrap();
    }
    let from = s.revision().await.unwrap() + 1;
    let mut w = s.watch(&ctx.prefix, from).await.unwrap();
    assert_eq!(s.delete_prefix(&ctx.key("d/")).await.unwrap(), 3);
    assert!(s.range(&ctx.key("d/")).await.unwrap().kvs.is_empty());
    let left = s.range(&ctx.prefix).await.unwrap();
    let left: Vec<_> = left.kvs.iter().map(|kv| kv.key.clone()).collect();
    assert_eq!(left, [ctx.key("d"), ctx.key("d2/x")]);
    let events = next_events(&mut w, 3).await;
    let rev = events[0].kv.mod_revision;
    for (ev, k) in events.iter().zip(["d/1", "d/2", "d/3/x"]) {
        assert_eq!(ev.kind, EventKind::Delete);
        assert_eq!(ev.kv.key, ctx.key(k));
        assert_eq!(ev.kv.mod_revision, rev, "one revision for the whole delete");
        assert_eq!(
            ev.prev.as_ref().map(|p| p.value.as_slice()),
            Some(&b"v"[..])
        );
    }
    assert_eq!(s.delete_prefix(&ctx.key("nothing/")).await.unwrap(), 0);
}

async fn holds(ctx: &Ctx, c: Compare) -> bool {
    ctx.store
        .txn(Txn::new().when([c]))
        .await
        .expect("a transaction of compares only")
        .succeeded
}

fn cmp(key: &str, op: CompareOp, target: Target) -> Compare {
    Compare {
        key: key.to_string(),
        op,
        target,
    }
}

pub async fn case_txn_compares(ctx: &Ctx) {
    use CompareOp::*;
    let s = &ctx.store;
    let k = ctx.key("k");
    let missing = ctx.key("missing");
    let r1 = s.put(&k, b"v1".to_vec(), 0).await.unwrap();
    let r2 = s.put(&k, b"v2".to_vec(), 0).await.unwrap();
    let cases = [
        (cmp(&k, Equal, Target::ModRevision(r2)), true),
        (cmp(&k, NotEqual, Target::ModRevision(r2)), false),
        (cmp(&k, Less, Target::ModRevision(r2 + 1)), true),
        (cmp(&k, Greater, Target::ModRevision(r1)), true),
        (cmp(&k, Greater, Target::ModRevision(r2)), false),
        (cmp(&k, Equal, Target::CreateRevision(r1)), true),
        (cmp(&k, Less, Target::CreateRevision(r1)), false),
        (Compare::absent(&k), false),
        (Compare::absent(&missing), true),
        (Compare::mod_revision(&missing, 0), true),
        (cmp(&missing, Equal, Target::Version(0)), true),
        (cmp(&k, Equal, Target::Version(2)), true),
        (cmp(&k, Less, Target::Version(3)), true),
        (cmp(&k, Greater, Target::Version(2)), false),
        (cmp(&k, NotEqual, Target::Version(1)), true),
        (Compare::value(&k, "v2"), true),
        (Compare::value(&k, "v1"), false),
        (cmp(&k, NotEqual, Target::Value(b"v2".to_vec())), false),
        (cmp(&k, Less, Target::Value(b"v3".to_vec())), true),
        (cmp(&k, Greater, Target::Value(b"v1".to_vec())), true),
        (cmp(&k, Greater, Target::Value(b"v2".to_vec())), false),
        // etcd: a value comparison on a missing key never holds.
        (Compare::value(&missing, ""), false),
        (cmp(&missing, NotEqual, Target::Value(b"x".to_vec())), false),
    ];
    for (c, expected) in cases {
        assert_eq!(holds(ctx, c.clone()).await, expected, "{c:?}");
    }
    // Every comparison must hold.
    let both = Txn::new().when([Compare::value(&k, "v2"), Compare::absent(&missing)]);
    assert!(s.txn(both).await.unwrap().succeeded);
    let one = Txn::new().when([Compare::value(&k, "v2"), Compare::absent(&k)]);
    assert!(!s.txn(one).await.unwrap().succeeded);
}

pub async fn case_txn_ops_and_failure_branch(ctx: &Ctx) {
    let s = &ctx.store;
    let (a, b, c, gone) = (ctx.key("a"), ctx.key("b"), ctx.key("c"), ctx.key("gone"));
    s.put(&b, b"b".to_vec(), 0).await.unwrap();
    let rc = s.put(&c, b"c".to_vec(), 0).await.unwrap();
    let r = s
        .txn(
            Txn::new()
                .when([Compare::absent(&a)])
                .and_then([
                    Op::put(&a, "a"),
                    Op::delete(&b),
                    Op::get(&c),
                    Op::get(&gone),
                    Op::delete(&gone),
                ])
                .or_else([Op::put(&gone, "wrong branch")]),
        )
        .await
        .unwrap();
    assert!(r.succeeded);
    let kv_c = s.get(&c).await.unwrap().unwrap();
    assert_eq!(kv_c.mod_revision, rc);
    assert_eq!(
        r.results,
        [
            OpResult::Put,
            OpResult::Delete(true),
            OpResult::Get(Some(kv_c)),
            OpResult::Get(None),
            OpResult::Delete(false),
        ]
    );
    assert_eq!(s.get(&a).await.unwrap().unwrap().value, b"a");
    assert_eq!(s.get(&b).await.unwrap(), None);
    assert_eq!(s.get(&gone).await.unwrap(), None);

    // Now `a` exists: the failure branch runs, and only it.
    let r = s
        .txn(
            Txn::new()
                .when([Compare::absent(&a)])
                .and_then([Op::put(&a, "again")])
                .or_else([Op::get(&a), Op::put(&b, "from failure")]),
        )
        .await
        .unwrap();
    assert!(!r.succeeded);
    assert_eq!(r.results.len(), 2);
    assert!(matches!(&r.results[0], OpResult::Get(Some(kv)) if kv.value == b"a"));
    assert_eq!(r.results[1], OpResult::Put);
    assert_eq!(s.get(&a).await.unwrap().unwrap().value, b"a");
    let kv_b = s.get(&b).await.unwrap().unwrap();
    assert_eq!(
        (kv_b.value.as_slice(), kv_b.mod_revision),
        (&b"from failure"[..], r.revision)
    );
}

pub async fn case_txn_one_revision(ctx: &Ctx) {
    let s = &ctx.store;
    s.put(&ctx.key("old"), b"x".to_vec(), 0).await.unwrap();
    let from = s.revision().await.unwrap() + 1;
    let mut w = s.watch(&ctx.prefix, from).await.unwrap();
    let keys = ["t/1", "t/2", "t/3"];
    let r = s
        .txn(
            Txn::new().and_then(
                keys.iter()
                    .map(|k| Op::put(ctx.key(k), "v"))
                    .chain([Op::delete(ctx.key("old"))]),
            ),
        )
        .await
        .unwrap();
    assert!(r.succeeded);
    for k in keys {
        assert_eq!(
            s.get(&ctx.key(k)).await.unwrap().unwrap().mod_revision,
            r.revision
        );
    }
    let events = next_events(&mut w, 4).await;
    for ev in &events {
        assert_eq!(
            ev.kv.mod_revision, r.revision,
            "every change of a txn has its revision"
        );
    }
    assert_eq!(events[3].kind, EventKind::Delete);
    // Nothing else arrives for that prefix.
    let more = tokio::time::timeout(std::time::Duration::from_millis(200), w.next()).await;
    assert!(more.is_err(), "expected no more events, found {more:?}");
}

pub async fn case_txn_limits(ctx: &Ctx) {
    let s = &ctx.store;
    let max = s.max_txn_ops();
    assert!(
        max >= 128,
        "max_txn_ops is at least etcd's default, found {max}"
    );
    let ops = (0..=max).map(|i| Op::put(ctx.key(&format!("many/{i}")), "v"));
    match s.txn(Txn::new().and_then(ops)).await {
        Err(StoreError::TooManyOps { ops, max: m }) => assert_eq!((ops, m), (max + 1, max)),
        other => panic!("expected TooManyOps, found {other:?}"),
    }
    assert!(s.range(&ctx.key("many/")).await.unwrap().kvs.is_empty());
    let ops = (0..max).map(|i| Op::put(ctx.key(&format!("many/{i:05}")), "v"));
    assert!(s.txn(Txn::new().and_then(ops)).await.unwrap().succeeded);
    assert_eq!(s.range(&ctx.key("many/")).await.unwrap().kvs.len(), max);
    // One key written twice in one branch is refused, as etcd does.
    let dup = Txn::new().and_then([Op::put(ctx.key("dup"), "1"), Op::delete(ctx.key("dup"))]);
    assert!(s.txn(dup).await.is_err());
    assert_eq!(s.get(&ctx.key("dup")).await.unwrap(), None);
}

/// Exclusive: counts revisions.
pub async fn case_revision_bumps_only_on_change(ctx: &Ctx) {
    let s = &ctx.store;
    let k = ctx.key("k");
    let r0 = s.revision().await.unwrap();
    assert_eq!(s.delete(&ctx.key("missing")).await.unwrap(), None);
    assert_eq!(s.delete_prefix(&ctx.key("none/")).await.unwrap(), 0);
    let r = s.txn(Txn::new().and_then([Op::get(&k)])).await.unwrap();
    assert_eq!(
        r.revision, r0,
        "a txn of gets reads at the current revision"
    );
    let r = s
        .txn(
            Txn::new()
                .when([Compare::value(&k, "x")])
                .and_then([Op::put(&k, "y")]),
        )
        .await
        .unwrap();
    assert!(!r.succeeded);
    assert_eq!(r.revision, r0);
    let r = s.txn(Txn::new().and_then([Op::delete(&k)])).await.unwrap();
    assert_eq!(r.revision, r0, "deleting nothing changes nothing");
    let lease = s
        .lease_grant(std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(s.revision().await.unwrap(), r0, "leases are not revisions");
    assert_eq!(s.put(&k, b"1".to_vec(), lease).await.unwrap(), r0 + 1);
    let r = s
        .txn(Txn::new().and_then([Op::put(ctx.key("i"), "2"), Op::put(ctx.key("j"), "2")]))
        .await
        .unwrap();
    assert_eq!(r.revision, r0 + 2, "one revision per transaction");
    assert_eq!(s.revision().await.unwrap(), r0 + 2);
    s.lease_revoke(lease).await.unwrap();
    assert_eq!(
        s.revision().await.unwrap(),
        r0 + 3,
        "revoking deleted k at one revision"
    );
}
