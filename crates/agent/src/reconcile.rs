//! The routing loop: Node events in, kernel changes out.
//!
//! Each Node is reduced to its [`Peer`] (the fields routing depends on), so a
//! heartbeat, a label or a condition change leaves the input unchanged and costs
//! nothing. When the input changes, the planner runs; when its desired state equals
//! the last one applied successfully, the kernel is not even dumped. Otherwise the
//! applier dumps, diffs and changes the difference. A periodic resync (every
//! [`RESYNC`]) re-reads this node's addresses and re-applies, repairing anything
//! changed behind the agent's back; after a failed apply it retries every
//! [`RETRY`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use podnet_model::config::{ClusterConfigSpec, OverlayMode};
use podnet_model::Object;
use podnet_store::{Api, InformerEvent};

use crate::apply::{self, Applier};
use crate::firewall::{self, TableKeeper};
use crate::metrics::Metrics;
use crate::plan::{self, Desired, Local, Peer, SkipReason};
use crate::{cniconf, condition, AgentError, CniOptions};

/// Full re-apply period.
pub const RESYNC: Duration = Duration::from_secs(60);
/// Retry period after a failed apply.
pub const RETRY: Duration = Duration::from_secs(1);

/// The loop's state.
pub struct Reconciler {
    api: Api,
    node: String,
    node_ip: IpAddr,
    cluster: ClusterConfigSpec,
    settings: plan::Settings,
    applier: Option<Applier>,
    cni: Option<CniOptions>,
    metrics: Arc<Metrics>,
    /// Nodes by name, after the informer's first list.
    nodes: Option<BTreeMap<String, Peer>>,
    local: Option<Local>,
    /// The desired state last applied without error.
    applied: Option<Desired>,
    /// The skipped peers last reported (names and reasons).
    reported: Option<Vec<(String, SkipReason)>>,
    cni_written: Option<IpNet>,
    /// Keeps the overlay's notrack table (vxlan mode), made at its first apply.
    overlay: Option<TableKeeper>,
    pub last_failed: bool,
}

impl Reconciler {
    pub fn new(
        api: Api,
        node: String,
        node_ip: IpAddr,
        cluster: ClusterConfigSpec,
        applier: Option<Applier>,
        cni: Option<CniOptions>,
        metrics: Arc<Metrics>,
    ) -> Reconciler {
        Reconciler {
            api,
            node,
            node_ip,
            settings: plan::Settings::from(&cluster),
            cluster,
            applier,
            cni,
            metrics,
            nodes: None,
            local: None,
            applied: None,
            reported: None,
            cni_written: None,
            overlay: None,
            last_failed: false,
        }
    }

    /// Keeps `ip podnet-overlay` as planned ([`Desired::untracked`], vxlan mode);
    /// `full` replaces it whole.
    async fn apply_overlay(&mut self, desired: &Desired, full: bool) -> Result<(), String> {
        let Some(table) = desired.untracked.clone() else {
            return Ok(());
        };
        let keeper = match &self.overlay {
            Some(k) => k.clone(),
            None => {
                let k = TableKeeper::new().map_err(|e| format!("nftables socket: {e}"))?;
                self.overlay = Some(k.clone());
                k
            }
        };
        let stats = keeper
            .apply(table, full)
            .await
            .map_err(|e| format!("table ip {}: {e}", firewall::OVERLAY_TABLE))?;
        if stats.ops > 0 {
            tracing::info!(
                ops = stats.ops,
                full = stats.full,
                "overlay notrack table applied"
            );
        }
        Ok(())
    }

    /// Folds one informer event into the node set; true when routing input changed.
    pub fn on_event(&mut self, ev: InformerEvent) -> bool {
        match ev {
            InformerEvent::Restarted(all) => {
                let fresh: BTreeMap<String, Peer> = all
                    .iter()
                    .filter_map(|o| match o {
                        Object::Node(n) => plan::peer_of(n),
                        _ => None,
                    })
                    .map(|p| (p.name.clone(), p))
                    .collect();
                let changed = self.nodes.as_ref() != Some(&fresh);
                self.nodes = Some(fresh);
                changed
            }
            InformerEvent::Applied(Object::Node(n)) => {
                let nodes = self.nodes.get_or_insert_with(BTreeMap::new);
                let name = n.metadata.name.clone().unwrap_or_default();
                match plan::peer_of(&n) {
                    Some(p) => nodes.insert(name, p.clone()).as_ref() != Some(&p),
                    None => nodes.remove(&name).is_some(),
                }
            }
            InformerEvent::Deleted(r, _) => self
                .nodes
                .get_or_insert_with(BTreeMap::new)
                .remove(&r.name)
                .is_some(),
            InformerEvent::Applied(_) => false,
        }
    }

    /// Counts an event that changed nothing routing depends on.
    pub fn skipped(&self) {
        self.metrics.skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// Plans and, when the desired state changed (or `full`), applies.
    pub async fn reconcile(&mut self, full: bool) -> Result<(), AgentError> {
        let Some(nodes) = &self.nodes else {
            return Ok(());
        };
        let peers: Vec<Peer> = nodes.values().cloned().collect();
        self.metrics
            .nodes
            .store(peers.len() as u64, Ordering::Relaxed);
        self.write_cni(&peers)?;
        let Some(applier) = self.applier.clone() else {
            return Ok(());
        };
        if full || self.local.is_none() {
            match apply::local_facts(applier.handle(), self.node_ip).await {
                Ok(Some((dev, onlink))) => {
                    self.local = Some(Local {
                        name: self.node.clone(),
                        ip: self.node_ip,
                        dev,
                        onlink,
                    })
                }
                Ok(None) => {
                    tracing::error!(ip = %self.node_ip, "no link holds the node IP; cannot route");
                    self.last_failed = true;
                    return Ok(());
                }
                Err(e) => {
                    tracing::error!(error = %e, "reading this node's addresses failed");
                    self.last_failed = true;
                    return Ok(());
                }
            }
        }
        let Some(local) = &self.local else {
            return Ok(());
        };
        let planned = plan::plan(&self.settings, local, &peers);
        self.report_skipped(&planned).await;
        if !full && !self.last_failed && self.applied.as_ref() == Some(&planned.desired) {
            self.skipped();
            return Ok(());
        }
        let t0 = Instant::now();
        let result = applier.apply(&planned.desired).await;
        let overlay = self.apply_overlay(&planned.desired, full).await;
        let took = t0.elapsed();
        self.metrics.observe_duration(took);
        self.metrics.reconciles.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(report) => {
                self.metrics.add_changes(&report.changes);
                let c = report.changes;
                if c.total() > 0 {
                    tracing::info!(
                        links = c.links,
                        addresses = c.addresses,
                        routes = c.routes,
                        neighbours = c.neighbours,
                        fdb = c.fdb,
                        took_us = took.as_micros() as u64,
                        "routing state updated"
                    );
                } else {
                    tracing::debug!(
                        took_us = took.as_micros() as u64,
                        "routing state already as desired"
                    );
                }
                if let Err(e) = &overlay {
                    tracing::error!(error = %e, "applying the overlay notrack table failed");
                }
                if report.errors.is_empty() && overlay.is_ok() {
                    let d = &planned.desired;
                    self.metrics
                        .managed_routes
                        .store(d.routes.len() as u64, Ordering::Relaxed);
                    self.metrics
                        .managed_neighbours
                        .store(d.neighbours.len() as u64, Ordering::Relaxed);
                    self.metrics
                        .managed_fdb
                        .store(d.fdb.len() as u64, Ordering::Relaxed);
                    self.applied = Some(planned.desired);
                    self.last_failed = false;
                } else {
                    self.metrics
                        .reconcile_errors
                        .fetch_add(1, Ordering::Relaxed);
                    for e in &report.errors {
                        tracing::error!(error = %e, "routing change failed");
                    }
                    self.applied = None;
                    self.last_failed = true;
                }
            }
            Err(e) => {
                self.metrics
                    .reconcile_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "reading the kernel's routing state failed");
                self.applied = None;
                self.last_failed = true;
            }
        }
        Ok(())
    }

    /// Logs skipped peers and keeps the host-gw condition, when they changed.
    async fn report_skipped(&mut self, planned: &plan::Plan) {
        let now: Vec<(String, SkipReason)> = planned
            .skipped
            .iter()
            .map(|s| (s.name.clone(), s.reason))
            .collect();
        if self.reported.as_ref() == Some(&now) {
            return;
        }
        let unreachable = planned.unreachable();
        self.metrics
            .unreachable_peers
            .store(unreachable.len() as u64, Ordering::Relaxed);
        for s in &planned.skipped {
            match s.reason {
                SkipReason::NotOnLink => tracing::error!(
                    peer = %s.name, peer_ip = %s.ip,
                    "host-gw cannot route to this node: its IP is on none of this node's on-link subnets (use overlay mode vxlan, or one L2 network)"
                ),
                SkipReason::NoVtepMac => tracing::warn!(
                    peer = %s.name, peer_ip = %s.ip,
                    "no route to this node yet: it has not published its VTEP MAC (podnet.io/vtep-mac)"
                ),
                SkipReason::NoPodCidr => {
                    tracing::debug!(peer = %s.name, "node has no pod CIDR yet")
                }
            }
        }
        if self.settings.mode == OverlayMode::HostGw {
            let cond = condition::unreachable_condition(&unreachable, jiff::Timestamp::now());
            match condition::set(&self.api, &self.node, cond).await {
                Ok(true) => tracing::info!(
                    unreachable = unreachable.len(),
                    "condition {} updated",
                    condition::HOST_GW_UNREACHABLE
                ),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "writing the node condition failed");
                    return;
                }
            }
        }
        self.reported = Some(now);
    }

    fn write_cni(&mut self, peers: &[Peer]) -> Result<(), AgentError> {
        let Some(cni) = &self.cni else {
            return Ok(());
        };
        let Some(cidr) = peers
            .iter()
            .find(|p| p.name == self.node)
            .and_then(|p| p.pod_cidr)
        else {
            return Ok(());
        };
        if self.cni_written == Some(cidr) {
            return Ok(());
        }
        let list = cniconf::conflist(&cni.chain, cidr, self.cluster.pod_mtu(), &cni.ipam_dir);
        cniconf::write(&cni.conf_dir, &list).map_err(|source| AgentError::CniConfig {
            dir: cni.conf_dir.clone(),
            source,
        })?;
        tracing::info!(pod_cidr = %cidr, mtu = self.cluster.pod_mtu(), dir = %cni.conf_dir.display(), "CNI configuration written");
        self.cni_written = Some(cidr);
        Ok(())
    }
}
