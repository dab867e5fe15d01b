//! The controller's inputs: a list-and-watch per kind it follows (objects decoded as
//! the typed informer does) and one of the allocation keys, all feeding one channel.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use podnet_model::{Kind, Object, ObjectRef};
use podnet_store::typed::decode;
use podnet_store::{Event, EventKind, InformerEvent, KeyValue, Store, StoreError};
use tokio::sync::mpsc::Sender;
use tokio::task::JoinHandle;

use crate::alloc::{AllocKey, Allocation, Owner, ALLOC_PREFIX};
use crate::cache::lite::{slim_pod, slim_slice};
use crate::cache::pods::SlimPod;
use crate::cache::{
    AllocEvent, CachedService, PodEvent, ServiceEvent, SliceEvent, SliceInfo, SlimSlice, SvcKey,
};

/// One input of the main loop.
#[derive(Debug)]
pub enum Input {
    Object(Kind, InformerEvent),
    /// Pods and slices are made slim right here, so that full objects never queue up.
    Pods(PodEvent),
    Slices(SliceEvent),
    Services(ServiceEvent),
    Allocs(AllocEvent),
}

/// The kinds the controller follows.
pub const KINDS: [Kind; 5] = [
    Kind::ClusterConfig,
    Kind::Node,
    Kind::Service,
    Kind::Pod,
    Kind::EndpointSlice,
];

/// Aborts the input tasks when dropped.
pub struct Inputs(Vec<JoinHandle<()>>);

impl Drop for Inputs {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

pub fn spawn(store: Arc<dyn Store>, tx: Sender<Input>) -> Inputs {
    let mut handles = Vec::new();
    handles.push(tokio::spawn(follow(
        store.clone(),
        Kind::Pod.prefix(None),
        tx.clone(),
        |kvs| {
            let pods = kvs
                .iter()
                .filter(|kv| Kind::Pod.parse_key(&kv.key).is_some())
                .filter_map(slim_pod_or_warn)
                .collect();
            Input::Pods(PodEvent::Restarted(pods))
        },
        |ev| {
            let (ns, name) = Kind::Pod.parse_key(&ev.kv.key)?;
            let ev = match ev.kind {
                EventKind::Put => PodEvent::Applied(slim_pod_or_warn(&ev.kv)?),
                EventKind::Delete => PodEvent::Deleted(
                    (ns.unwrap_or_default(), name),
                    ev.prev.as_ref().map(|kv| kv.mod_revision),
                ),
            };
            Some(Input::Pods(ev))
        },
    )));
    handles.push(tokio::spawn(follow(
        store.clone(),
        Kind::EndpointSlice.prefix(None),
        tx.clone(),
        |kvs| {
            let all = kvs
                .iter()
                .filter(|kv| Kind::EndpointSlice.parse_key(&kv.key).is_some())
                .filter_map(slim_slice_of)
                .collect();
            Input::Slices(SliceEvent::Restarted(all))
        },
        |ev| {
            let (ns, name) = Kind::EndpointSlice.parse_key(&ev.kv.key)?;
            let ev = match ev.kind {
                EventKind::Put => {
                    let (ns, name, info) = slim_slice_of(&ev.kv)?;
                    SliceEvent::Applied(ns, name, info)
                }
                EventKind::Delete => SliceEvent::Deleted(
                    ns.unwrap_or_default(),
                    name,
                    ev.prev.as_ref().map(|kv| kv.mod_revision),
                ),
            };
            Some(Input::Slices(ev))
        },
    )));
    handles.push(tokio::spawn(follow(
        store.clone(),
        Kind::Service.prefix(None),
        tx.clone(),
        |kvs| {
            let all = kvs
                .iter()
                .filter(|kv| Kind::Service.parse_key(&kv.key).is_some())
                .filter_map(cached_service)
                .collect();
            Input::Services(ServiceEvent::Restarted(all))
        },
        |ev| {
            let (ns, name) = Kind::Service.parse_key(&ev.kv.key)?;
            let ev = match ev.kind {
                EventKind::Put => {
                    let (key, svc) = cached_service(&ev.kv)?;
                    ServiceEvent::Applied(key, svc)
                }
                EventKind::Delete => ServiceEvent::Deleted(
                    (ns.unwrap_or_default(), name),
                    ev.prev.as_ref().map(|kv| kv.mod_revision),
                ),
            };
            Some(Input::Services(ev))
        },
    )));
    for kind in KINDS
        .into_iter()
        .filter(|k| !matches!(k, Kind::Pod | Kind::EndpointSlice | Kind::Service))
    {
        handles.push(tokio::spawn(follow(
            store.clone(),
            kind.prefix(None),
            tx.clone(),
            move |kvs| {
                let objs = kvs
                    .iter()
                    .filter(|kv| kind.parse_key(&kv.key).is_some())
                    .filter_map(decode_or_warn)
                    .collect();
                Input::Object(kind, InformerEvent::Restarted(objs))
            },
            move |ev| {
                let (ns, name) = kind.parse_key(&ev.kv.key)?;
                let ev = match ev.kind {
                    EventKind::Put => InformerEvent::Applied(decode_or_warn(&ev.kv)?),
                    EventKind::Delete => InformerEvent::Deleted(
                        ObjectRef::new(kind, ns.as_deref(), &name),
                        ev.prev.as_ref().and_then(|kv| decode(kv).ok()),
                    ),
                };
                Some(Input::Object(kind, ev))
            },
        )));
    }
    handles.push(tokio::spawn(follow(
        store,
        ALLOC_PREFIX.to_string(),
        tx,
        |kvs| {
            Input::Allocs(AllocEvent::Restarted(
                kvs.iter().filter_map(parse).collect(),
            ))
        },
        |ev| {
            let e = match ev.kind {
                EventKind::Put => parse(&ev.kv).map(|(k, a)| AllocEvent::Put(k, a)),
                EventKind::Delete => {
                    AllocKey::parse(&ev.kv.key).map(|k| AllocEvent::Deleted(k, ev.kv.mod_revision))
                }
            }?;
            Some(Input::Allocs(e))
        },
    )));
    Inputs(handles)
}

fn cached_service(kv: &KeyValue) -> Option<(SvcKey, CachedService)> {
    let s = CachedService::from_stored(&kv.value, kv.mod_revision);
    if s.is_none() {
        tracing::warn!(key = %kv.key, "skipping undecodable service");
    }
    s
}

fn slim_pod_or_warn(kv: &KeyValue) -> Option<SlimPod> {
    let p = slim_pod(&kv.value, kv.mod_revision);
    if p.is_none() {
        tracing::warn!(key = %kv.key, "skipping undecodable pod");
    }
    p
}

fn slim_slice_of(kv: &KeyValue) -> Option<SlimSlice> {
    let (ns, name, owner) = slim_slice(&kv.value)?;
    let info = owner.map(|(svc, fingerprint)| {
        (
            svc,
            SliceInfo {
                rev: kv.mod_revision,
                fingerprint,
            },
        )
    });
    Some((ns, name, info))
}

fn decode_or_warn(kv: &KeyValue) -> Option<Object> {
    match decode(kv) {
        Ok(o) => Some(o),
        Err(e) => {
            tracing::warn!(error = %e, "skipping undecodable object");
            None
        }
    }
}

fn parse(kv: &KeyValue) -> Option<(AllocKey, Allocation)> {
    let key = AllocKey::parse(&kv.key)?;
    let owner = Owner::decode(&kv.value).or_else(|| {
        tracing::warn!(key = %kv.key, "allocation with an unreadable owner; treating it as held by nobody");
        Some(Owner {
            kind: String::new(),
            namespace: None,
            name: String::new(),
            uid: String::new(),
        })
    })?;
    Some((
        key,
        Allocation {
            owner,
            rev: kv.mod_revision,
        },
    ))
}

enum State {
    List,
    Watch {
        stream: podnet_store::WatchStream,
        next: i64,
    },
    Backoff {
        next: i64,
    },
}

/// List, then watch, one prefix, resuming after a lost watch and relisting after
/// compaction: the typed informer's protocol, but handing raw key-values to `on_list`
/// and `on_event`, so that they decode straight into compact forms.
async fn follow(
    store: Arc<dyn Store>,
    prefix: String,
    tx: Sender<Input>,
    on_list: impl Fn(Vec<KeyValue>) -> Input,
    on_event: impl Fn(Event) -> Option<Input>,
) {
    let mut state = State::List;
    loop {
        state = match state {
            State::List => match store.range(&prefix).await {
                Ok(r) => {
                    if tx.send(on_list(r.kvs)).await.is_err() {
                        return;
                    }
                    State::Backoff {
                        next: r.revision + 1,
                    }
                }
                Err(e) => {
                    tracing::warn!(prefix = %prefix, error = %e, "list failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    State::List
                }
            },
            State::Backoff { next } => match store.watch(&prefix, next).await {
                Ok(stream) => State::Watch { stream, next },
                Err(StoreError::Compacted { .. }) => State::List,
                Err(e) => {
                    tracing::warn!(prefix = %prefix, error = %e, "watch failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    State::Backoff { next }
                }
            },
            State::Watch { mut stream, next } => match stream.next().await {
                Some(Ok(ev)) => {
                    let next = ev.kv.mod_revision + 1;
                    if let Some(input) = on_event(ev) {
                        if tx.send(input).await.is_err() {
                            return;
                        }
                    }
                    State::Watch { stream, next }
                }
                Some(Err(StoreError::Compacted { .. })) => State::List,
                Some(Err(e)) => {
                    tracing::warn!(prefix = %prefix, error = %e, "watch lost; resuming");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    State::Backoff { next }
                }
                None => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    State::Backoff { next }
                }
            },
        };
    }
}
