//! The firewall loop: the egress table once (and at every resync), the anti-spoofing
//! table whenever this node's IPAM attachments change (store watch on the node's
//! attachment prefix, relisted on every batch of events). nftables commits are
//! blocking netlink calls: they run on tokio's blocking pool.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use podnet_cni::plugin::ipam::ATTACHMENT_PREFIX;
use podnet_linux::nft::{self, Nft, NftError, TableState};
use podnet_model::config::ClusterConfigSpec;
use podnet_store::Api;

use super::{anti_spoofing, attachment_of, egress, Attachment};
use crate::metrics::Metrics;
use crate::reconcile::{RESYNC, RETRY};

/// One nftables table of this namespace, kept by its own applier: commits are
/// blocking netlink calls and run on tokio's blocking pool. Used for the firewall's
/// tables and for the routing loop's overlay table.
#[derive(Clone)]
pub struct TableKeeper {
    inner: Arc<Mutex<(Nft, nft::Applier)>>,
}

impl TableKeeper {
    pub fn new() -> Result<TableKeeper, NftError> {
        Ok(TableKeeper {
            inner: Arc::new(Mutex::new((Nft::new()?, nft::Applier::new()))),
        })
    }

    /// Applies `state`; `forget` first makes it a full replace (resync).
    pub async fn apply(&self, state: TableState, forget: bool) -> Result<nft::Stats, String> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || -> Result<nft::Stats, NftError> {
            let mut g = inner.lock().unwrap_or_else(|e| e.into_inner());
            let (nft, applier) = &mut *g;
            if forget {
                applier.forget();
            }
            applier.apply(nft, state)
        })
        .await
        .map_err(|e| format!("nftables task: {e}"))?
        .map_err(|e| e.to_string())
    }
}

/// This node's attachments and the store revision they were read at.
async fn attachments(
    api: &Api,
    prefix: &str,
    node: &str,
) -> Result<(Vec<Attachment>, i64), String> {
    let r = api
        .store()
        .range(prefix)
        .await
        .map_err(|e| format!("listing {prefix}: {e}"))?;
    let mut out: Vec<Attachment> = r
        .kvs
        .iter()
        .filter_map(|kv| attachment_of(node, &kv.key, &kv.value))
        .collect();
    out.sort();
    out.dedup();
    Ok((out, r.revision))
}

/// Runs until `stop` changes. `masquerade`: keep the egress table; `spoofing`: keep
/// the anti-spoofing table.
pub async fn run(
    api: Api,
    node: String,
    cluster: ClusterConfigSpec,
    masquerade: bool,
    spoofing: bool,
    metrics: Arc<Metrics>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), crate::AgentError> {
    let keeper = || TableKeeper::new().map_err(|e| crate::AgentError::Firewall(e.to_string()));
    let (egress_table, bridge_table) = (keeper()?, keeper()?);
    let egress_state = if masquerade {
        egress(cluster.cluster_cidr, &cluster.non_masquerade_cidrs)
    } else {
        None
    };
    let prefix = format!("{ATTACHMENT_PREFIX}{node}/");
    let mut applied_bridge: Option<TableState> = None;
    let mut egress_ok = false;
    let mut next_resync = tokio::time::Instant::now() + RESYNC;
    loop {
        let resync = tokio::time::Instant::now() >= next_resync;
        if resync {
            next_resync = tokio::time::Instant::now() + RESYNC;
        }
        let mut failed = false;
        if let Some(state) = &egress_state {
            if !egress_ok || resync {
                match egress_table.apply(state.clone(), resync).await {
                    Ok(s) => {
                        egress_ok = true;
                        metrics.firewall_applies.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            ops = s.ops,
                            full = s.full,
                            "egress masquerade table applied"
                        );
                    }
                    Err(e) => {
                        failed = true;
                        metrics.firewall_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(error = %e, "applying the egress masquerade table failed");
                    }
                }
            }
        }
        let mut watch_from = None;
        if spoofing {
            match attachments(&api, &prefix, &node).await {
                Ok((atts, rev)) => {
                    watch_from = Some(rev + 1);
                    let desired = anti_spoofing(&atts);
                    if resync || applied_bridge.as_ref() != Some(&desired) {
                        match bridge_table.apply(desired.clone(), resync).await {
                            Ok(s) => {
                                metrics.firewall_applies.fetch_add(1, Ordering::Relaxed);
                                metrics
                                    .pod_sources
                                    .store(atts.len() as u64, Ordering::Relaxed);
                                tracing::info!(
                                    pods = atts.len(),
                                    added = s.elements_added,
                                    removed = s.elements_deleted,
                                    full = s.full,
                                    "anti-spoofing table applied"
                                );
                                applied_bridge = Some(desired);
                            }
                            Err(e) => {
                                failed = true;
                                applied_bridge = None;
                                metrics.firewall_errors.fetch_add(1, Ordering::Relaxed);
                                tracing::error!(error = %e, "applying the anti-spoofing table failed");
                            }
                        }
                    }
                }
                Err(e) => {
                    failed = true;
                    tracing::warn!(error = %e, "reading IPAM attachments failed");
                }
            }
        }
        let wake = if failed {
            tokio::time::Instant::now() + RETRY
        } else {
            next_resync
        };
        // Wait for a change of this node's attachments, the resync, or the end.
        let stream = match watch_from {
            Some(rev) if !failed => api.store().watch(&prefix, rev).await.ok(),
            _ => None,
        };
        match stream {
            Some(mut s) => {
                tokio::select! {
                    ev = s.next() => {
                        if ev.is_some() {
                            // Take whatever else is already queued, then relist once.
                            while let Some(Some(_)) = s.next().now_or_never() {}
                        } else {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                    _ = tokio::time::sleep_until(wake) => {}
                    _ = stop.changed() => return Ok(()),
                }
            }
            None => {
                tokio::select! {
                    _ = tokio::time::sleep_until(wake) => {}
                    _ = stop.changed() => return Ok(()),
                }
            }
        }
    }
}
