//! The convergence part of `bench-dataplane`: one real `podnet agent` process in a
//! node namespace of its own (embedded store in a temp dir), then N Nodes written to
//! the store at once; measured until the agent's kernel holds all N routes (and, in
//! vxlan mode, N permanent neighbours and N FDB entries), polled over netlink every
//! millisecond. Also the agent's memory (VmHWM, VmRSS).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use podnet_linux::model::{NeighbourState, RouteProtocol, TABLE_MAIN};
use podnet_linux::{netns, Handle};
use podnet_model::config::{ClusterConfig, OverlayMode};
use podnet_model::k8s_openapi::api::core::v1::{Node, NodeAddress, NodeSpec, NodeStatus};
use podnet_model::Object;
use podnet_store::embedded::SqliteStore;
use podnet_store::{Api, Store};

/// One convergence run.
#[derive(Debug, Clone, Copy)]
pub struct Converged {
    /// From the first write until the kernel was complete.
    pub from_first_write: Duration,
    /// From the last write until the kernel was complete.
    pub from_last_write: Duration,
    /// Writing the N Nodes.
    pub writing: Duration,
    pub hwm_kib: u64,
    pub rss_kib: u64,
}

struct Guard {
    names: Vec<String>,
    agent: Option<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut a) = self.agent.take() {
            let _ = a.kill();
            let _ = a.wait();
        }
        for n in &self.names {
            let _ = netns::delete(n);
        }
    }
}

fn peer_node(i: usize) -> Object {
    let mut n = Node::default();
    n.metadata.name = Some(format!("peer-{i:03}"));
    n.metadata.annotations = Some(BTreeMap::from([
        (
            "podnet.io/vtep-mac".to_string(),
            format!("0e:50:ac:12:{:02x}:{:02x}", 1 + i / 250, 1 + i % 250),
        ),
        (
            "podnet.io/public-ip".to_string(),
            format!("172.18.{}.{}", 1 + i / 250, 1 + i % 250),
        ),
    ]));
    n.spec = Some(NodeSpec {
        pod_cidr: Some(format!("10.{}.{}.0/24", 200 + i / 250, 1 + i % 250)),
        ..Default::default()
    });
    n.status = Some(NodeStatus {
        addresses: Some(vec![NodeAddress {
            type_: "InternalIP".into(),
            address: format!("172.18.{}.{}", 1 + i / 250, 1 + i % 250),
        }]),
        ..Default::default()
    });
    Object::Node(n)
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .trim_end_matches(" kB")
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

async fn kernel_counts(h: &Handle, vxlan: bool) -> (usize, usize, usize) {
    let routes = h
        .routes(TABLE_MAIN)
        .await
        .map(|r| {
            r.iter()
                .filter(|r| r.protocol == RouteProtocol(0x50))
                .count()
        })
        .unwrap_or(0);
    if !vxlan {
        return (routes, 0, 0);
    }
    let neigh = h
        .neighbours(Some("podnet.1"))
        .await
        .map(|n| {
            n.iter()
                .filter(|n| n.state == NeighbourState::Permanent)
                .count()
        })
        .unwrap_or(0);
    let fdb = h.fdb("podnet.1").await.map(|f| f.len()).unwrap_or(0);
    (routes, neigh, fdb)
}

/// One run: agent up, `nodes` Nodes written, kernel complete, agent stopped.
pub async fn run(
    podnet: &Path,
    prefix: &str,
    mode: OverlayMode,
    nodes: usize,
) -> anyhow::Result<Converged> {
    if nodes > 250 * 50 {
        bail!("at most 12500 nodes");
    }
    let dir = tempfile::Builder::new()
        .prefix("bench-converge.")
        .tempdir()?;
    let node_ns = format!("{prefix}cv-node");
    let peer_ns = format!("{prefix}cv-peer");
    let mut guard = Guard {
        names: vec![node_ns.clone(), peer_ns.clone()],
        agent: None,
    };
    let ns = netns::create(&node_ns)?;
    let other = netns::create(&peer_ns)?;
    let h = ns.handle()?;
    h.add_veth(
        &podnet_linux::model::VethSpec::new("eth0", "eth0"),
        Some(&other),
    )
    .await?;
    h.add_address("eth0", "172.18.0.2/16".parse()?).await?;
    h.set_up("eth0").await?;
    h.set_up("lo").await?;
    drop(other);

    let db = dir.path().join("state.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db)?);
    let api = Api::new(store);
    let mut cfg = ClusterConfig::default();
    cfg.spec.overlay.mode = mode;
    api.put(&Object::ClusterConfig(cfg)).await?;

    let log = std::fs::File::create(dir.path().join("agent.log"))?;
    let agent = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{node_ns}"))
        .arg("--")
        .arg(podnet)
        .args(["agent", "--store"])
        .arg(&db)
        .args([
            "--node",
            "bench-node",
            "--node-ip",
            "172.18.0.2",
            "--metrics",
            "127.0.0.1:9150",
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting podnet agent")?;
    let pid = agent.id();
    guard.agent = Some(agent);
    // Ready: registered, and (vxlan) its device made by the first reconcile.
    let t0 = Instant::now();
    loop {
        let registered = api
            .get(podnet_model::Kind::Node, None, "bench-node")
            .await?
            .is_some();
        let device = mode == OverlayMode::HostGw || h.link("podnet.1").await?.is_some();
        if registered && device {
            break;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            bail!(
                "the agent did not come up in 20 s: {}",
                std::fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let vxlan = mode == OverlayMode::Vxlan;
    let start = Instant::now();
    for i in 0..nodes {
        api.put(&peer_node(i)).await?;
    }
    let written = Instant::now();
    loop {
        let (r, n, f) = kernel_counts(&h, vxlan).await;
        if r >= nodes && (!vxlan || (n >= nodes && f >= nodes)) {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("not converged after 30 s: {r} routes, {n} neighbours, {f} fdb entries");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let done = Instant::now();
    let out = Converged {
        from_first_write: done - start,
        from_last_write: done - written,
        writing: written - start,
        hwm_kib: status_kib(pid, "VmHWM:"),
        rss_kib: status_kib(pid, "VmRSS:"),
    };
    drop(guard);
    drop(ns);
    Ok(out)
}

/// Deletes every namespace named with `prefix` (best effort).
pub fn cleanup(prefix: &str) {
    if let Ok(names) = netns::list_with_prefix(prefix) {
        for n in names {
            let _ = netns::delete(&n);
        }
    }
}
