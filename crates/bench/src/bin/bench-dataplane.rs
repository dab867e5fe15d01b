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
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use podnet_bench::converge;
use podnet_bench::dataplane::{self, median, percentile};
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
    /// Convergence runs per mode.
    #[arg(long, default_value_t = 5)]
    converge_runs: usize,
}

#[derive(Subcommand)]
enum Helper {
    /// (internal) ping-pong server for one connection.
    PpServer { addr: SocketAddr },
    /// (internal) ping-pong client: prints `p50 p99 mean` in microseconds.
    PpClient { addr: SocketAddr, n: usize },
}

/// One measurement of one path.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    gbps: f64,
    retr: f64,
    p50x: f64,
    p50s: f64,
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

fn iperf(client_ns: &str, server_ns: &str, dst: &str, dur: u64) -> anyhow::Result<(f64, f64)> {
    let mut server = Command::new("timeout")
        .args([&(dur + 30).to_string(), "ip", "netns", "exec", server_ns])
        .args([
            "taskset", "-c", "1", "iperf3", "-s", "-1", "-B", dst, "-p", "5201",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(500));
    let o = Command::new("timeout")
        .args([&(dur + 25).to_string(), "ip", "netns", "exec", client_ns])
        .args([
            "taskset", "-c", "0", "iperf3", "-c", dst, "-p", "5201", "-t",
        ])
        .arg(dur.to_string())
        .arg("-J")
        .output()?;
    let _ = server.kill();
    let _ = server.wait();
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).with_context(|| {
        format!(
            "iperf3 {client_ns} -> {dst}: {}",
            String::from_utf8_lossy(&o.stderr)
        )
    })?;
    let end = &j["end"];
    let bps = end["sum_received"]["bits_per_second"]
        .as_f64()
        .with_context(|| format!("iperf3 {client_ns} -> {dst}: {j}"))?;
    Ok((
        bps / 1e9,
        end["sum_sent"]["retransmits"].as_f64().unwrap_or(0.0),
    ))
}

fn rr(
    me: &Path,
    client_ns: &str,
    server_ns: &str,
    dst: &str,
    n: usize,
    server_cpu: u8,
) -> anyhow::Result<f64> {
    let addr = format!("{dst}:5301");
    let mut server = Command::new("timeout")
        .args([
            "200",
            "ip",
            "netns",
            "exec",
            server_ns,
            "taskset",
            "-c",
            &server_cpu.to_string(),
        ])
        .arg(me)
        .args(["pp-server", &addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    // Wait for "listening" (bounded by the server's own accept timeout).
    if let Some(out) = server.stdout.as_mut() {
        let mut b = [0u8; 10];
        let _ = std::io::Read::read(out, &mut b);
    }
    let o = Command::new("timeout")
        .args([
            "180", "ip", "netns", "exec", client_ns, "taskset", "-c", "0",
        ])
        .arg(me)
        .args(["pp-client", &addr, &n.to_string()])
        .output()?;
    let _ = server.kill();
    let _ = server.wait();
    let text = String::from_utf8_lossy(&o.stdout);
    let p50 = text
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .with_context(|| {
            format!(
                "ping-pong {client_ns} -> {dst}: {text} {}",
                String::from_utf8_lossy(&o.stderr)
            )
        })?;
    Ok(p50)
}

fn measure(
    me: &Path,
    a: &Args,
    client_ns: &str,
    server_ns: &str,
    dst: &str,
) -> anyhow::Result<Figures> {
    let (gbps, retr) = iperf(client_ns, server_ns, dst, a.dur)?;
    let p50x = rr(me, client_ns, server_ns, dst, a.nrt, 1)?;
    let p50s = rr(me, client_ns, server_ns, dst, a.nrt, 0)?;
    Ok(Figures {
        gbps,
        retr,
        p50x,
        p50s,
    })
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
        Some(Helper::PpServer { addr }) => {
            dataplane::pp_server(*addr, Duration::from_secs(20))?;
            return Ok(());
        }
        Some(Helper::PpClient { addr, n }) => {
            let mut lat = dataplane::pp_client(*addr, *n)?;
            lat.sort_by(|x, y| x.total_cmp(y));
            let mean = lat.iter().sum::<f64>() / lat.len().max(1) as f64;
            println!(
                "{:.1} {:.1} {mean:.1}",
                percentile(&lat, 50.0),
                percentile(&lat, 99.0)
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
    let mut paths: Vec<(String, String, String, String)> = dataplane::paths(prefix)
        .into_iter()
        .map(|p| (p.name.to_string(), p.client_ns, p.server_ns, p.dst))
        .collect();
    for (lab, label) in [(&hg, "host-gw"), (&vx, "vxlan")] {
        let (na, _) = lab.pod("a")?;
        let (nb, ib) = lab.pod("b")?;
        let (nc, ic) = lab.pod("c")?;
        paths.push((
            format!("podnet same node ({label} lab)"),
            na.clone(),
            nb,
            ib,
        ));
        paths.push((format!("podnet across nodes, {label}"), na, nc, ic));
    }
    let mut results: BTreeMap<String, Vec<Figures>> = BTreeMap::new();
    let mut anchors: Vec<BTreeMap<String, f64>> = Vec::new();
    for run in 1..=a.runs {
        eprintln!("== round {run}/{} (load {})", a.runs, loadavg());
        if !a.no_anchor {
            match anchor(repo, a) {
                Ok(m) => anchors.push(m),
                Err(e) => eprintln!("  the anchor script failed this round (left out): {e:#}"),
            }
        }
        // Alternate the order between rounds so that drift in load hits all alike.
        let order: Vec<usize> = if run % 2 == 1 {
            (0..paths.len()).collect()
        } else {
            (0..paths.len()).rev().collect()
        };
        for i in order {
            let (name, c, s, d) = &paths[i];
            let f = measure(me, a, c, s, d)?;
            eprintln!(
                "  {name}: {:.2} Gbit/s (retr {}), RR p50 x {:.1} us, s {:.1} us",
                f.gbps, f.retr, f.p50x, f.p50s
            );
            results.entry(name.clone()).or_default().push(f);
        }
    }
    let med = |name: &str| -> Figures {
        let v = results.get(name).cloned().unwrap_or_default();
        Figures {
            gbps: median(&v.iter().map(|f| f.gbps).collect::<Vec<_>>()),
            retr: median(&v.iter().map(|f| f.retr).collect::<Vec<_>>()),
            p50x: median(&v.iter().map(|f| f.p50x).collect::<Vec<_>>()),
            p50s: median(&v.iter().map(|f| f.p50s).collect::<Vec<_>>()),
        }
    };
    println!(
        "\n## data plane: medians of {} rounds, iperf3 {} s single stream, ping-pong {} x 64 B",
        a.runs, a.dur, a.nrt
    );
    println!("| path | Gbit/s | retr | RR p50 x (us) | RR p50 s (us) | vs | throughput ratio | p50 x ratio | p50 s ratio |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let pairs = [
        ("podnet same node (host-gw lab)", "hb-bridge"),
        ("podnet same node (vxlan lab)", "hb-bridge"),
        ("podnet across nodes, host-gw", "hb-hostgw"),
        ("podnet across nodes, vxlan", "hb-vxlan"),
    ];
    for name in ["hb-bridge", "hb-hostgw", "hb-vxlan"] {
        let f = med(name);
        println!(
            "| {name} | {:.2} | {:.0} | {:.1} | {:.1} | | | | |",
            f.gbps, f.retr, f.p50x, f.p50s
        );
    }
    for (name, base) in pairs {
        let (f, b) = (med(name), med(base));
        println!(
            "| {name} | {:.2} | {:.0} | {:.1} | {:.1} | {base} | {:.3} | {:.3} | {:.3} |",
            f.gbps,
            f.retr,
            f.p50x,
            f.p50s,
            f.gbps / b.gbps,
            f.p50x / b.p50x,
            f.p50s / b.p50s
        );
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
            let f = med(name);
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
