//! The proxy's loop (in the agent): watch Services and EndpointSlices, coalesce
//! bursts, plan the touched services, commit one nftables transaction, then drop the
//! conntrack entries of removed UDP endpoints and update the health-check servers.
//! The kernel is never listed: the engine remembers what it committed, and a failed
//! commit (or the hourly resync) replaces the whole table atomically.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use podnet_linux::nft::Nft;
use podnet_model::{Kind, Object};
use podnet_store::{Api, Informer, InformerEvent};
use tokio::sync::watch;

use crate::engine::Engine;
use crate::health::HealthServers;
use crate::ruleset::RulesetConfig;

/// How long events are gathered into one sync after the first of a burst.
pub const COALESCE: Duration = Duration::from_millis(5);
/// A full, atomic replace of the table this often, in case someone touched it.
pub const FULL_RESYNC: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct ProxyOptions {
    pub node: String,
    /// NodePorts listen on these addresses.
    pub node_ips: Vec<Ipv4Addr>,
    pub ruleset: RulesetConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("opening the nftables socket: {0}")]
    Nft(#[from] podnet_linux::nft::NftError),
}

/// Counters for the agent's metrics endpoint.
#[derive(Debug, Default)]
pub struct ProxyMetrics {
    pub syncs: AtomicU64,
    pub full_syncs: AtomicU64,
    pub sync_errors: AtomicU64,
    pub last_sync_micros: AtomicU64,
    pub sync_micros_total: AtomicU64,
    pub elements_added: AtomicU64,
    pub elements_deleted: AtomicU64,
    pub conntrack_deleted: AtomicU64,
    pub services: AtomicU64,
}

impl ProxyMetrics {
    /// Prometheus text exposition of the counters.
    pub fn render(&self, out: &mut String) {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut line = |name: &str, kind: &str, help: &str, v: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            ));
        };
        line(
            "podnet_proxy_syncs_total",
            "counter",
            "nftables transactions committed",
            g(&self.syncs),
        );
        line(
            "podnet_proxy_full_syncs_total",
            "counter",
            "full table replaces",
            g(&self.full_syncs),
        );
        line(
            "podnet_proxy_sync_errors_total",
            "counter",
            "transactions the kernel refused",
            g(&self.sync_errors),
        );
        line(
            "podnet_proxy_last_sync_microseconds",
            "gauge",
            "plan + commit time of the last sync",
            g(&self.last_sync_micros),
        );
        line(
            "podnet_proxy_sync_microseconds_total",
            "counter",
            "plan + commit time of all syncs",
            g(&self.sync_micros_total),
        );
        line(
            "podnet_proxy_elements_added_total",
            "counter",
            "map elements added",
            g(&self.elements_added),
        );
        line(
            "podnet_proxy_elements_deleted_total",
            "counter",
            "map elements deleted",
            g(&self.elements_deleted),
        );
        line(
            "podnet_proxy_conntrack_deleted_total",
            "counter",
            "stale UDP flows deleted",
            g(&self.conntrack_deleted),
        );
        line(
            "podnet_proxy_services",
            "gauge",
            "services known",
            g(&self.services),
        );
    }
}

/// Runs the proxy until `stop` turns true.
pub async fn run(
    api: Api,
    opts: ProxyOptions,
    metrics: Arc<ProxyMetrics>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ProxyError> {
    let nft = Arc::new(Nft::new()?);
    let mut engine = Engine::new(opts.ruleset, &opts.node, opts.node_ips.clone());
    let mut health = HealthServers::new(None);
    let mut services = Informer::new(api.clone(), Kind::Service, None);
    let mut slices = Informer::new(api, Kind::EndpointSlice, None);
    let (mut have_services, mut have_slices) = (false, false);
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut next_full = Instant::now() + FULL_RESYNC;
    loop {
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            ev = services.next() => {
                have_services |= matches!(ev, InformerEvent::Restarted(_));
                on_service(&mut engine, ev);
            }
            ev = slices.next() => {
                have_slices |= matches!(ev, InformerEvent::Restarted(_));
                on_slice(&mut engine, ev);
            }
            _ = sleep => {
                deadline = None;
                if Instant::now() >= next_full {
                    engine.request_full_resync();
                    next_full = Instant::now() + FULL_RESYNC;
                }
                sync(&mut engine, &nft, &mut health, &metrics).await;
                if engine.has_pending() {
                    // the kernel refused it: retry as a full replace, not in a hot loop
                    deadline = Some(tokio::time::Instant::now() + Duration::from_secs(1));
                }
                continue;
            }
        }
        // Both initial lists first: a sync with services but no slices yet would
        // reject every connection for a moment.
        if have_services && have_slices && engine.has_pending() && deadline.is_none() {
            deadline = Some(tokio::time::Instant::now() + COALESCE);
        }
    }
}

fn on_service(engine: &mut Engine, ev: InformerEvent) {
    match ev {
        InformerEvent::Restarted(all) => {
            engine.clear_services();
            for o in all {
                if let Object::Service(s) = o {
                    engine.upsert_service(s);
                }
            }
        }
        InformerEvent::Applied(Object::Service(s)) => engine.upsert_service(s),
        InformerEvent::Deleted(r, _) => {
            engine.remove_service(r.namespace.as_deref().unwrap_or("default"), &r.name)
        }
        InformerEvent::Applied(_) => {}
    }
}

fn on_slice(engine: &mut Engine, ev: InformerEvent) {
    match ev {
        InformerEvent::Restarted(all) => {
            engine.clear_slices();
            for o in all {
                if let Object::EndpointSlice(s) = o {
                    engine.upsert_slice(s);
                }
            }
        }
        InformerEvent::Applied(Object::EndpointSlice(s)) => engine.upsert_slice(s),
        InformerEvent::Deleted(r, _) => {
            engine.remove_slice(r.namespace.as_deref().unwrap_or("default"), &r.name)
        }
        InformerEvent::Applied(_) => {}
    }
}

/// One sync: plan, commit, then the follow-ups that need the committed state.
pub async fn sync(
    engine: &mut Engine,
    nft: &Arc<Nft>,
    health: &mut HealthServers,
    metrics: &ProxyMetrics,
) {
    let started = Instant::now();
    let mut planned = engine.plan();
    metrics
        .services
        .store(engine.service_count() as u64, Ordering::Relaxed);
    for w in &planned.warnings {
        tracing::warn!("{w}");
    }
    if planned.batch.is_empty() {
        engine.commit(planned);
        health.reconcile(&engine.health_checks()).await;
        return;
    }
    let (added, deleted) = planned
        .batch
        .ops
        .iter()
        .fold((0u64, 0u64), |(a, d), op| match op {
            podnet_linux::nft::Op::AddElements(_, _, e) => (a + e.len() as u64, d),
            podnet_linux::nft::Op::DeleteElements(_, _, e) => (a, d + e.len() as u64),
            _ => (a, d),
        });
    let full = planned.full;
    let nft2 = nft.clone();
    // moved, not copied: a full batch at 50k services is tens of MB
    let batch = std::mem::take(&mut planned.batch);
    let result = tokio::task::spawn_blocking(move || nft2.commit(&batch))
        .await
        .expect("the nftables commit task panicked");
    let micros = started.elapsed().as_micros() as u64;
    match result {
        Ok(sent) => {
            let stale = planned.stale_udp_backends.clone();
            let services = planned.services_planned;
            engine.commit(planned);
            metrics.syncs.fetch_add(1, Ordering::Relaxed);
            if full {
                metrics.full_syncs.fetch_add(1, Ordering::Relaxed);
            }
            metrics.elements_added.fetch_add(added, Ordering::Relaxed);
            metrics
                .elements_deleted
                .fetch_add(deleted, Ordering::Relaxed);
            metrics.last_sync_micros.store(micros, Ordering::Relaxed);
            metrics
                .sync_micros_total
                .fetch_add(micros, Ordering::Relaxed);
            tracing::info!(
                full,
                services,
                added,
                deleted,
                bytes = sent.bytes,
                micros,
                "service rules synced"
            );
            if !stale.is_empty() {
                let n = tokio::task::spawn_blocking(move || {
                    podnet_linux::conntrack::delete_dnatted(17, &stale)
                })
                .await
                .expect("the conntrack task panicked");
                match n {
                    Ok(n) => {
                        metrics
                            .conntrack_deleted
                            .fetch_add(n as u64, Ordering::Relaxed);
                        if n > 0 {
                            tracing::info!(
                                deleted = n,
                                "stale UDP flows of removed endpoints deleted"
                            );
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "deleting stale UDP flows failed"),
                }
            }
        }
        Err(e) => {
            metrics.sync_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, full, "the kernel refused the service rules; the next sync replaces the table");
            engine.failed(planned);
            // retry soon, as a full replace
        }
    }
    health.reconcile(&engine.health_checks()).await;
}
