//! The store edge of a pod worker: status write-back and the final delete, both
//! compare-and-swap on the revision read, retried with a fresh read on conflict, and
//! both only for the pod instance (uid) the worker runs.

use std::time::Duration;

use podnet_model::k8s_openapi::api::core::v1::{Pod, PodStatus};
use podnet_model::{Kind, Object};
use podnet_store::typed::revision_of;
use podnet_store::{Api, Compare, Op, Txn};

use crate::error::RuntimeError;

const ATTEMPTS: usize = 8;

/// What a status write did.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome {
    /// The stored status already was the new one.
    Unchanged(PodStatus),
    /// Written.
    Stored(PodStatus),
    /// The pod is gone or is another instance now.
    Gone,
    /// Conflicts every time: try again later.
    Contended,
}

async fn read(
    api: &Api,
    ns: &str,
    name: &str,
    uid: &str,
) -> Result<Option<(Pod, i64)>, RuntimeError> {
    match api.get(Kind::Pod, Some(ns), name).await? {
        Some(obj) => {
            let rev = revision_of(&obj);
            match obj {
                Object::Pod(p) if p.metadata.uid.as_deref() == Some(uid) => Ok(Some((p, rev))),
                _ => Ok(None),
            }
        }
        None => Ok(None),
    }
}

/// Sets the status of pod `ns/name` (instance `uid`) to `build(stored status)`, unless it
/// already is that.
pub async fn write_status(
    api: &Api,
    ns: &str,
    name: &str,
    uid: &str,
    build: impl Fn(Option<&PodStatus>) -> PodStatus,
) -> Result<WriteOutcome, RuntimeError> {
    for attempt in 0..ATTEMPTS {
        let Some((mut pod, rev)) = read(api, ns, name, uid).await? else {
            return Ok(WriteOutcome::Gone);
        };
        let new = build(pod.status.as_ref());
        if pod.status.as_ref() == Some(&new) {
            return Ok(WriteOutcome::Unchanged(new));
        }
        pod.status = Some(new.clone());
        if api.put_if(&Object::Pod(pod), rev).await?.is_some() {
            tracing::debug!(namespace = ns, pod = name, phase = ?new.phase, "pod status written");
            return Ok(WriteOutcome::Stored(new));
        }
        tracing::debug!(
            namespace = ns,
            pod = name,
            attempt,
            "pod status write conflicted; rereading"
        );
        tokio::time::sleep(Duration::from_millis(5 * (attempt as u64 + 1))).await;
    }
    Ok(WriteOutcome::Contended)
}

/// The kubelet's final delete: removes pod `ns/name` if it still is instance `uid`, as
/// read (compare-and-swap on its revision). True when this call deleted it.
pub async fn final_delete(
    api: &Api,
    ns: &str,
    name: &str,
    uid: &str,
) -> Result<bool, RuntimeError> {
    let key = Kind::Pod.key(Some(ns), name);
    for attempt in 0..ATTEMPTS {
        let Some((_, rev)) = read(api, ns, name, uid).await? else {
            return Ok(false);
        };
        let txn = Txn::new()
            .when([Compare::mod_revision(&key, rev)])
            .and_then([Op::delete(&key)]);
        let r = api
            .store()
            .txn(txn)
            .await
            .map_err(podnet_store::typed::ApiError::from)?;
        if r.succeeded {
            tracing::info!(
                namespace = ns,
                pod = name,
                uid,
                "pod deleted from the store"
            );
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(5 * (attempt as u64 + 1))).await;
    }
    Ok(false)
}
