//! Leases: expiry, keep-alive, revoke. TTLs are 2 s, etcd's smallest by default.

use std::time::Duration;

use podnet_store::{EventKind, StoreError};

use super::{eventually, next_event, next_events, Ctx};

const TTL: Duration = Duration::from_secs(2);

pub async fn case_lease_expiry(ctx: &Ctx) {
    let s = &ctx.store;
    let (k, plain) = (ctx.key("leased"), ctx.key("plain"));
    let lease = s.lease_grant(TTL).await.unwrap();
    assert!(lease > 0);
    s.put(&k, b"v".to_vec(), lease).await.unwrap();
    s.put(&plain, b"v".to_vec(), 0).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap().unwrap().lease, lease);
    let mut w = s.watch(&ctx.prefix, 0).await.unwrap();
    eventually("the leased key to vanish after its TTL", || async {
        s.get(&k).await.unwrap().is_none()
    })
    .await;
    assert!(
        s.get(&plain).await.unwrap().is_some(),
        "keys without lease stay"
    );
    let ev = next_event(&mut w).await;
    assert_eq!(
        (ev.kind, ev.kv.key.as_str()),
        (EventKind::Delete, k.as_str())
    );
    assert_eq!(ev.prev.map(|p| p.value), Some(b"v".to_vec()));
    match s.lease_keep_alive(lease).await {
        Err(StoreError::LeaseNotFound(l)) => assert_eq!(l, lease),
        other => panic!("expected LeaseNotFound after expiry, found {other:?}"),
    }
    match s.put(&k, b"again".to_vec(), lease).await {
        Err(StoreError::LeaseNotFound(l)) => assert_eq!(l, lease),
        other => panic!("expected LeaseNotFound for a put with an expired lease, found {other:?}"),
    }
    assert!(s.get(&k).await.unwrap().is_none());
}

pub async fn case_lease_keep_alive(ctx: &Ctx) {
    let s = &ctx.store;
    let k = ctx.key("kept");
    let lease = s.lease_grant(TTL).await.unwrap();
    s.put(&k, b"v".to_vec(), lease).await.unwrap();
    // Twice the TTL, renewed every 400 ms.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        s.lease_keep_alive(lease).await.unwrap();
    }
    assert!(
        s.get(&k).await.unwrap().is_some(),
        "a kept-alive lease keeps its keys"
    );
    eventually("the key to vanish once keep-alives stop", || async {
        s.get(&k).await.unwrap().is_none()
    })
    .await;
}

pub async fn case_lease_revoke(ctx: &Ctx) {
    let s = &ctx.store;
    let lease = s.lease_grant(Duration::from_secs(60)).await.unwrap();
    let other = s.lease_grant(Duration::from_secs(60)).await.unwrap();
    assert_ne!(lease, other);
    s.put(&ctx.key("l/1"), b"1".to_vec(), lease).await.unwrap();
    s.put(&ctx.key("l/2"), b"2".to_vec(), lease).await.unwrap();
    s.put(&ctx.key("l/3"), b"3".to_vec(), other).await.unwrap();
    s.put(&ctx.key("l/4"), b"4".to_vec(), 0).await.unwrap();
    let mut w = s.watch(&ctx.prefix, 0).await.unwrap();
    s.lease_revoke(lease).await.unwrap();
    assert!(s.get(&ctx.key("l/1")).await.unwrap().is_none());
    assert!(s.get(&ctx.key("l/2")).await.unwrap().is_none());
    assert!(s.get(&ctx.key("l/3")).await.unwrap().is_some());
    assert!(s.get(&ctx.key("l/4")).await.unwrap().is_some());
    let ev = next_events(&mut w, 2).await;
    let mut keys: Vec<_> = ev.iter().map(|e| e.kv.key.clone()).collect();
    keys.sort();
    assert_eq!(keys, [ctx.key("l/1"), ctx.key("l/2")]);
    assert!(ev
        .iter()
        .all(|e| e.kind == EventKind::Delete && e.prev.is_some()));
    assert_eq!(
        ev[0].kv.mod_revision, ev[1].kv.mod_revision,
        "one revision for a revoke"
    );
    assert!(matches!(
        s.lease_revoke(lease).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    assert!(matches!(
        s.lease_keep_alive(lease).await,
        Err(StoreError::LeaseNotFound(_))
    ));
    match s.put(&ctx.key("l/5"), b"5".to_vec(), 4242).await {
        Err(StoreError::LeaseNotFound(l)) => assert_eq!(l, 4242),
        other => panic!("expected LeaseNotFound for an unknown lease, found {other:?}"),
    }
    s.lease_revoke(other).await.unwrap();
    assert!(s.get(&ctx.key("l/3")).await.unwrap().is_none());
}
