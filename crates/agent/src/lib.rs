//! `podnet agent`: one per node, running in the node's network namespace. It registers
//! the Node (addresses, and the annotations peers route by) and keeps its heartbeat,
//! writes the node's CNI configuration once it has a pod CIDR, keeps the cross-node
//! routing state (VXLAN overlay or host-gw, from the ClusterConfig) through a pure
//! planner (`plan`) and a diffing applier (`apply`), serves metrics, and in the lab
//! runs the node runtime (the kubelet role).
#![forbid(unsafe_code)]

pub mod annotations;
pub mod apply;
pub mod cniconf;
pub mod condition;
pub mod firewall;
pub mod ipam_reconcile;
pub mod metrics;
pub mod plan;
pub mod reconcile;
pub mod register;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use podnet_model::config::ClusterConfigSpec;
use podnet_model::Kind;
use podnet_store::{Api, Informer};

pub use register::NodeIdentity;

/// How often the Node's Ready condition is refreshed.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub node: NodeIdentity,
    /// Where the node's CNI conflist is written; `None`: leave CNI config alone.
    pub cni: Option<CniOptions>,
    /// Keep the cross-node routing state (the overlay mode comes from `cluster`).
    pub routing: bool,
    /// The cluster's settings (overlay mode, VNI, port, MTU), read at start.
    pub cluster: ClusterConfigSpec,
    /// Keep the egress masquerade table (`ip podnet`).
    pub masquerade: bool,
    /// Keep the anti-spoofing table (`bridge podnet`); needs podnet's own CNI plugin
    /// (its IPAM attachments in the store name every pod's veth and address).
    pub anti_spoofing: bool,
    /// Serve Prometheus metrics here (`GET /metrics`).
    pub metrics: Option<SocketAddr>,
    /// Run the service proxy (`ip podnet-proxy`: ClusterIPs, NodePorts, LB IPs).
    pub service_proxy: bool,
    /// Run the node runtime (lab only).
    pub runtime: Option<podnet_runtime::RuntimeConfig>,
}

#[derive(Debug, Clone)]
pub struct CniOptions {
    pub conf_dir: PathBuf,
    pub chain: cniconf::CniChain,
    /// host-local's data directory.
    pub ipam_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Api(#[from] podnet_store::typed::ApiError),
    #[error(transparent)]
    Netlink(#[from] podnet_linux::NetlinkError),
    #[error(transparent)]
    Netns(#[from] podnet_linux::NetnsError),
    #[error("writing the CNI configuration to {dir}: {source}")]
    CniConfig {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("node runtime: {0}")]
    Runtime(String),
    #[error("nftables: {0}")]
    Firewall(String),
    #[error("binding the metrics listener on {addr}: {source}")]
    Metrics {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(
    api: Api,
    opts: AgentOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    register::register(&api, &opts.node).await?;
    tracing::info!(node = %opts.node.name, ip = %opts.node.ip, "node registered");
    if let Some(CniOptions {
        chain: cniconf::CniChain::Podnet { .. },
        ..
    }) = &opts.cni
    {
        match ipam_reconcile::reclaim(&api, &opts.node.name).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(released = n, "reclaimed addresses of vanished pods"),
            Err(e) => tracing::warn!(error = %e, "IPAM reconcile failed"),
        }
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let metrics = metrics::Metrics::new();
    if let Some(addr) = opts.metrics {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| AgentError::Metrics { addr, source })?;
        tracing::info!(%addr, "serving metrics on /metrics");
        let metrics = metrics.clone();
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            metrics::serve(listener, metrics, async move {
                let _ = stop.changed().await;
            })
            .await;
            Ok(())
        });
    }
    {
        let api = api.clone();
        let id = opts.node.clone();
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(HEARTBEAT) => {}
                    _ = stop.changed() => return Ok(()),
                }
                if let Err(e) = register::register(&api, &id).await {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
            }
        });
    }
    {
        let api = api.clone();
        let opts = opts.clone();
        let stop = stop_rx.clone();
        let metrics = metrics.clone();
        tasks.spawn(async move { follow_nodes(api, opts, metrics, stop).await });
    }
    if opts.masquerade || opts.anti_spoofing {
        let api = api.clone();
        let metrics = metrics.clone();
        let stop = stop_rx.clone();
        let (node, cluster, spoofing) = (
            opts.node.name.clone(),
            opts.cluster.clone(),
            opts.anti_spoofing,
        );
        let masquerade = opts.masquerade;
        tasks.spawn(async move {
            firewall::run(api, node, cluster, masquerade, spoofing, metrics, stop).await
        });
    }
    if opts.service_proxy {
        if let Some(proxy) = proxy_options(&opts) {
            let api = api.clone();
            let stop = stop_rx.clone();
            let pm = metrics.proxy.clone();
            tasks.spawn(async move {
                podnet_proxy::run::run(api, proxy, pm, stop)
                    .await
                    .map_err(|e| AgentError::Runtime(format!("service proxy: {e}")))
            });
        }
    }
    if let Some(cfg) = opts.runtime.clone() {
        let api = api.clone();
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            podnet_runtime::run(api, cfg, async move {
                let _ = stop.changed().await;
            })
            .await
            .map_err(|e| AgentError::Runtime(e.to_string()))
        });
    }
    tokio::select! {
        _ = shutdown => {}
        Some(res) = tasks.join_next() => {
            if let Ok(Err(e)) = res {
                tracing::error!(error = %e, "agent task failed");
                let _ = stop_tx.send(true);
                return Err(e);
            }
        }
    }
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Watches Nodes: writes the CNI config once this node has a pod CIDR, and keeps the
/// routing state to every other node (see `reconcile`). The informer runs in its own
/// task so that a burst of events (100 nodes added at once) is drained into one
/// reconcile.
async fn follow_nodes(
    api: Api,
    opts: AgentOptions,
    metrics: Arc<metrics::Metrics>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), AgentError> {
    let applier = if opts.routing {
        Some(apply::Applier::new(podnet_linux::Handle::current()?))
    } else {
        None
    };
    let mut rec = reconcile::Reconciler::new(
        api.clone(),
        opts.node.name.clone(),
        opts.node.ip,
        opts.cluster.clone(),
        applier,
        opts.cni.clone(),
        metrics,
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let informer = tokio::spawn(async move {
        let mut informer = Informer::new(api, Kind::Node, None);
        loop {
            if tx.send(informer.next().await).is_err() {
                return;
            }
        }
    });
    let _abort = AbortOnDrop(informer);
    let mut next_full = tokio::time::Instant::now() + reconcile::RESYNC;
    loop {
        let wake = if rec.last_failed {
            tokio::time::Instant::now() + reconcile::RETRY
        } else {
            next_full
        };
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { return Ok(()) };
                let mut changed = rec.on_event(ev);
                while let Ok(ev) = rx.try_recv() {
                    changed |= rec.on_event(ev);
                }
                if changed {
                    rec.reconcile(false).await?;
                } else {
                    rec.skipped();
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                rec.reconcile(true).await?;
                next_full = tokio::time::Instant::now() + reconcile::RESYNC;
            }
            _ = stop.changed() => return Ok(()),
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The proxy's settings from the agent's: NodePorts on the node's IPv4 address,
/// cluster and service CIDRs from the ClusterConfig. `None` (logged) for an IPv6-only
/// node: the proxy is IPv4-only for now.
fn proxy_options(opts: &AgentOptions) -> Option<podnet_proxy::run::ProxyOptions> {
    use ipnet::IpNet;
    let (std::net::IpAddr::V4(ip), IpNet::V4(cluster_cidr), IpNet::V4(service_cidr)) = (
        opts.node.ip,
        opts.cluster.cluster_cidr,
        opts.cluster.service_cidr,
    ) else {
        tracing::warn!("the service proxy is IPv4-only: not started");
        return None;
    };
    Some(podnet_proxy::run::ProxyOptions {
        node: opts.node.name.clone(),
        node_ips: vec![ip],
        ruleset: podnet_proxy::ruleset::RulesetConfig {
            cluster_cidr,
            service_cidr,
        },
    })
}
