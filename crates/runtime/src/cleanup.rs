//! Tearing down what no pod owns: pod directories of pods that are gone (at startup),
//! attachments left in the CNI cache, and everything at once for `lab down`
//! ([`teardown_all`]). Best effort: every step is tried, errors are collected.
//!
//! Ownership comes from this runtime's own state (pod directories, its CNI cache), never
//! from a namespace's name alone: several nodes of a lab share one namespace prefix.

use std::collections::HashSet;
use std::path::Path;
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

/// The startup reconcile: pod directories of pods not in `live` (this node's pods in
/// the store) and CNI attachments of this node's pod namespaces that no pod has.
pub(crate) async fn reconcile_orphans(ctx: &Ctx, live: &HashSet<String>, every_uid: &HashSet<String>) {
    let mut errors = Vec::new();
    let pods_dir = ctx.cfg.pods_dir();
    for entry in std::fs::read_dir(&pods_dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if uid_of_pod_dir(&name).is_some_and(|u| live.contains(u)) {
            continue;
        }
        let _permit = ctx.sandboxes.acquire().await;
        teardown_pod_dir(&ctx.cfg, ctx.runner.clone(), &entry.path(), ORPHAN_GRACE, &mut errors).await;
    }
    let keep: HashSet<String> = every_uid
        .iter()
        .map(|u| pod_netns_name(&ctx.cfg.netns_prefix, u))
        .collect();
    cached_attachments(&ctx.cfg, ctx.runner.clone(), &keep, &mut errors).await;
    if errors.is_empty() {
        tracing::info!("startup reconcile done");
    } else {
        tracing::warn!(errors = ?errors, "startup reconcile left errors");
    }
}

/// DEL of every attachment in the CNI cache whose namespace is one of this runtime's
/// pod namespaces and not in `keep`; then the namespace and its `/etc/netns` directory.
async fn cached_attachments(
    cfg: &RuntimeConfig,
    runner: Arc<ChainRunner>,
    keep: &HashSet<String>,
    errors: &mut Vec<String>,
) {
    let prefix = cfg.pod_netns_prefix();
    let results = runner.cache().results_dir();
    for entry in std::fs::read_dir(&results).into_iter().flatten().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let mut parts = file.split(':');
        let (Some(net), Some(cid), Some(ifname)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Ok(Some(cached)) = runner.cache().load(net, cid, ifname) else { continue };
        let Some(ns_name) = cached
            .netns
            .as_ref()
            .and_then(|p| p.strip_prefix(netns::NETNS_RUN_DIR).ok())
            .map(|p| p.to_string_lossy().into_owned())
        else {
            continue;
        };
        if !ns_name.starts_with(&prefix) || keep.contains(&ns_name) {
            continue;
        }
        tracing::info!(netns = %ns_name, container_id = cid, "releasing a cached cni attachment no pod owns");
        let runner2 = runner.clone();
        let mut att = Attachment::new(cid, netns::path_of(&ns_name), ifname);
        att.args = cached.cni_args.clone();
        att.capability_args = cached.capability_args.clone();
        let config = cached.config.clone();
        let del = tokio::task::spawn_blocking(move || -> Result<(), RuntimeError> {
            let list = NetworkConfigList::from_value(config).map_err(podnet_cni::InvokeError::from)?;
            runner2.del_network_list(&list, &att)?;
            Ok(())
        })
        .await;
        match del {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(format!("cni DEL of {ns_name}: {e}")),
            Err(e) => errors.push(e.to_string()),
        }
        if let Err(e) = netns::delete(&ns_name) {
            errors.push(e.to_string());
        }
        if let Err(e) = sandbox::remove_dir(&etc_netns_dir(&ns_name)) {
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
    for entry in std::fs::read_dir(cfg.pods_dir()).into_iter().flatten().flatten() {
        teardown_pod_dir(cfg, runner.clone(), &entry.path(), Duration::ZERO, &mut errors).await;
    }
    cached_attachments(cfg, runner, &HashSet::new(), &mut errors).await;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RuntimeError::Teardown(errors))
    }
}
