//! Data plane and agent benchmark (issue 5), side by side in one run:
//! - iperf3 single-stream throughput and TCP request/response latency (64-byte
//!   ping-pong, p50) pod-to-pod on one node, across nodes with host-gw and across
//!   nodes with vxlan, in two real podnet labs (`podnet lab up`, 2 nodes, podnet's CNI
//!   plugin), against hand-built paths of the same shape (`podnet_bench::dataplane`)
//!   and the shared anchor script (`../shared/bench/anchors/04_dataplane_throughput.sh`,
//!   run in the same run), as ratios;
//! - convergence of N Nodes added to the store at once on one agent, and the agent's
//!   memory.
//!
//! Pinning as in the anchor: iperf3 client on CPU 0, server on CPU 1; ping-pong twice,
//! "x" (client CPU 0, server CPU 1) and "s" (both on CPU 0). Every namespace is made
//! by this run (prefix `pnbd<pid>-`, labs `bd{h,v}<pid>`) and removed at the end, also
//! on failure; every load is bounded (iperf3 -t, ping-pong count, timeouts).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use podnet_bench::dataplane::{
    self, measure_pair, median, percentile, Figures, NetPath, PAIR_BATCH,
};
use podnet_bench::{attribution, converge};
use podnet_model::config::OverlayMode;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    helper: Option<Helper>,
    /// The podnet binary (default: next to this one).
    #[arg(long)]
    podnet: Option<PathBuf>,
    /// The repository root.
    #[arg(long)]
    repo: Option<PathBuf>,
    /// Rounds of the data plane measurements (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// iperf3 seconds per measurement.
    #[arg(long, default_value_t = 10)]
    dur: u64,
    /// Ping-pong round trips per measurement.
    #[arg(long, default_value_t = 10000)]
    nrt: usize,
    /// Skip the shared anchor script.
    #[arg(long)]
    no_anchor: bool,
    /// Skip the data plane part.
    #[arg(long)]
    no_dataplane: bool,
    /// Nodes added at once in the convergence part (0: skip it).
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Instead of the comparison with podnet: the attribution of the per-packet cost
    /// to each netfilter piece, on twin hand-built paths (see `podnet_bench::attribution`).
    #[arg(long)]
    attribution: bool,
    /// Convergence runs per mode.
    #[arg(long, default_value_t = 5)]
    converge_runs: usize,
}

#[derive(Subcommand)]
enum Helper {
    /// (internal) ping-pong server for one connection.
    #[command(name = "pp-server")]
    Server { addr: SocketAddr },
    /// (internal) paired ping-pong: connects to `a_addr` from namespace `a_ns` and to
    /// `b_addr` from `b_ns`, then alternates batches of round trips between the two;
    /// prints `p50a p50b` in microseconds.
    #[command(name = "pp-pair")]
    Pair {
        a_ns: String,
        a_addr: SocketAddr,
        b_ns: String,
        b_addr: SocketAddr,
        /// Round trips per connection.
        n: usize,
    },
}

fn sh(cmd: &str) -> anyhow::Result<String> {
    let o = Command::new("sh").args(["-c", cmd]).output()?;
    if !o.status.success() {
        bail!("{cmd}: {}", String::from_utf8_lossy(&o.stderr));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A podnet lab of 2 nodes in `mode` with three pause pods: a, b on node-1, c on node-2.
struct PodnetLab {
    podnet: PathBuf,
    repo: PathBuf,
    root: tempfile::TempDir,
    name: String,
}

impl PodnetLab {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.podnet);
        c.args(args)
            .env("PODNET_LAB_ROOT", self.root.path())
            .env(
                "PODNET_STORE",
                self.root.path().join(&self.name).join("state.db"),
            )
            .current_dir(&self.repo);
        c
    }

    fn up(podnet: &Path, repo: &Path, name: &str, mode: &str) -> anyhow::Result<PodnetLab> {
        let lab = PodnetLab {
            podnet: podnet.to_path_buf(),
            repo: repo.to_path_buf(),
            root: tempfile::Builder::new()
                .prefix("bench-dataplane.")
                .tempdir()?,
            name: name.to_string(),
        };
        let file = lab.root.path().join("lab.yaml");
        std::fs::write(&file, format!(
            "apiVersion: podnet.io/v1alpha1\nkind: Lab\nmetadata: {{name: {name}}}\nspec:\n  nodes: 2\n  cni: podnet\n  hosts: {{external: false, internet: false}}\n  cluster: {{overlay: {{mode: {mode}}}}}\n"
        ))?;
        let mut pods = String::new();
        for (p, n) in [("a", 1), ("b", 1), ("c", 2)] {
            pods.push_str(&format!(
                "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {p}, namespace: default}}\nspec:\n  nodeName: node-{n}\n  containers:\n  - {{name: pause, image: registry.k8s.io/pause:3.10}}\n"
            ));
        }
        let manifest = lab.root.path().join("pods.yaml");
        std::fs::write(&manifest, pods)?;
        let o = lab
            .cmd(&[
                "lab",
                "up",
                "-f",
                file.to_str().unwrap_or_default(),
                "--timeout",
                "60",
                manifest.to_str().unwrap_or_default(),
            ])
            .output()?;
        if !o.status.success() {
            bail!(
                "lab up {name}: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(lab)
    }

    /// (netns, IP) of a pod.
    fn pod(&self, name: &str) -> anyhow::Result<(String, String)> {
        let o = self.cmd(&["get", "po", name, "-o", "json"]).output()?;
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
        let uid: String = v["metadata"]["uid"]
            .as_str()
            .context("pod uid")?
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect();
        let ip = v["status"]["podIP"].as_str().context("pod IP")?.to_string();
        Ok((format!("pn-{}-pod-{uid}", self.name), ip))
    }
}

impl Drop for PodnetLab {
    fn drop(&mut self) {
        let _ = self.cmd(&["lab", "down", "--name", &self.name]).output();
    }
}

struct HandBuilt(String);

impl Drop for HandBuilt {
    fn drop(&mut self) {
        converge::cleanup(&self.0);
    }
}

fn anchor(repo: &Path, a: &Args) -> anyhow::Result<BTreeMap<String, f64>> {
    let script = repo.join("../shared/bench/anchors/04_dataplane_throughput.sh");
    let o = Command::new("bash")
        .arg(&script)
        .env("DUR", a.dur.to_string())
        .env("NRT", a.nrt.to_string())
        .env("TOPOS", "bridge vxlan")
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    let text = String::from_utf8_lossy(&o.stdout);
    eprint!("{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .with_context(|| {
            format!(
                "no RESULT line from the anchor: {}",
                String::from_utf8_lossy(&o.stderr)
            )
        })?;
    Ok(line
        .split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect())
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    match &a.helper {
        Some(Helper::Server { addr }) => {
            dataplane::pp_server(*addr, Duration::from_secs(20))?;
            return Ok(());
        }
        Some(Helper::Pair {
            a_ns,
            a_addr,
            b_ns,
            b_addr,
            n,
        }) => {
            let connect = |ns: &str, addr: SocketAddr| -> anyhow::Result<std::net::TcpStream> {
                let netns = podnet_linux::netns::NetNs::open(ns)?;
                Ok(netns.run(move || {
                    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                })??)
            };
            let mut conns = [connect(a_ns, *a_addr)?, connect(b_ns, *b_addr)?];
            let batches = n.div_ceil(PAIR_BATCH).max(1);
            let mut lat = dataplane::pp_pair(&mut conns, batches, PAIR_BATCH)?;
            for l in &mut lat {
                l.sort_by(|x, y| x.total_cmp(y));
            }
            println!(
                "{:.1} {:.1}",
                percentile(&lat[0], 50.0),
                percentile(&lat[1], 50.0)
            );
            return Ok(());
        }
        None => {}
    }
    let me = std::env::current_exe()?;
    let podnet = a
        .podnet
        .clone()
        .unwrap_or_else(|| me.with_file_name("podnet"))
        .canonicalize()
        .context("the podnet binary (build: cargo build --release -p podnet-cli)")?;
    let repo = a
        .repo
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .canonicalize()?;
    for tool in ["iperf3", "taskset", "ip", "bridge", "nsenter"] {
        sh(&format!("command -v {tool}"))
            .with_context(|| format!("{tool} is missing (scripts/install-deps.sh)"))?;
    }
    println!("# bench-dataplane {}", sh("date -u +%FT%TZ")?.trim());
    println!(
        "# machine: {} cores, {}, kernel {}",
        sh("nproc")?.trim(),
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")?.trim(),
        sh("uname -r")?.trim()
    );
    println!("# load at start: {}", loadavg());
    let prefix = format!("pnbd{}-", std::process::id() % 100_000);

    if a.attribution {
        let _guard = HandBuilt(prefix.clone());
        converge::cleanup(&prefix);
        println!("# load at start: {}", loadavg());
        attribution::run(
            &me,
            &format!("{prefix}o-"),
            &format!("{prefix}v-"),
            a.runs,
            a.nrt,
            a.dur,
        )?;
        println!("# load at end: {}", loadavg());
        return Ok(());
    }
    if !a.no_dataplane {
        dataplane_part(&a, &me, &podnet, &repo, &prefix)?;
    }
    if a.nodes > 0 {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        println!(
            "\n## convergence: {} nodes added to the store at once, one agent",
            a.nodes
        );
        println!("| mode | run | written in | kernel complete after first write | after last write | agent VmHWM | agent VmRSS |");
        println!("|---|---|---|---|---|---|---|");
        let mut summary = Vec::new();
        for (mode, label) in [
            (OverlayMode::Vxlan, "vxlan"),
            (OverlayMode::HostGw, "host-gw"),
        ] {
            let mut firsts = Vec::new();
            let mut hwms = Vec::new();
            for run in 1..=a.converge_runs {
                let c = rt.block_on(converge::run(&podnet, &prefix, mode, a.nodes))?;
                println!(
                    "| {label} | {run} | {:.0} ms | {:.0} ms | {:.0} ms | {:.1} MiB | {:.1} MiB |",
                    c.writing.as_secs_f64() * 1e3,
                    c.from_first_write.as_secs_f64() * 1e3,
                    c.from_last_write.as_secs_f64() * 1e3,
                    c.hwm_kib as f64 / 1024.0,
                    c.rss_kib as f64 / 1024.0
                );
                firsts.push(c.from_first_write.as_secs_f64() * 1e3);
                hwms.push(c.hwm_kib as f64 / 1024.0);
            }
            summary.push((
                label,
                median(&firsts),
                hwms.iter().copied().fold(0.0, f64::max),
            ));
        }
        for (label, ms, hwm) in summary {
            println!(
                "{label}: convergence median {ms:.0} ms (goal < 1000 ms: {}), agent peak RSS {hwm:.1} MiB (goal < 30 MiB: {})",
                if ms < 1000.0 { "met" } else { "NOT met" },
                if hwm < 30.0 { "met" } else { "NOT met" }
            );
        }
        converge::cleanup(&prefix);
    }
    println!("# load at end: {}", loadavg());
    Ok(())
}

fn dataplane_part(
    a: &Args,
    me: &Path,
    podnet: &Path,
    repo: &Path,
    prefix: &str,
) -> anyhow::Result<()> {
    let _hb = HandBuilt(prefix.to_string());
    converge::cleanup(prefix);
    sh(&format!(
        "bash -c '{}'",
        dataplane::build_script(prefix).replace('\'', "'\\''")
    ))
    .context("building the hand-built paths")?;
    let id = std::process::id() % 10_000;
    let hg = PodnetLab::up(podnet, repo, &format!("bdh{id}"), "host-gw")?;
    let vx = PodnetLab::up(podnet, repo, &format!("bdv{id}"), "vxlan")?;
    for lab in [&hg, &vx] {
        let tables = sh(&format!(
            "ip netns exec pn-{}-node-1 nft list tables",
            lab.name
        ))
        .unwrap_or_default()
        .replace('\n', ", ");
        let rules = sh(&format!(
            "ip netns exec pn-{}-node-1 nft list ruleset | grep -c 'drop\\|masquerade'",
            lab.name
        ))
        .unwrap_or_default();
        println!(
            "# lab {} node-1 nftables: {tables} ({} masquerade/drop rules)",
            lab.name,
            rules.trim()
        );
    }
    let hb: BTreeMap<String, NetPath> = dataplane::paths(prefix)
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    // Each podnet path with the hand-built path of the same shape, measured together.
    let mut pairs: Vec<(NetPath, NetPath)> = Vec::new();
    for (lab, label) in [(&hg, "host-gw"), (&vx, "vxlan")] {
        let (na, _) = lab.pod("a")?;
        let (nb, ib) = lab.pod("b")?;
        let (nc, ic) = lab.pod("c")?;
        let same = NetPath {
            name: format!("podnet same node ({label} lab)"),
            client_ns: na.clone(),
            server_ns: nb,
            dst: ib,
        };
        let across = NetPath {
            name: format!("podnet across nodes, {label}"),
            client_ns: na,
            server_ns: nc,
            dst: ic,
        };
        let cross_hb = if label == "vxlan" {
            "hb-vxlan"
        } else {
            "hb-hostgw"
        };
        pairs.push((same, hb["hb-bridge"].clone()));
        pairs.push((across, hb[cross_hb].clone()));
    }
    let mut results: Vec<Vec<(Figures, Figures)>> = vec![Vec::new(); pairs.len()];
    let mut anchors: Vec<BTreeMap<String, f64>> = Vec::new();
    for run in 1..=a.runs {
        eprintln!("== round {run}/{} (load {})", a.runs, loadavg());
        if !a.no_anchor {
            match anchor(repo, a) {
                Ok(m) => anchors.push(m),
                Err(e) => eprintln!("  the anchor script failed this round (left out): {e:#}"),
            }
        }
        for (i, (p, h)) in pairs.iter().enumerate() {
            // Alternate which of the two goes first, so that drift hits both alike.
            let (fp, fh) = measure_pair(me, p, h, a.dur, a.nrt, (run + i) % 2 == 0)?;
            eprintln!(
                "  {} / {}: {:.2} / {:.2} Gbit/s, RR p50 x {:.1} / {:.1} us, s {:.1} / {:.1} us",
                p.name, h.name, fp.gbps, fh.gbps, fp.p50x, fh.p50x, fp.p50s, fh.p50s
            );
            results[i].push((fp, fh));
        }
    }
    let med = |v: &[Figures]| -> Figures {
        let m = |f: fn(&Figures) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
        Figures {
            gbps: m(|f| f.gbps),
            retr: m(|f| f.retr),
            p50x: m(|f| f.p50x),
            p50s: m(|f| f.p50s),
        }
    };
    println!(
        "\n## data plane: medians of {} rounds, iperf3 {} s single stream, paired ping-pong {} x 64 B per path",
        a.runs, a.dur, a.nrt
    );
    println!("Each podnet path is measured with its hand-built twin in the same minute: iperf3 one after the other, the ping-pong interleaved in batches of {PAIR_BATCH} over two open connections.\n");
    println!("| podnet path | Gbit/s | retr | RR p50 x (us) | RR p50 s (us) | hand-built | Gbit/s | RR p50 x | RR p50 s | throughput ratio | p50 x ratio | p50 s ratio |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    // Every round's figures by path name (a hand-built path serves two pairs).
    let mut by_path: BTreeMap<String, Vec<Figures>> = BTreeMap::new();
    let mut ranges = Vec::new();
    for ((p, h), rounds) in pairs.iter().zip(&results) {
        let fp: Vec<Figures> = rounds.iter().map(|r| r.0).collect();
        let fh: Vec<Figures> = rounds.iter().map(|r| r.1).collect();
        by_path.entry(h.name.clone()).or_default().extend(&fh);
        by_path.entry(p.name.clone()).or_default().extend(&fp);
        let (mp, mh) = (med(&fp), med(&fh));
        println!(
            "| {} | {:.2} | {:.0} | {:.1} | {:.1} | {} | {:.2} | {:.1} | {:.1} | {:.3} | {:.3} | {:.3} |",
            p.name, mp.gbps, mp.retr, mp.p50x, mp.p50s, h.name, mh.gbps, mh.p50x, mh.p50s,
            mp.gbps / mh.gbps, mp.p50x / mh.p50x, mp.p50s / mh.p50s
        );
        let span = |f: fn(&(Figures, Figures)) -> f64| {
            let v: Vec<f64> = rounds.iter().map(f).collect();
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("{lo:.3} - {hi:.3}")
        };
        ranges.push(format!(
            "| {} | {} | {} | {} |",
            p.name,
            span(|r| r.0.gbps / r.1.gbps),
            span(|r| r.0.p50x / r.1.p50x),
            span(|r| r.0.p50s / r.1.p50s)
        ));
    }
    println!("\nPer-round ratios (podnet / hand-built, each round's pair), lowest - highest:\n");
    println!("| podnet path | throughput | p50 x | p50 s |");
    println!("|---|---|---|---|");
    for r in ranges {
        println!("{r}");
    }
    if !anchors.is_empty() {
        let am = |k: &str| {
            median(
                &anchors
                    .iter()
                    .filter_map(|m| m.get(k).copied())
                    .collect::<Vec<_>>(),
            )
        };
        println!("\n## against the shared anchor script (same rounds; its ping-pong is python, so latency ratios mix tools)");
        println!("| path | Gbit/s | anchor | anchor Gbit/s | ratio | RR p50 x / anchor | RR p50 s / anchor |");
        println!("|---|---|---|---|---|---|---|");
        for (name, t) in [
            ("hb-bridge", "bridge"),
            ("podnet same node (host-gw lab)", "bridge"),
            ("hb-vxlan", "vxlan"),
            ("podnet across nodes, vxlan", "vxlan"),
        ] {
            let Some(v) = by_path.get(name) else {
                continue;
            };
            let f = med(v);
            let g = am(&format!("{t}_gbps"));
            println!(
                "| {name} | {:.2} | {t} | {g:.2} | {:.3} | {:.1} / {:.1} | {:.1} / {:.1} |",
                f.gbps,
                f.gbps / g,
                f.p50x,
                am(&format!("{t}_rrx_p50_us")),
                f.p50s,
                am(&format!("{t}_rrs_p50_us"))
            );
        }
    }
    drop(vx);
    drop(hg);
    Ok(())
}
