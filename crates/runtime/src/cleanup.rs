//! Tearing down what no pod owns: pod directories of pods that are gone (at startup),
//! attachments left in the CNI cache, and everything at once for `lab down`
//! ([`teardown_all`]). Best effort: every step is tried, errors are collected.
//!
//! Ownership comes from this runtime's own state (pod directories, its CNI cache), never
//! from a namespace's name alone: several nodes of a lab share one namespace prefix.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use podnet_cni::{Attachment, ChainRunner, NetworkConfigList};
use podnet_linux::netns;

use crate::config::RuntimeConfig;
use crate::error::RuntimeError;
use crate::names::{etc_netns_dir, pod_netns_name, uid_of_pod_dir};
use crate::process::{ProcessRecord, Tools};
use crate::sandbox::{self, SandboxRecord};
use crate::worker::{stop_groups, Ctx};

/// Grace for processes of pods that are gone.
const ORPHAN_GRACE: Duration = Duration::from_secs(2);

/// Every process record in a pod directory.
fn records_in(dir: &Path) -> Vec<ProcessRecord> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "state"))
        .filter_map(|p| ProcessRecord::load(&p))
        .collect()
}

/// Stops a pod directory's processes, tears down its sandbox and removes it.
pub(crate) async fn teardown_pod_dir(
    cfg: &RuntimeConfig,
    runner: Arc<ChainRunner>,
    dir: &Path,
    grace: Duration,
    errors: &mut Vec<String>,
) {
    tracing::info!(dir = %dir.display(), "tearing down a pod directory");
    stop_groups(&records_in(dir), grace).await;
    if let Some(record) = SandboxRecord::load(dir) {
        if let Err(e) = sandbox::teardown(cfg, runner, &record).await {
            errors.push(e.to_string());
            return; // keep the directory: the next attempt still finds the sandbox
        }
    }
    if let Err(e) = sandbox::remove_dir(&dir.to_path_buf()) {
        errors.push(e.to_string());
    }
}

/// What the startup reconcile removes, listed before any worker runs (so that nothing
/// a new pod creates meanwhile can be mistaken for an orphan).
#[derive(Debug, Default)]
pub(crate) struct Orphans {
    dirs: Vec<PathBuf>,
    attachments: Vec<CachedRef>,
}

/// A CNI cache entry: network, container ID, interface, and its pod namespace.
#[derive(Debug, Clone)]
struct CachedRef {
    network: String,
    container_id: String,
    ifname: String,
    netns: String,
}

/// Pod directories of pods not in `live` (this node's pods in the store), and CNI cache
/// entries of this runtime's pod namespaces not in `keep`.
pub(crate) fn find_orphans(
    cfg: &RuntimeConfig,
    runner: &ChainRunner,
    live: &HashSet<String>,
    keep: &HashSet<String>,
) -> Orphans {
    let dirs = std::fs::read_dir(cfg.pods_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            !uid_of_pod_dir(&name).is_some_and(|u| live.contains(u))
        })
        .map(|e| e.path())
        .collect();
    Orphans {
        dirs,
        attachments: cached_refs(cfg, runner, keep),
    }
}

/// The startup reconcile: tears down what [`find_orphans`] listed.
pub(crate) async fn remove_orphans(ctx: &Ctx, orphans: Orphans) {
    let mut errors = Vec::new();
    for dir in &orphans.dirs {
        let _permit = ctx.sandboxes.acquire().await;
        teardown_pod_dir(&ctx.cfg, ctx.runner.clone(), dir, ORPHAN_GRACE, &mut errors).await;
    }
    release(ctx.runner.clone(), &orphans.attachments, &mut errors).await;
    if errors.is_empty() {
        tracing::info!(
            dirs = orphans.dirs.len(),
            attachments = orphans.attachments.len(),
            "startup reconcile done"
        );
    } else {
        tracing::warn!(errors = ?errors, "startup reconcile left errors");
    }
}

/// The names of the pod namespaces of `uids`.
pub(crate) fn netns_names<'a>(
    cfg: &RuntimeConfig,
    uids: impl IntoIterator<Item = &'a String>,
) -> HashSet<String> {
    uids.into_iter()
        .map(|u| pod_netns_name(&cfg.netns_prefix, u))
        .collect()
}

/// Entries of the CNI cache whose namespace is one of this runtime's pod namespaces and
/// not in `keep`.
fn cached_refs(
    cfg: &RuntimeConfig,
    runner: &ChainRunner,
    keep: &HashSet<String>,
) -> Vec<CachedRef> {
    let prefix = cfg.pod_netns_prefix();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(runner.cache().results_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let file = entry.file_name().to_string_lossy().into_owned();
        let mut parts = file.split(':');
        let (Some(net), Some(cid), Some(ifname)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(Some(cached)) = runner.cache().load(net, cid, ifname) else {
            continue;
        };
        let Some(ns_name) = cached
            .netns
            .as_ref()
            .and_then(|p| p.strip_prefix(netns::NETNS_RUN_DIR).ok())
            .map(|p| p.to_string_lossy().into_owned())
        else {
            continue;
        };
        if ns_name.starts_with(&prefix) && !keep.contains(&ns_name) {
            out.push(CachedRef {
                network: net.to_string(),
                container_id: cid.to_string(),
                ifname: ifname.to_string(),
                netns: ns_name,
            });
        }
    }
    out
}

/// CNI DEL of cached attachments (those still cached: a pod directory's teardown may
/// have released them already), then their namespaces and `/etc/netns` directories.
async fn release(runner: Arc<ChainRunner>, refs: &[CachedRef], errors: &mut Vec<String>) {
    for r in refs {
        let Ok(Some(cached)) = runner.cache().load(&r.network, &r.container_id, &r.ifname) else {
            continue;
        };
        tracing::info!(netns = %r.netns, container_id = %r.container_id, "releasing a cached cni attachment no pod owns");
        let runner2 = runner.clone();
        let mut att = Attachment::new(
            r.container_id.clone(),
            netns::path_of(&r.netns),
            r.ifname.clone(),
        );
        att.args = cached.cni_args.clone();
        att.capability_args = cached.capability_args.clone();
        let del = tokio::task::spawn_blocking(move || -> Result<(), RuntimeError> {
            let list = NetworkConfigList::from_value(cached.config)
                .map_err(podnet_cni::InvokeError::from)?;
            runner2.del_network_list(&list, &att)?;
            Ok(())
        })
        .await;
        match del {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(format!("cni DEL of {}: {e}", r.netns)),
            Err(e) => errors.push(e.to_string()),
        }
        if let Err(e) = netns::delete(&r.netns) {
            errors.push(e.to_string());
        }
        if let Err(e) = sandbox::remove_dir(&etc_netns_dir(&r.netns)) {
            errors.push(e.to_string());
        }
    }
}

/// Stops everything a node runtime made, without the store: every container process
/// (SIGKILL), every sandbox (CNI DEL, namespace, `/etc/netns/<podns>`), every pod
/// directory, and the attachments its CNI cache still lists for its pod namespaces.
/// For `lab down`; call it after stopping the runtime. CNI plugins run in the caller's
/// namespace unless `cfg.node_netns` names the node's.
pub async fn teardown_all(cfg: &RuntimeConfig) -> Result<(), RuntimeError> {
    let tools = Tools::find()?;
    let runner = Arc::new(crate::cni::runner(cfg, &tools.ip));
    let mut errors = Vec::new();
    for entry in std::fs::read_dir(cfg.pods_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        teardown_pod_dir(
            cfg,
            runner.clone(),
            &entry.path(),
            Duration::ZERO,
            &mut errors,
        )
        .await;
    }
    let refs = cached_refs(cfg, &runner, &HashSet::new());
    release(runner, &refs, &mut errors).await;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RuntimeError::Teardown(errors))
    }
}
