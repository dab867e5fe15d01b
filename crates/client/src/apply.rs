//! `apply`: validate every object, admit them against the store (namespaces exist,
//! explicit ClusterIPs and NodePorts free), merge with what is stored, then write.
//! Any invalid object means nothing is written. Writes are compare-and-swap on each
//! object's revision, batched into as few transactions as the backend allows; an object
//! changed concurrently (e.g. by the controller) is re-read, re-merged and retried.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use podnet_model::config::ClusterConfigSpec;
use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use podnet_model::manifest::{FieldError, Manifest, ManifestError};
use podnet_model::{Kind, Object, ObjectRef};
use podnet_store::typed::{decode, encode, ApiError};
use podnet_store::{Api, Compare, KeyValue, Op, Txn};

use crate::admit;
use crate::merge::preserve;

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Configured,
    Unchanged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Configured => "configured",
            Action::Unchanged => "unchanged",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub object: ObjectRef,
    pub action: Action,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Nothing was written.
    #[error("{} invalid object(s); nothing was applied", .0.len())]
    Invalid(Vec<ManifestError>),
    #[error(transparent)]
    Store(#[from] ApiError),
    #[error("gave up after {attempts} attempts: {object} kept changing while being applied")]
    Contended { object: ObjectRef, attempts: usize },
}

/// Namespaces that always exist (created on first use), as in a fresh Kubernetes cluster.
pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

const MAX_ATTEMPTS: usize = 8;

/// Applies `manifests`; `load_errors` are problems found while reading them (they make
/// the apply fail too, after every other problem has been collected).
pub async fn apply(
    api: &Api,
    manifests: Vec<Manifest>,
    load_errors: Vec<ManifestError>,
) -> Result<Vec<Outcome>, ApplyError> {
    let stored = stored_config(api).await?;
    let mut errors = load_errors;
    errors.extend(podnet_model::validate_all(&manifests, &stored).errors);
    errors.extend(admit::admit(api, &manifests).await?);
    if !errors.is_empty() {
        return Err(ApplyError::Invalid(errors));
    }
    let mut objects: Vec<Object> = manifests.into_iter().map(|m| m.object).collect();
    objects.extend(admit::missing_system_namespaces(api, &objects).await?);
    write_all(api, objects).await
}

/// The stored ClusterConfig, or the defaults.
pub async fn stored_config(api: &Api) -> Result<ClusterConfigSpec, ApiError> {
    Ok(
        match api
            .get(
                Kind::ClusterConfig,
                None,
                podnet_model::config::DEFAULT_NAME,
            )
            .await?
        {
            Some(Object::ClusterConfig(c)) => c.spec,
            _ => ClusterConfigSpec::default(),
        },
    )
}

/// Writes objects (already valid), in dependency order (namespaces first). After a
/// conflict, the objects of the failed batch are retried one per transaction, so that
/// one busy object cannot hold back the rest.
async fn write_all(api: &Api, mut objects: Vec<Object>) -> Result<Vec<Outcome>, ApplyError> {
    objects.sort_by_key(|o| o.kind() != Kind::Namespace && o.kind() != Kind::ClusterConfig);
    let mut outcomes: BTreeMap<usize, Outcome> = BTreeMap::new();
    let mut chunk_size = api.store().max_txn_ops().max(1);
    let mut pending: Vec<usize> = (0..objects.len()).collect();
    for _attempt in 0..MAX_ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        let stored = read_stored(api, &objects, &pending).await?;
        let mut failed = Vec::new();
        for chunk in pending.chunks(chunk_size) {
            let mut txn = Txn::new();
            let mut planned = Vec::new();
            for &i in chunk {
                let key = objects[i].key();
                let old = stored.get(&key);
                let (obj, action) = merged(&objects[i], old)?;
                let object = objects[i].object_ref();
                if action == Action::Unchanged {
                    outcomes.insert(i, Outcome { object, action });
                    continue;
                }
                let rev = old.map_or(0, |kv| kv.mod_revision);
                txn = txn
                    .when([Compare::mod_revision(&key, rev)])
                    .and_then([Op::put(&key, encode(&obj))]);
                planned.push((i, Outcome { object, action }));
            }
            if planned.is_empty() {
                continue;
            }
            if api
                .store()
                .txn(txn)
                .await
                .map_err(ApiError::from)?
                .succeeded
            {
                outcomes.extend(planned);
            } else {
                failed.extend(planned.into_iter().map(|(i, _)| i));
            }
        }
        pending = failed;
        chunk_size = 1;
    }
    if let Some(&i) = pending.first() {
        return Err(ApplyError::Contended {
            object: objects[i].object_ref(),
            attempts: MAX_ATTEMPTS,
        });
    }
    Ok(outcomes.into_values().collect())
}

/// The object to store and what that means.
fn merged(new: &Object, old: Option<&KeyValue>) -> Result<(Object, Action), ApplyError> {
    let mut obj = new.clone();
    obj.meta_mut().resource_version = None;
    match old {
        None => {
            let meta = obj.meta_mut();
            meta.uid = Some(uuid::Uuid::new_v4().to_string());
            meta.creation_timestamp = Some(Time(Timestamp::now()));
            meta.generation = Some(1);
            default_status(&mut obj);
            Ok((obj, Action::Created))
        }
        Some(kv) => {
            let stored = decode(kv)?;
            preserve(&mut obj, &stored);
            if encode(&obj) == encode(&stored) {
                return Ok((stored, Action::Unchanged));
            }
            let meta = obj.meta_mut();
            meta.generation = Some(meta.generation.unwrap_or(1) + 1);
            Ok((obj, Action::Configured))
        }
    }
}

fn default_status(obj: &mut Object) {
    if let Object::Namespace(ns) = obj {
        ns.status.get_or_insert_with(Default::default).phase = Some("Active".into());
    }
}

/// Stored objects for the given indices, by key. Large groups are read with one range
/// per (kind, namespace) instead of one get each.
async fn read_stored(
    api: &Api,
    objects: &[Object],
    idx: &[usize],
) -> Result<HashMap<String, KeyValue>, ApiError> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for &i in idx {
        let o = &objects[i];
        groups
            .entry(o.kind().prefix(o.namespace()))
            .or_default()
            .push(o.key());
    }
    let mut out = HashMap::new();
    for (prefix, keys) in groups {
        if keys.len() > 32 {
            let wanted: BTreeSet<&String> = keys.iter().collect();
            for kv in api.store().range(&prefix).await?.kvs {
                if wanted.contains(&kv.key) {
                    out.insert(kv.key.clone(), kv);
                }
            }
        } else {
            for k in keys {
                if let Some(kv) = api.store().get(&k).await? {
                    out.insert(k, kv);
                }
            }
        }
    }
    Ok(out)
}

/// A manifest error about one object, for callers composing their own checks.
pub fn object_error(m: &Manifest, field: &str, expected: &str, found: &str) -> ManifestError {
    ManifestError {
        source: m.source.clone(),
        object: Some(m.object.object_ref()),
        errors: vec![FieldError::new(field, expected, found)],
    }
}
