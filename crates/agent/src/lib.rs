//! `podnet agent`: one per node, running in the node's network namespace. It registers
//! the Node and keeps its heartbeat, waits for the node's pod CIDR and writes the
//! node's CNI configuration, routes every other node's pod CIDR (host-gw), and in the
//! lab runs the node runtime (the kubelet role).
#![forbid(unsafe_code)]

pub mod cniconf;
pub mod ipam_reconcile;
pub mod register;
pub mod routes;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use podnet_model::{Kind, Object};
use podnet_store::{Api, Informer, InformerEvent};

pub use register::NodeIdentity;

/// How often the Node's Ready condition is refreshed.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub node: NodeIdentity,
    /// Where the node's CNI conflist is written; `None`: leave CNI config alone.
    pub cni: Option<CniOptions>,
    /// Route other nodes' pod CIDRs via their node IPs.
    pub host_gw_routes: bool,
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
        tasks.spawn(async move { follow_nodes(api, opts, stop).await });
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
/// host-gw routes to every other node.
async fn follow_nodes(
    api: Api,
    opts: AgentOptions,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), AgentError> {
    let handle = if opts.host_gw_routes {
        Some(podnet_linux::Handle::current()?)
    } else {
        None
    };
    let mut informer = Informer::new(api, Kind::Node, None);
    let mut nodes: std::collections::BTreeMap<String, routes::Peer> = Default::default();
    let mut written: Option<IpNet> = None;
    loop {
        let ev = tokio::select! {
            ev = informer.next() => ev,
            _ = stop.changed() => return Ok(()),
        };
        match ev {
            InformerEvent::Restarted(all) => {
                nodes.clear();
                for o in all {
                    if let Object::Node(n) = o {
                        if let Some(p) = routes::peer_of(&n) {
                            nodes.insert(p.name.clone(), p);
                        }
                    }
                }
            }
            InformerEvent::Applied(Object::Node(n)) => {
                let name = n.metadata.name.clone().unwrap_or_default();
                match routes::peer_of(&n) {
                    Some(p) => nodes.insert(name, p),
                    None => nodes.remove(&name),
                };
            }
            InformerEvent::Deleted(r, _) => {
                nodes.remove(&r.name);
            }
            InformerEvent::Applied(_) => continue,
        }
        if let (Some(cni), Some(me)) = (&opts.cni, nodes.get(&opts.node.name)) {
            if written != Some(me.pod_cidr) {
                let list = cniconf::conflist(&cni.chain, me.pod_cidr, 1500, &cni.ipam_dir);
                cniconf::write(&cni.conf_dir, &list).map_err(|source| AgentError::CniConfig {
                    dir: cni.conf_dir.clone(),
                    source,
                })?;
                tracing::info!(pod_cidr = %me.pod_cidr, dir = %cni.conf_dir.display(), "CNI configuration written");
                written = Some(me.pod_cidr);
            }
        }
        if let Some(h) = &handle {
            let peers: Vec<routes::Peer> = nodes.values().cloned().collect();
            let desired = routes::plan(&opts.node.name, &peers);
            match routes::apply(h, &desired).await {
                Ok((0, 0)) => {}
                Ok((added, removed)) => tracing::info!(added, removed, "pod routes updated"),
                Err(e) => tracing::warn!(error = %e, "updating pod routes failed"),
            }
        }
    }
}
