//! Lab benchmark: runs the real `podnet lab up` / `lab down` and measures, against the
//! lab issue's goals (it names no external baseline, so the ratios are measured/goal):
//! - the quickstart (`examples/quickstart`): time to all pods Ready (< 10 s) and until
//!   `lab up` returns (after `lab check`), 5 runs;
//! - 3 nodes x 50 pods (generated: pause pods and agnhost netexec pods with a tcpSocket
//!   readiness probe, half pinned with `spec.nodeName`, half left to the scheduler):
//!   time to all pods Ready (< 30 s), 3 runs;
//! - `lab down` after every up (< 3 s);
//! - VmRSS / VmHWM of every podnet process while the large lab is up: the controller,
//!   each agent, and the built-in image processes (`podnet image ...`).
//!
//! Everything stays inside the namespaces the lab makes: the lab root is a temp dir
//! (`PODNET_LAB_ROOT`), the lab name is unique to this run (`bench<pid>`), every wait is
//! bounded, and a guard runs `lab down` also when a step fails.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use podnet_bench::lab::{lab_file, netexec_count, pods_manifest};

#[derive(Parser)]
struct Args {
    /// The CNI plugins of every lab: `podnet` (podnet's own) or `reference` (Debian's
    /// bridge + host-local).
    #[arg(long, default_value = "podnet", value_parser = ["podnet", "reference"])]
    cni: String,
    /// The podnet binary (default: next to this one).
    #[arg(long)]
    podnet: Option<PathBuf>,
    /// The repository root (holds examples/quickstart).
    #[arg(long)]
    repo: Option<PathBuf>,
    /// Runs of the quickstart lab.
    #[arg(long, default_value_t = 5)]
    quickstart_runs: usize,
    /// Runs of the large lab.
    #[arg(long, default_value_t = 3)]
    scale_runs: usize,
    /// Nodes of the large lab.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Pods of the large lab (a fifth of them agnhost netexec, the rest pause).
    #[arg(long, default_value_t = 150)]
    pods: usize,
    /// `lab up --timeout` for the large lab, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

const QUICKSTART_READY_GOAL: f64 = 10.0;
const SCALE_READY_GOAL: f64 = 30.0;
const DOWN_GOAL: f64 = 3.0;
const PODS_STEP: &str = "waiting for every pod to be Ready";

/// The running `lab up`, for the interrupt handler (0: none).
static UP_PID: AtomicU32 = AtomicU32::new(0);
/// Set by the interrupt handler, which then cleans up and exits the process.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// After an interrupt, the handler owns the cleanup: wait (bounded) for it to exit.
fn yield_to_interrupt() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_secs(120));
    }
}

/// One `lab up` + `lab down`.
struct Run {
    /// From spawning `lab up` until it printed `lab X is up in` (all pods Ready).
    ready: Duration,
    /// Until `lab up` returned (summary printed and `lab check` ran).
    wall: Duration,
    /// `lab up`'s own step timings, as it printed them.
    steps: Vec<(String, Duration)>,
    /// `lab check`'s "N passed, M failed" line.
    check: String,
    down: Duration,
    /// Namespaces of the lab left after `lab down` (should be 0).
    leftover: usize,
    mem: Option<Memory>,
}

#[derive(Clone, Copy, Default)]
struct Mem {
    rss_kib: u64,
    hwm_kib: u64,
    /// RssAnon: the process's own memory, without the shared podnet executable.
    anon_kib: u64,
}

struct Memory {
    /// (role, memory) of the processes in the lab's pid directory.
    recorded: Vec<(String, Mem)>,
    /// Every `podnet image ...` process in one of the lab's namespaces.
    images: Vec<Mem>,
    /// The per-container `sh` shims the runtime wraps around each container.
    shims: Vec<Mem>,
}

struct Scenario {
    name: String,
    goal: f64,
    runs: Vec<Run>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
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
    let podnet = podnet.canonicalize()?;
    let repo = match &args.repo {
        Some(r) => r.clone(),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."),
    }
    .canonicalize()?;
    let lab_yaml = repo.join("examples/quickstart/lab.yaml");
    if !lab_yaml.exists() {
        bail!("{} not found (pass --repo)", lab_yaml.display());
    }
    if args.nodes == 0 || args.pods == 0 {
        bail!("--nodes and --pods must be at least 1");
    }
    let root = tempfile::Builder::new().prefix("bench-lab.").tempdir()?;
    let name = format!("bench{}", std::process::id());
    let bench = Bench {
        podnet: &podnet,
        repo: &repo,
        root: root.path(),
        name: &name,
        cni: &args.cni,
    };

    on_interrupt(&podnet, &repo, root.path(), &name)?;

    let mut scenarios = Vec::new();
    if args.quickstart_runs > 0 {
        let mut runs = Vec::new();
        for i in 1..=args.quickstart_runs {
            eprintln!("== quickstart, run {i}/{}", args.quickstart_runs);
            runs.push(bench.run(
                &[
                    "-f".into(),
                    "examples/quickstart/lab.yaml".into(),
                    "--timeout".into(),
                    "60".into(),
                    "examples/quickstart/manifests/".into(),
                ],
                Duration::from_secs(120),
                false,
            )?);
        }
        scenarios.push(Scenario {
            name: "quickstart (3 nodes, 5 pods)".into(),
            goal: QUICKSTART_READY_GOAL,
            runs,
        });
    }
    if args.scale_runs > 0 {
        let gen = root.path().join("gen");
        std::fs::create_dir_all(gen.join("manifests"))?;
        std::fs::write(gen.join("lab.yaml"), lab_file(&name, args.nodes, &args.cni))?;
        std::fs::write(
            gen.join("manifests/pods.yaml"),
            pods_manifest(args.nodes, args.pods),
        )?;
        let mut runs = Vec::new();
        for i in 1..=args.scale_runs {
            eprintln!(
                "== {} nodes x {} pods, run {i}/{}",
                args.nodes,
                args.pods.div_ceil(args.nodes),
                args.scale_runs
            );
            runs.push(bench.run(
                &[
                    "-f".into(),
                    gen.join("lab.yaml").display().to_string(),
                    "--timeout".into(),
                    args.timeout.to_string(),
                    gen.join("manifests").display().to_string(),
                ],
                Duration::from_secs(args.timeout * 2 + 60),
                true,
            )?);
        }
        scenarios.push(Scenario {
            name: format!(
                "{} nodes, {} pods ({} pause + {} netexec)",
                args.nodes,
                args.pods,
                args.pods - netexec_count(args.pods),
                netexec_count(args.pods)
            ),
            goal: SCALE_READY_GOAL,
            runs,
        });
    }
    print!("{}", report(&scenarios));
    Ok(())
}

/// On Ctrl-C or SIGTERM: `lab down`, remove the temp lab root, exit 130 (the guards'
/// Drop does not run when a signal ends the process).
fn on_interrupt(podnet: &Path, repo: &Path, root: &Path, name: &str) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (podnet, repo, root, name) = (
        podnet.to_path_buf(),
        repo.to_path_buf(),
        root.to_path_buf(),
        name.to_string(),
    );
    std::thread::spawn(move || {
        rt.block_on(async {
            let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        });
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("interrupted: removing lab {name}");
        // Stop a running `lab up` first, so that it makes nothing after `lab down`.
        let up = UP_PID.load(Ordering::SeqCst);
        if up != 0 {
            let _ = Command::new("kill")
                .args(["-KILL", &up.to_string()])
                .status();
        }
        let bench = Bench {
            podnet: &podnet,
            repo: &repo,
            root: &root,
            name: &name,
            cni: "podnet",
        };
        // A second pass catches what agents made while the first one ran.
        for attempt in 1..=2 {
            match bench.down() {
                Ok(_) => break,
                Err(e) if attempt == 2 => eprintln!("cleaning up: {e:#}"),
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
        let _ = std::fs::remove_dir_all(&root);
        std::process::exit(130);
    });
    Ok(())
}

struct Bench<'a> {
    podnet: &'a Path,
    repo: &'a Path,
    root: &'a Path,
    name: &'a str,
    cni: &'a str,
}

impl Bench<'_> {
    fn podnet(&self) -> Command {
        let mut c = Command::new(self.podnet);
        c.current_dir(self.repo)
            .env("PODNET_LAB_ROOT", self.root)
            .stdin(Stdio::null());
        c
    }

    /// One `lab up` (bounded by `limit`), memory if asked, then `lab down`.
    fn run(&self, up_args: &[String], limit: Duration, measure_mem: bool) -> anyhow::Result<Run> {
        let mut guard = Down {
            bench: self,
            done: false,
        };
        let mut cmd = self.podnet();
        cmd.args(["lab", "up", "--name", self.name, "--cni", self.cni])
            .args(up_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = cmd.spawn().context("starting podnet lab up")?;
        UP_PID.store(child.id(), Ordering::SeqCst);
        let stderr = child.stderr.take().context("no stderr pipe")?;
        let mut stdout = child.stdout.take().context("no stdout pipe")?;
        let err_lines = std::thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .map(|l| (start.elapsed(), l))
                .collect::<Vec<_>>()
        });
        let out_text = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let status = loop {
            if let Some(st) = child.try_wait()? {
                break st;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                bail!("`lab up` did not return within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let wall = start.elapsed();
        UP_PID.store(0, Ordering::SeqCst);
        yield_to_interrupt();
        let err_lines = err_lines.join().unwrap_or_default();
        let out_text = out_text.join().unwrap_or_default();
        let ready = err_lines
            .iter()
            .find(|(_, l)| l.contains(" is up in "))
            .map(|(t, _)| *t);
        let Some(ready) = ready else {
            let tail: Vec<&str> = err_lines.iter().map(|(_, l)| l.as_str()).collect();
            bail!(
                "`lab up` failed ({status}) before all pods were Ready:\n{}",
                tail.join("\n")
            );
        };
        let steps = err_lines.iter().filter_map(|(_, l)| step(l)).collect();
        let check = out_text
            .lines()
            .rev()
            .find(|l| l.contains(" passed, "))
            .unwrap_or("no check result")
            .to_string();
        if !status.success() {
            eprintln!("   `lab up` exited with {status} after the pods were Ready: {check}");
        }
        let mem = if measure_mem {
            Some(self.memory()?)
        } else {
            None
        };
        let down = guard.down()?;
        let leftover = lab_namespaces(self.name).len();
        eprintln!(
            "   all pods Ready {:.2} s, returned {:.2} s, down {:.2} s; {check}",
            ready.as_secs_f64(),
            wall.as_secs_f64(),
            down.as_secs_f64()
        );
        Ok(Run {
            ready,
            wall,
            steps,
            check,
            down,
            leftover,
            mem,
        })
    }

    fn down(&self) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let mut child = self
            .podnet()
            .args(["lab", "down", "--name", self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting podnet lab down")?;
        let status = loop {
            if let Some(st) = child.try_wait()? {
                break st;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                bail!("`lab down --name {}` did not return within 60 s", self.name);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let took = start.elapsed();
        if !status.success() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            bail!("`lab down --name {}` failed ({status}): {err}", self.name);
        }
        Ok(took)
    }

    /// Memory of the lab's processes, read now (the lab is up).
    fn memory(&self) -> anyhow::Result<Memory> {
        let pids = self.root.join(self.name).join("pids");
        let mut recorded = Vec::new();
        for e in std::fs::read_dir(&pids).with_context(|| format!("reading {}", pids.display()))? {
            let e = e?;
            let file = e.file_name().to_string_lossy().to_string();
            let Some(role) = file.strip_suffix(".pid") else {
                continue;
            };
            let pid: u32 = std::fs::read_to_string(e.path())?.trim().parse()?;
            // The pid is nsenter's, which execs podnet: the same process.
            if let Some(m) = mem_of(pid) {
                recorded.push((role.to_string(), m));
            }
        }
        recorded.sort_by(|a, b| a.0.cmp(&b.0));
        let netns: Vec<u64> = lab_namespaces(self.name);
        let state = self.root.join(self.name).display().to_string();
        let mut images = Vec::new();
        let mut shims = Vec::new();
        for e in std::fs::read_dir("/proc")?.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let argv: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).to_string())
                .collect();
            let is_image = argv.len() > 1
                && argv[1] == "image"
                && (Path::new(&argv[0]) == self.podnet
                    || Path::new(&argv[0]).canonicalize().ok().as_deref() == Some(self.podnet));
            let is_shim = argv.iter().any(|a| a == "podnet-shim")
                && argv.iter().any(|a| a.starts_with(&state));
            if !is_image && !is_shim {
                continue;
            }
            if is_image && !in_namespaces(pid, &netns) {
                continue; // another lab's
            }
            if let Some(m) = mem_of(pid) {
                if is_image {
                    images.push(m);
                } else {
                    shims.push(m);
                }
            }
        }
        Ok(Memory {
            recorded,
            images,
            shims,
        })
    }
}

/// Runs `lab down` when dropped, unless it already ran.
struct Down<'a, 'b> {
    bench: &'a Bench<'b>,
    done: bool,
}

impl Down<'_, '_> {
    fn down(&mut self) -> anyhow::Result<Duration> {
        self.done = true;
        self.bench.down()
    }
}

impl Drop for Down<'_, '_> {
    fn drop(&mut self) {
        yield_to_interrupt();
        if !self.done {
            if let Err(e) = self.bench.down() {
                eprintln!("cleaning up: {e:#}");
            }
        }
    }
}

/// `  ✓ waiting for every pod to be Ready (1.28s)` -> (what, 1.28 s).
fn step(line: &str) -> Option<(String, Duration)> {
    let rest = line.trim().strip_prefix("✓ ")?;
    let (what, secs) = rest.rsplit_once(" (")?;
    let secs: f64 = secs.strip_suffix("s)")?.parse().ok()?;
    Some((what.to_string(), Duration::from_secs_f64(secs)))
}

/// The namespace inodes of the lab's namespaces (`/run/netns/pn-<name>-*`).
fn lab_namespaces(name: &str) -> Vec<u64> {
    let prefix = format!("pn-{name}-");
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter_map(|e| std::fs::metadata(e.path()).ok().map(|m| m.ino()))
        .collect()
}

fn in_namespaces(pid: u32, inodes: &[u64]) -> bool {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .ok()
        .and_then(|l| {
            l.to_string_lossy()
                .strip_prefix("net:[")?
                .strip_suffix(']')?
                .parse::<u64>()
                .ok()
        })
        .is_some_and(|ino| inodes.contains(&ino))
}

/// VmRSS and VmHWM of a process, in KiB.
fn mem_of(pid: u32) -> Option<Mem> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some(Mem {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
        anon_kib: field("RssAnon:").unwrap_or(0),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 / 1024.0)
}

fn report(scenarios: &[Scenario]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "\nTimes in seconds; goals from the lab issue (it names no external baseline, so the \
         ratio is measured/goal: < 1 meets the goal).\n"
    );
    let _ = writeln!(
        o,
        "| lab | runs | measure | median | max | goal | median/goal | max/goal |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    for sc in scenarios {
        let secs = |f: &dyn Fn(&Run) -> Duration| -> Vec<f64> {
            sc.runs.iter().map(|r| f(r).as_secs_f64()).collect()
        };
        let rows: [(&str, Vec<f64>, Option<f64>); 4] = [
            (
                "`lab up` to all pods Ready",
                secs(&|r| r.ready),
                Some(sc.goal),
            ),
            (
                "`lab up` returns (+ summary, `lab check`)",
                secs(&|r| r.wall),
                None,
            ),
            (
                "of which summary + `lab check`",
                secs(&|r| r.wall.saturating_sub(r.ready)),
                None,
            ),
            ("`lab down`", secs(&|r| r.down), Some(DOWN_GOAL)),
        ];
        for (what, v, goal) in rows {
            let (m, x) = (median(v.clone()), max(&v));
            let (g, mg, xg) = match goal {
                Some(g) => (
                    format!("< {g:.0}"),
                    format!("{:.2}", m / g),
                    format!("{:.2}", x / g),
                ),
                None => ("—".into(), "—".into(), "—".into()),
            };
            let _ = writeln!(
                o,
                "| {} | {} | {what} | {m:.2} | {x:.2} | {g} | {mg} | {xg} |",
                sc.name,
                sc.runs.len()
            );
        }
    }

    // `lab up`'s own step timings (median per step).
    let _ = writeln!(
        o,
        "\n`lab up`'s own step timings (from its stderr), median over the runs, seconds:\n"
    );
    let _ = write!(o, "| step |");
    for sc in scenarios {
        let _ = write!(o, " {} |", sc.name);
    }
    let _ = write!(o, "\n|---|");
    for _ in scenarios {
        let _ = write!(o, "---|");
    }
    let _ = writeln!(o);
    let mut names: Vec<String> = Vec::new();
    for sc in scenarios {
        for r in &sc.runs {
            for (n, _) in &r.steps {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
        }
    }
    for n in &names {
        let _ = write!(o, "| {n} |");
        for sc in scenarios {
            let v: Vec<f64> = sc
                .runs
                .iter()
                .filter_map(|r| r.steps.iter().find(|(s, _)| s == n))
                .map(|(_, d)| d.as_secs_f64())
                .collect();
            let _ = write!(o, " {:.2} |", median(v));
        }
        let _ = writeln!(o);
    }
    for sc in scenarios {
        let pods: Vec<f64> = sc
            .runs
            .iter()
            .filter_map(|r| r.steps.iter().find(|(s, _)| s == PODS_STEP))
            .map(|(_, d)| d.as_secs_f64())
            .collect();
        let ready: Vec<f64> = sc.runs.iter().map(|r| r.ready.as_secs_f64()).collect();
        let _ = writeln!(
            o,
            "\n{}: waiting for pods is {:.0}% of the time to all pods Ready (median); `lab check`: {}; namespaces left after `lab down`: {}.",
            sc.name,
            100.0 * median(pods) / median(ready),
            sc.runs
                .iter()
                .map(|r| r.check.as_str())
                .collect::<Vec<_>>()
                .join(" / "),
            sc.runs.iter().map(|r| r.leftover).sum::<usize>()
        );
    }

    // Memory, from the last run that measured it.
    for sc in scenarios {
        let Some(mem) = sc.runs.iter().rev().find_map(|r| r.mem.as_ref()) else {
            continue;
        };
        let _ = writeln!(
            o,
            "\nMemory while the lab is up ({}, last run, read right after `lab up` returned):\n",
            sc.name
        );
        let _ = writeln!(
            o,
            "| process | count | VmRSS | VmHWM (peak) | RssAnon (own) |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|");
        for (role, m) in &mem.recorded {
            let _ = writeln!(
                o,
                "| `podnet` {role} | 1 | {} | {} | {} |",
                mb(m.rss_kib),
                mb(m.hwm_kib),
                mb(m.anon_kib)
            );
        }
        for (what, v) in [
            ("`podnet image` (pod containers)", &mem.images),
            ("container shim (`sh`)", &mem.shims),
        ] {
            if v.is_empty() {
                continue;
            }
            let rss: Vec<f64> = v.iter().map(|m| m.rss_kib as f64).collect();
            let hwm: Vec<f64> = v.iter().map(|m| m.hwm_kib as f64).collect();
            let anon: Vec<f64> = v.iter().map(|m| m.anon_kib as f64).collect();
            let _ = writeln!(
                o,
                "| {what}, median | {} | {} | {} | {} |",
                v.len(),
                mb(median(rss.clone()) as u64),
                mb(median(hwm.clone()) as u64),
                mb(median(anon.clone()) as u64)
            );
            let _ = writeln!(
                o,
                "| {what}, max | {} | {} | {} | {} |",
                v.len(),
                mb(max(&rss) as u64),
                mb(max(&hwm) as u64),
                mb(max(&anon) as u64)
            );
            let _ = writeln!(
                o,
                "| {what}, sum | {} | {} | — | {} |",
                v.len(),
                mb(v.iter().map(|m| m.rss_kib).sum()),
                mb(v.iter().map(|m| m.anon_kib).sum())
            );
        }
        let all = || {
            mem.recorded
                .iter()
                .map(|(_, m)| *m)
                .chain(mem.images.iter().copied())
                .chain(mem.shims.iter().copied())
        };
        let _ = writeln!(
            o,
            "| all of the above (RSS counts shared pages once per process) | | {} | — | {} |",
            mb(all().map(|m| m.rss_kib).sum()),
            mb(all().map(|m| m.anon_kib).sum())
        );
    }
    o
}
