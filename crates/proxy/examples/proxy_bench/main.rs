//! The service proxy benchmark (issue 6, "Must show"): N ClusterIP services with two
//! endpoints each, measured in network namespaces of its own, side by side with the
//! kube-proxy-style anchors of `../shared/bench/anchors/` (02 iptables, 03 nftables).
//!
//! Run as root:
//!   cargo build --release -p podnet-proxy --examples
//!   target/release/examples/proxy_bench [N ...] [--nconn=2000] [--no-anchors]
//!                                       [--anchors=../shared/bench/anchors]
//! (N default: 1000 10000 50000.)
//!
//! Per N a child process (this program, `--one N`) creates its own namespaces
//! `pnpb-<pid>-{node,cli,be}` (client 10.244.1.2 -> node with the proxy's table ->
//! server 10.244.2.10/.11:8080), and measures
//!  (a) full sync: building the engine state (upserts), `plan()` and `Engine::commit`
//!      (user space), `Nft::commit` of the full table (kernel); a full resync (table
//!      replaced in one transaction) once more;
//!  (b) N >= 10000: one endpoint change of the last service, one new service, a scale of
//!      the last service between 2 and 3 endpoints, and one new service with nine
//!      endpoints (the verdict-map path), each
//!      plan + commit, median of `--reps` (20) repetitions, with the batch size;
//!  (c) N >= 10000: first-connection latency (TCP connect, and connect+close) to the
//!      last-added service's ClusterIP, versus a direct connection to the endpoint
//!      measured before any rules exist in the node namespace (no table, no conntrack);
//!      client and server are child processes pinned with `taskset` (CLI_CPU=0,
//!      SRV_CPU=1, as the anchors);
//!  (d) VmRSS / VmHWM of the child after its engine is built and committed.
//!
//! A child per N keeps the memory figure to exactly one engine's state. Every loop is
//! bounded in count and time; the namespaces are removed by a guard (also on panic), and
//! the parent removes those of a child that died. Nothing touches the root namespace.

// a program that reports on stdout and logs progress on stderr
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use podnet_linux::nft::Nft;
use podnet_linux::{netns, NetNs};
use podnet_model::k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use podnet_model::k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort, EndpointSlice,
};
use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use podnet_model::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use podnet_proxy::engine::Engine;
use podnet_proxy::ruleset::RulesetConfig;

mod anchors;
mod net;
mod objects;
mod util;

use anchors::*;
use net::*;
use objects::*;
use util::*;

const PFX: &str = "pnpb";
const CLI_CPU: &str = "0";
const SRV_CPU: &str = "1";
const SERVER: &str = "10.244.2.10:8080";

type Res = Result<(), Box<dyn std::error::Error>>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("--server") => server(&args[1..]),
        Some("--client") => client(&args[1..]),
        Some("--one") => one(&args[1..]),
        _ => parent(&args),
    };
    if let Err(e) = r {
        eprintln!("proxy_bench: {e}");
        std::process::exit(1);
    }
}

// ------------------------------------------------------------------ helpers

/// `--one N NCONN REPS`: prints one `PODNET key=value ...` line.
fn one(args: &[String]) -> Res {
    let n: u32 = args.first().ok_or("--one N")?.parse()?;
    let nconn: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let reps: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(20);
    let mut out: Vec<(String, String)> = vec![("n".into(), n.to_string())];
    let mut put = |k: &str, v: String| {
        eprintln!("  [podnet n={n}] {k}={v}");
        out.push((k.to_string(), v));
    };
    let mut g = Guard {
        names: vec![],
        server: None,
    };
    let (node, cli, _be) = topology(&mut g)?;
    let latency = n >= 10_000;

    // (c) the direct baseline, before any rule exists in the node namespace
    if latency {
        let r = run_client(&cli, nconn, &[format!("direct={SERVER}")])?;
        for (k, v) in &r["direct"] {
            put(&format!("norules_direct_{k}"), v.clone());
        }
    }

    // input objects: not timed as part of the sync (an informer hands them over),
    // built in chunks of 1000 between the timed upserts, so the process never holds
    // all N objects at once and its memory figures are the engine's
    let node_ns = NetNs::open(&node)?;
    let nft = node_ns.run(Nft::new)??;
    let cfg = RulesetConfig {
        cluster_cidr: "10.244.0.0/16".parse()?,
        service_cidr: "10.96.0.0/12".parse()?,
    };
    put("rss_start_kb", status_kb("VmRSS:").to_string());

    // (a) full sync (wall time, and this thread's CPU time: the machine is shared)
    let (mut t_objects, mut c_objects) = (Duration::ZERO, Duration::ZERO);
    let mut t_build = Duration::ZERO;
    let c0 = cpu();
    let t = Instant::now();
    let mut engine = Engine::new(cfg, "node", vec![]);
    t_build += t.elapsed();
    const CHUNK: u32 = 1000;
    for start in (0..n).step_by(CHUNK as usize) {
        let (t, c) = (Instant::now(), cpu());
        let mut objs = Vec::with_capacity(CHUNK as usize);
        for i in start..n.min(start + CHUNK) {
            let eps = if i == 0 || i == n - 1 {
                real(10)
            } else {
                let b = Ipv4Addr::new(10, 245, 0, 0);
                [ip_add(b, 2 * i), ip_add(b, 2 * i + 1)]
            };
            objs.push(objects(i, &eps));
        }
        t_objects += t.elapsed();
        c_objects += cpu() - c;
        let t = Instant::now();
        for (s, sl) in objs {
            engine.upsert_service(s);
            engine.upsert_slice(sl);
        }
        t_build += t.elapsed();
    }
    put("objects_ms", format!("{:.1}", ms(t_objects)));
    // the CPU time of building the objects is not the sync's
    let c0 = c0 + c_objects;
    let c_build = cpu();
    put("rss_built_kb", status_kb("VmRSS:").to_string());
    let t = Instant::now();
    let planned = engine.plan();
    let t_plan = t.elapsed();
    let c_plan = cpu();
    put("rss_planned_kb", status_kb("VmRSS:").to_string());
    if !planned.full {
        return Err("the first plan is not a full replace".into());
    }
    let t = Instant::now();
    let sent = nft.commit(&planned.batch)?;
    let t_kernel = t.elapsed();
    let c_kernel = cpu();
    let t = Instant::now();
    engine.commit(planned);
    let t_applied = t.elapsed();
    let c_applied = cpu();
    put("build_cpu_ms", format!("{:.1}", ms(c_build - c0)));
    put("plan_cpu_ms", format!("{:.1}", ms(c_plan - c_build)));
    put("kernel_cpu_ms", format!("{:.1}", ms(c_kernel - c_plan)));
    put(
        "engine_commit_cpu_ms",
        format!("{:.1}", ms(c_applied - c_kernel)),
    );
    put("full_cpu_ms", format!("{:.1}", ms(c_applied - c0)));
    put("build_ms", format!("{:.1}", ms(t_build)));
    put("plan_ms", format!("{:.1}", ms(t_plan)));
    put("engine_commit_ms", format!("{:.1}", ms(t_applied)));
    put(
        "user_ms",
        format!("{:.1}", ms(t_build + t_plan + t_applied)),
    );
    put("kernel_ms", format!("{:.1}", ms(t_kernel)));
    put(
        "full_ms",
        format!("{:.1}", ms(t_build + t_plan + t_kernel + t_applied)),
    );
    put("full_msgs", sent.messages.to_string());
    put("full_bytes", sent.bytes.to_string());
    // (d) memory: exactly this engine (its reduced inputs, fragments, desired state)
    put("vmrss_kb", status_kb("VmRSS:").to_string());
    put("vmhwm_kb", status_kb("VmHWM:").to_string());

    // (c) through the rules: the last-added service, and direct with the table loaded
    if latency {
        let last = format!("svc_last={}:80", cluster_ip(n - 1));
        let r = run_client(&cli, nconn, &[last, format!("direct={SERVER}")])?;
        for (name, kv) in &r {
            for (k, v) in kv {
                put(&format!("{name}_{k}"), v.clone());
            }
        }
    }

    // a full resync: the whole table replaced in one transaction
    engine.request_full_resync();
    let c0 = cpu();
    let t = Instant::now();
    let planned = engine.plan();
    let t_plan = t.elapsed();
    let t = Instant::now();
    nft.commit(&planned.batch)?;
    let t_kernel = t.elapsed();
    engine.commit(planned);
    put("resync_cpu_ms", format!("{:.1}", ms(cpu() - c0)));
    put("resync_plan_ms", format!("{:.1}", ms(t_plan)));
    put("resync_kernel_ms", format!("{:.1}", ms(t_kernel)));

    // (b) one endpoint change of the last service; one new service
    if latency {
        let (ns, name) = (format!("ns{}", (n - 1) / 100), format!("svc{}", n - 1));
        for (what, mut change) in [
            (
                "change",
                Box::new(|e: &mut Engine, r: usize| {
                    let eps = if r.is_multiple_of(2) {
                        real(11)
                    } else {
                        real(10)
                    };
                    e.upsert_slice(slice(&ns, &name, &eps));
                }) as Box<dyn FnMut(&mut Engine, usize)>,
            ),
            (
                "newsvc",
                Box::new(|e: &mut Engine, r: usize| {
                    let i = n + 10 + r as u32;
                    let b = Ipv4Addr::new(10, 246, 0, 0);
                    let (s, sl) = objects(i, &[ip_add(b, 2 * i), ip_add(b, 2 * i + 1)]);
                    e.upsert_service(s);
                    e.upsert_slice(sl);
                }),
            ),
            // a scale of the last service between 2 and 3 endpoints (its backend
            // count changes; an even number of repetitions ends at 2)
            (
                "scale",
                Box::new(|e: &mut Engine, r: usize| {
                    let mut eps = real(10).to_vec();
                    if r.is_multiple_of(2) {
                        eps.push(Ipv4Addr::new(10, 244, 2, 12));
                    }
                    e.upsert_slice(slice(&ns, &name, &eps));
                }),
            ),
            // a new service with nine endpoints: more than the NAT hooks balance
            // directly, so it adds a `goto` element to the `frontends` verdict map
            (
                "newsvc9",
                Box::new(|e: &mut Engine, r: usize| {
                    let i = n + 100 + r as u32;
                    let b = Ipv4Addr::new(10, 247, 0, 0);
                    let eps: Vec<Ipv4Addr> = (0..9).map(|k| ip_add(b, 16 * i + k)).collect();
                    let (s, sl) = objects(i, &eps);
                    e.upsert_service(s);
                    e.upsert_slice(sl);
                }),
            ),
        ] {
            let (mut plan, mut kern, mut tot) = (vec![], vec![], vec![]);
            let mut sizes = (0, 0);
            for r in 0..reps {
                change(&mut engine, r);
                let t = Instant::now();
                let planned = engine.plan();
                let tp = t.elapsed();
                let sent = nft.commit(&planned.batch)?;
                let tk = t.elapsed() - tp;
                engine.commit(planned);
                let tt = t.elapsed();
                plan.push(ms(tp));
                kern.push(ms(tk));
                tot.push(ms(tt));
                sizes = (sent.messages, sent.bytes);
            }
            put(
                &format!("{what}_plan_ms"),
                format!("{:.3}", median(&mut plan)),
            );
            put(
                &format!("{what}_kernel_ms"),
                format!("{:.3}", median(&mut kern)),
            );
            put(
                &format!("{what}_total_ms"),
                format!("{:.3}", median(&mut tot)),
            );
            put(
                &format!("{what}_total_max_ms"),
                format!("{:.3}", tot.iter().cloned().fold(0.0, f64::max)),
            );
            put(&format!("{what}_msgs"), sizes.0.to_string());
            put(&format!("{what}_bytes"), sizes.1.to_string());
        }
        // still served after the changes (an even number of changes: back to .10/.11)
        let r = run_client(&cli, 50, &[format!("svc_last={}:80", cluster_ip(n - 1))])?;
        put("post_check_fail", r["svc_last"]["fail"].clone());
    }
    drop(engine);
    drop(g);
    let line: Vec<String> = out.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("PODNET {}", line.join(" "));
    Ok(())
}

// ------------------------------------------------------------------ parent

type Kv = BTreeMap<String, String>;

fn parent(args: &[String]) -> Res {
    let mut ns: Vec<u32> = vec![];
    let mut nconn = 2000usize;
    let mut reps = 20usize;
    let mut anchors = true;
    let mut dir = "../shared/bench/anchors".to_string();
    for a in args {
        if let Some(v) = a.strip_prefix("--nconn=") {
            nconn = v.parse()?;
        } else if let Some(v) = a.strip_prefix("--reps=") {
            reps = v.parse()?;
        } else if let Some(v) = a.strip_prefix("--anchors=") {
            dir = v.to_string();
        } else if a == "--no-anchors" {
            anchors = false;
        } else {
            ns.push(a.parse().map_err(|_| format!("not a count: {a}"))?);
        }
    }
    if ns.is_empty() {
        ns = vec![1000, 10_000, 50_000];
    }
    if !nix::unistd::geteuid().is_root() {
        return Err("run as root".into());
    }
    remove_stale_namespaces(None);
    let load_start = loadavg();
    eprintln!(
        "# proxy_bench: N={ns:?} nconn={nconn} reps={reps}; load at start {load_start}; kernel {}",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    );
    let exe = std::env::current_exe()?;
    let mut pod: BTreeMap<u32, Kv> = BTreeMap::new();
    for &n in &ns {
        let mut child = Command::new(&exe)
            .args([
                "--one",
                &n.to_string(),
                &nconn.to_string(),
                &reps.to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()?;
        let pid = child.id();
        let mut text = String::new();
        child.stdout.take().unwrap().read_to_string(&mut text)?;
        let ok = wait_bounded(&mut child, Duration::from_secs(900))?;
        remove_stale_namespaces(Some(pid));
        if !ok {
            return Err(format!("podnet at N={n} failed").into());
        }
        pod.insert(n, parse_result(&text, "PODNET "));
    }
    let load_mid = loadavg();
    let (a2, a3) = if anchors {
        (
            run_anchor(&format!("{dir}/02_kubeproxy_iptables.sh"), nconn, &[]),
            run_anchor(&format!("{dir}/03_kubeproxy_nftables.sh"), nconn, &[]),
        )
    } else {
        (Kv::new(), Kv::new())
    };
    let load_end = loadavg();
    println!(
        "\nproxy_bench: N={ns:?} nconn={nconn} reps={reps} cli_cpu={CLI_CPU} srv_cpu={SRV_CPU}; \
         load avg start {load_start} / after podnet {load_mid} / end {load_end}\n"
    );
    table(&pod, &a2, &a3);
    Ok(())
}
