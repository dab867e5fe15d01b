//! Foundation benchmark: apply N Services and 2N Pods on the embedded and the etcd
//! backend, side by side; time until every ClusterIP and EndpointSlice is allocated by a
//! `podnet controller` process, that process's peak memory, and watch-event latency
//! across processes. Prints a markdown table for docs/benchmarks.md.
//!
//! Everything stays on this machine: the embedded store is a temp file, etcd listens on
//! loopback ports, and every loop is bounded in count and time.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use futures::StreamExt;
use podnet_bench::objects;
use podnet_store::testing::EtcdServer;
use podnet_store::{Api, EventKind, Store};

#[derive(Parser)]
struct Args {
    /// Number of Services (each gets 2 pods).
    #[arg(long, default_value_t = 10_000)]
    services: usize,
    /// Backends to measure, comma-separated.
    #[arg(long, default_value = "embedded,etcd", value_delimiter = ',')]
    backends: Vec<String>,
    /// The podnet binary (default: next to this one).
    #[arg(long)]
    podnet: Option<PathBuf>,
    /// Watch-latency events to measure.
    #[arg(long, default_value_t = 2_000)]
    watch_events: usize,
    /// Internal: act as the watch-latency writer for STORE_URL.
    #[arg(long, hide = true)]
    writer: Option<String>,
}

struct Row {
    backend: String,
    apply: Duration,
    allocated: Duration,
    peak_rss_kib: u64,
    p50: Duration,
    p99: Duration,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(url) = &args.writer {
        return rt.block_on(writer(url, args.watch_events));
    }
    let podnet = match &args.podnet {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("podnet"),
    };
    if !podnet.exists() {
        bail!(
            "podnet binary not found at {} (build it: cargo build --release -p podnet-cli)",
            podnet.display()
        );
    }
    let mut rows = Vec::new();
    for backend in &args.backends {
        eprintln!(
            "== {backend}: {} services, {} pods",
            args.services,
            args.services * 2
        );
        rows.push(rt.block_on(run_backend(backend, &args, &podnet))?);
    }
    print_table(&args, &rows);
    Ok(())
}

async fn run_backend(backend: &str, args: &Args, podnet: &PathBuf) -> anyhow::Result<Row> {
    let dir = tempfile::tempdir()?;
    let mut _etcd = None;
    let url = match backend {
        "embedded" => dir.path().join("state.db").display().to_string(),
        "etcd" => {
            let e = EtcdServer::start();
            let u = e.url();
            _etcd = Some(e);
            u
        }
        other => bail!("unknown backend {other:?}: expected embedded or etcd"),
    };
    let store: Arc<dyn Store> = podnet_store::open(&url).await?;
    let api = Api::new(store.clone());

    let mut controller = Killer(
        Command::new(podnet)
            .args(["controller", "--id", "bench", "--store", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_leader(&store).await?;

    let from = store.revision().await? + 1;
    let n = args.services;
    let tracker = tokio::spawn(track(store.clone(), from, n));
    let loaded = objects::cluster(n);
    let start = Instant::now();
    podnet_client::apply(&api, loaded, Vec::new())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let apply = start.elapsed();
    let allocated = tokio::time::timeout(Duration::from_secs(300), tracker)
        .await
        .context("allocation did not finish within 300 s")???;
    let allocated = allocated.duration_since(start);
    let peak_rss_kib = peak_rss(controller.0.id())?;
    let (p50, p99) = watch_latency(&url, store.clone(), args.watch_events).await?;
    controller.kill();
    Ok(Row {
        backend: backend.to_string(),
        apply,
        allocated,
        peak_rss_kib,
        p50,
        p99,
    })
}

/// Waits (bounded) until some controller holds the leader lease.
async fn wait_leader(store: &Arc<dyn Store>) -> anyhow::Result<()> {
    for _ in 0..200 {
        if store
            .get("/registry/podnet.io/leases/controller")
            .await?
            .is_some()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("no controller became leader within 10 s")
}

/// Follows the store until every Service has a ClusterIP and EndpointSlices hold 2
/// ready endpoints per Service; returns the instant that happened.
async fn track(store: Arc<dyn Store>, from: i64, services: usize) -> anyhow::Result<Instant> {
    let mut w = store.watch("/registry/", from).await?;
    let mut with_ip: HashSet<String> = HashSet::new();
    let mut ready_per_slice: HashMap<String, usize> = HashMap::new();
    let mut ready_total = 0usize;
    while let Some(ev) = w.next().await {
        let ev = ev?;
        let key = ev.kv.key.clone();
        if key.starts_with("/registry/services/specs/") && ev.kind == EventKind::Put {
            let v: serde_json::Value = serde_json::from_slice(&ev.kv.value)?;
            if v["spec"]["clusterIP"]
                .as_str()
                .is_some_and(|ip| !ip.is_empty())
            {
                with_ip.insert(key);
            }
        } else if key.starts_with("/registry/endpointslices/") {
            let now = if ev.kind == EventKind::Put {
                let v: serde_json::Value = serde_json::from_slice(&ev.kv.value)?;
                v["endpoints"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|e| e["conditions"]["ready"] == true)
                            .count()
                    })
                    .unwrap_or(0)
            } else {
                0
            };
            let before = ready_per_slice.insert(key, now).unwrap_or(0);
            ready_total = ready_total + now - before;
        }
        if with_ip.len() >= services && ready_total >= 2 * services {
            return Ok(Instant::now());
        }
    }
    bail!("watch ended early")
}

/// Peak resident memory (VmHWM) of a process, in KiB.
fn peak_rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc status")
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// The writer process: `count` puts, one every 2 ms, each carrying its send time.
async fn writer(url: &str, count: usize) -> anyhow::Result<()> {
    let store = podnet_store::open(url).await?;
    for i in 0..count {
        store
            .put(
                &format!("/bench/latency/{i:06}"),
                now_nanos().to_string().into_bytes(),
                0,
            )
            .await?;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// Latency from a put in another process to the event arriving here: (p50, p99).
async fn watch_latency(
    url: &str,
    store: Arc<dyn Store>,
    count: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let from = store.revision().await? + 1;
    let mut w = store.watch("/bench/latency/", from).await?;
    let mut child = Killer(
        Command::new(std::env::current_exe()?)
            .args(["--writer", url, "--watch-events", &count.to_string()])
            .spawn()?,
    );
    let mut lat = Vec::with_capacity(count);
    let deadline = Instant::now() + Duration::from_secs(120);
    while lat.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(ev)) = tokio::time::timeout(left, w.next()).await else {
            bail!(
                "watch-latency run incomplete: {} of {count} events",
                lat.len()
            );
        };
        let ev = ev?;
        let sent: u128 = std::str::from_utf8(&ev.kv.value)?.parse()?;
        lat.push(Duration::from_nanos(
            (now_nanos().saturating_sub(sent)) as u64,
        ));
    }
    let _ = child.0.wait();
    child.kill();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    Ok((pct(0.50), pct(0.99)))
}

struct Killer(Child);

impl Killer {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Killer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn print_table(args: &Args, rows: &[Row]) {
    println!(
        "\n{} Services + {} Pods; controller as a separate process\n",
        args.services,
        args.services * 2
    );
    println!("| backend | apply | all ClusterIPs + EndpointSlices (from apply start) | of which after apply | controller peak RSS | watch latency p50 | p99 |");
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.2} s | {:.2} s | {:.2} s | {:.1} MB | {} | {} |",
            r.backend,
            r.apply.as_secs_f64(),
            r.allocated.as_secs_f64(),
            r.allocated.saturating_sub(r.apply).as_secs_f64(),
            r.peak_rss_kib as f64 / 1024.0,
            ms(r.p50),
            ms(r.p99)
        );
    }
    if let (Some(a), Some(b)) = (
        rows.iter().find(|r| r.backend == "embedded"),
        rows.iter().find(|r| r.backend == "etcd"),
    ) {
        println!(
            "| etcd / embedded | {:.2}x | {:.2}x | {:.2}x | {:.2}x | {:.2}x | {:.2}x |",
            b.apply.as_secs_f64() / a.apply.as_secs_f64(),
            b.allocated.as_secs_f64() / a.allocated.as_secs_f64(),
            b.allocated.saturating_sub(b.apply).as_secs_f64()
                / a.allocated.saturating_sub(a.apply).as_secs_f64(),
            b.peak_rss_kib as f64 / a.peak_rss_kib as f64,
            b.p50.as_secs_f64() / a.p50.as_secs_f64(),
            b.p99.as_secs_f64() / a.p99.as_secs_f64(),
        );
    }
    println!("\nGoals: embedded fully allocated < 5 s; watch p99 < 50 ms; controller < 100 MB.");
}
