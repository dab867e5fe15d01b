//! `delete`: objects by reference. As in Kubernetes, a Pod bound to a node is deleted
//! gracefully: it gets `metadata.deletionTimestamp` and `deletionGracePeriodSeconds`
//! (from the request, else its `terminationGracePeriodSeconds`, else 30), and the
//! node's runtime stops its containers (SIGTERM, the grace period, SIGKILL), releases
//! its network and then removes it from the store. `force` (or a grace period of 0)
//! removes it at once. Deleting a Namespace deletes everything in it (its pods
//! gracefully). Deleting what is already gone is not an error (reported as not found).

use jiff::Timestamp;
use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use podnet_model::{Kind, Object, ObjectRef};
use podnet_store::typed::{revision_of, ApiError};
use podnet_store::Api;

/// How pods go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// Seconds the containers get after SIGTERM (overrides the pod's own).
    pub grace_period: Option<i64>,
    /// Remove from the store at once, without waiting for the node.
    pub force: bool,
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub object: ObjectRef,
    /// False when it did not exist.
    pub existed: bool,
    /// Objects removed with it (a namespace's contents).
    pub cascaded: usize,
    /// A pod marked for graceful deletion: its node removes it when stopped.
    pub terminating: bool,
}

/// Deletes each object in turn.
pub async fn delete(
    api: &Api,
    refs: &[ObjectRef],
    opts: DeleteOptions,
) -> Result<Vec<Deleted>, ApiError> {
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        let mut cascaded = 0;
        let mut terminating = false;
        let existed = match r.kind {
            Kind::Namespace if api.get(Kind::Namespace, None, &r.name).await?.is_some() => {
                let (pods, _) = api.list(Kind::Pod, Some(&r.name)).await?;
                for p in &pods {
                    cascaded += 1;
                    delete_pod(api, &p.object_ref(), opts).await?;
                }
                for kind in Kind::ALL
                    .iter()
                    .filter(|k| k.namespaced() && **k != Kind::Pod)
                {
                    cascaded += api
                        .store()
                        .delete_prefix(&kind.prefix(Some(&r.name)))
                        .await?;
                }
                api.delete(r).await?
            }
            Kind::Pod => match delete_pod(api, r, opts).await? {
                PodDeletion::Gone => false,
                PodDeletion::Removed => true,
                PodDeletion::Terminating => {
                    terminating = true;
                    true
                }
            },
            _ => api.delete(r).await?,
        };
        out.push(Deleted {
            object: r.clone(),
            existed,
            cascaded,
            terminating,
        });
    }
    Ok(out)
}

enum PodDeletion {
    Gone,
    Removed,
    Terminating,
}

async fn delete_pod(
    api: &Api,
    r: &ObjectRef,
    opts: DeleteOptions,
) -> Result<PodDeletion, ApiError> {
    loop {
        let Some(obj) = api.get(Kind::Pod, r.namespace.as_deref(), &r.name).await? else {
            return Ok(PodDeletion::Gone);
        };
        let Object::Pod(mut pod) = obj.clone() else {
            return Ok(PodDeletion::Gone);
        };
        let bound = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some();
        let grace = opts.grace_period.unwrap_or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
                .unwrap_or(30)
        });
        if opts.force || grace == 0 || !bound {
            api.delete(r).await?;
            return Ok(PodDeletion::Removed);
        }
        if pod.metadata.deletion_timestamp.is_some() && opts.grace_period.is_none() {
            return Ok(PodDeletion::Terminating); // already on its way
        }
        pod.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        pod.metadata.deletion_grace_period_seconds = Some(grace);
        if api
            .put_if(&Object::Pod(pod), revision_of(&obj))
            .await?
            .is_some()
        {
            return Ok(PodDeletion::Terminating);
        }
        // Changed under us (the runtime writing status): read again.
    }
}
