//! The pod sandbox: a named network namespace with `lo` up, attached by CNI, plus the
//! `/etc/netns/<podns>/{resolv.conf,hosts}` that `ip netns exec` mounts for the pod's
//! processes. Its record (`sandbox.json` in the pod directory) is written before the
//! namespace is made, so that whatever exists can always be found and torn down.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use podnet_cni::ChainRunner;
use podnet_linux::netns;
use podnet_model::k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};

use crate::config::RuntimeConfig;
use crate::dns::{pod_hosts, pod_resolv_conf};
use crate::error::RuntimeError;
use crate::names::{cni_container_id, etc_netns_dir, pod_netns_name, sandbox_record};
use crate::{cni, writefile};

/// What a pod's sandbox consists of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SandboxRecord {
    /// The network namespace (empty for `hostNetwork` pods).
    pub netns: String,
    pub host_network: bool,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// The network attached (set once ADD succeeded).
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub pod_ips: Vec<IpAddr>,
}

impl SandboxRecord {
    pub fn load(pod_dir: &Path) -> Option<SandboxRecord> {
        let bytes = std::fs::read(sandbox_record(pod_dir)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn store(&self, pod_dir: &Path) -> Result<(), RuntimeError> {
        writefile::atomic(
            &sandbox_record(pod_dir),
            &serde_json::to_vec_pretty(self).unwrap_or_default(),
        )
    }

    /// Whether the sandbox is complete and its namespace still there.
    pub fn is_ready(&self) -> bool {
        !self.pod_ips.is_empty() && (self.host_network || netns::exists(&self.netns))
    }

    /// The prefix that runs a program inside the sandbox (none for `hostNetwork`).
    pub fn exec_prefix(&self, ip: &Path) -> Vec<String> {
        if self.host_network {
            Vec::new()
        } else {
            vec![
                ip.display().to_string(),
                "netns".into(),
                "exec".into(),
                self.netns.clone(),
            ]
        }
    }
}

/// Creates the sandbox of `pod` (whose directory is `pod_dir`, existing), or completes a
/// partial one. Returns its record with the pod IPs.
pub async fn setup(
    cfg: &RuntimeConfig,
    runner: Arc<ChainRunner>,
    pod: &Pod,
    pod_dir: &Path,
) -> Result<SandboxRecord, RuntimeError> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    if spec.host_network == Some(true) {
        let record = SandboxRecord {
            netns: String::new(),
            host_network: true,
            container_id: cni_container_id(uid),
            network: None,
            pod_ips: vec![cfg.host_ip],
        };
        record.store(pod_dir)?;
        return Ok(record);
    }
    let name = pod_netns_name(&cfg.netns_prefix, uid);
    let mut record = SandboxRecord {
        netns: name.clone(),
        host_network: false,
        container_id: cni_container_id(uid),
        network: None,
        pod_ips: Vec::new(),
    };
    // Intent first: a crash after this point leaves a record that leads to the namespace.
    record.store(pod_dir)?;
    if !netns::exists(&name) {
        netns::delete(&name)?; // a leftover mount point
        netns::create(&name)?;
    }
    let ns = netns::NetNs::open(&name)?;
    ns.handle()?.set_up("lo").await?;
    drop(ns);
    let att = cni::attachment(pod, netns::path_of(&name));
    let (network, result) = cni::add(runner, cfg.cni_conf_dir.clone(), att).await?;
    record.network = Some(network);
    record.pod_ips = cni::pod_ips(&result);
    if record.pod_ips.is_empty() {
        record.store(pod_dir)?;
        return Err(RuntimeError::NoPodIp {
            found: result.to_json(),
        });
    }
    write_etc(cfg, pod, &record)?;
    record.store(pod_dir)?;
    tracing::info!(netns = %name, pod_ips = ?record.pod_ips, "pod sandbox ready");
    Ok(record)
}

/// Writes `/etc/netns/<podns>/resolv.conf` and `hosts`.
pub fn write_etc(
    cfg: &RuntimeConfig,
    pod: &Pod,
    record: &SandboxRecord,
) -> Result<(), RuntimeError> {
    if record.host_network {
        return Ok(());
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let node_rc = if spec.dns_policy.as_deref() == Some("Default") {
        std::fs::read_to_string(&cfg.dns.node_resolv_conf).unwrap_or_default()
    } else {
        String::new()
    };
    let dir = etc_netns_dir(&record.netns);
    std::fs::create_dir_all(&dir).map_err(RuntimeError::io("creating", &dir))?;
    let rc = pod_resolv_conf(&spec, ns, &cfg.dns, &node_rc).render();
    writefile::atomic(&dir.join("resolv.conf"), rc.as_bytes())?;
    let hosts = pod_hosts(&spec, name, ns, &cfg.dns.cluster_domain, &record.pod_ips);
    writefile::atomic(&dir.join("hosts"), hosts.as_bytes())?;
    Ok(())
}

/// Tears a sandbox down: CNI DEL, the namespace, `/etc/netns/<podns>`. Best effort:
/// every step is tried; "already gone" is success.
pub async fn teardown(
    cfg: &RuntimeConfig,
    runner: Arc<ChainRunner>,
    record: &SandboxRecord,
) -> Result<(), RuntimeError> {
    if record.host_network {
        return Ok(());
    }
    let mut errors = Vec::new();
    let mut att = podnet_cni::Attachment::new(
        record.container_id.clone(),
        netns::path_of(&record.netns),
        cni::IFNAME,
    );
    att.args.push(("IgnoreUnknown".into(), "1".into()));
    if let Err(e) = cni::del(
        runner,
        cfg.cni_conf_dir.clone(),
        record.network.clone(),
        att,
    )
    .await
    {
        errors.push(format!("cni DEL of {}: {e}", record.netns));
    }
    if let Err(e) = netns::delete(&record.netns) {
        errors.push(e.to_string());
    }
    let dir = etc_netns_dir(&record.netns);
    if let Err(e) = remove_dir(&dir) {
        errors.push(e.to_string());
    }
    tracing::info!(netns = %record.netns, failed = errors.len(), "pod sandbox torn down");
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RuntimeError::Teardown(errors))
    }
}

/// Removes a directory tree; a missing one is success.
pub fn remove_dir(dir: &PathBuf) -> Result<(), RuntimeError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RuntimeError::io("removing", dir)(e)),
    }
}
