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
//!  (b) N >= 10000: one endpoint change of the last service and one new service, each
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

fn sh(args: &[&str]) -> Res {
    let out = Command::new(args[0]).args(&args[1..]).output()?;
    if !out.status.success() {
        return Err(format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// CPU time of the calling thread (user + system, the kernel's work for a netlink
/// commit included: it runs in the sender's context), from its schedstat.
fn cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if !n.is_multiple_of(2) {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0 * sorted.len() as f64).ceil() as usize).max(1) - 1;
    sorted[i.min(sorted.len() - 1)]
}

/// Wait for a child at most `limit`; kill it (by its pid) when it overruns.
fn wait_bounded(child: &mut Child, limit: Duration) -> Result<bool, std::io::Error> {
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(st.success());
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Remove namespaces `pnpb-<pid>-*` whose process is gone (a killed earlier run).
fn remove_stale_namespaces(only_pid: Option<u32>) {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let mut parts = name.splitn(3, '-');
        if parts.next() != Some(PFX) {
            continue;
        }
        let Some(pid) = parts.next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let gone = match only_pid {
            Some(p) => p == pid,
            None => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        };
        if gone {
            let _ = netns::delete(&name);
        }
    }
}

// ------------------------------------------------------------------ server / client

/// `--server ADDR SECONDS`: accept and close, until the deadline.
fn server(args: &[String]) -> Res {
    let addr: SocketAddr = args.first().ok_or("--server ADDR SECS")?.parse()?;
    let secs: u64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(600);
    let l = TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    println!("listening");
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        match l.accept() {
            Ok((s, _)) => drop(s),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_micros(20))
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// `--client NCONN name=ip:port ...`: warm-up 100 each, then interleaved blocks of
/// 250; one line per target: `name n= fail= conn_p50_us= conn_p99_us= cc_p50_us= cc_p99_us=`.
fn client(args: &[String]) -> Res {
    let n: usize = args.first().ok_or("--client NCONN targets")?.parse()?;
    let targets: Vec<(String, SocketAddr)> = args[1..]
        .iter()
        .map(|a| {
            let (k, v) = a.split_once('=').expect("name=ip:port");
            (k.to_string(), v.parse().expect("ip:port"))
        })
        .collect();
    let one = |addr: &SocketAddr| -> Option<(f64, f64)> {
        let t0 = Instant::now();
        let s = TcpStream::connect_timeout(addr, Duration::from_secs(2)).ok()?;
        let t1 = t0.elapsed();
        drop(s);
        let t2 = t0.elapsed();
        Some((t1.as_secs_f64() * 1e6, t2.as_secs_f64() * 1e6))
    };
    for (_, a) in &targets {
        for _ in 0..100 {
            one(a);
        }
    }
    let mut res: Vec<(Vec<f64>, Vec<f64>, usize)> = vec![(vec![], vec![], 0); targets.len()];
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut done = 0;
    while done < n && Instant::now() < deadline {
        let b = 250.min(n - done);
        for (i, (_, a)) in targets.iter().enumerate() {
            for _ in 0..b {
                match one(a) {
                    Some((c, cc)) => {
                        res[i].0.push(c);
                        res[i].1.push(cc);
                    }
                    None => res[i].2 += 1,
                }
            }
        }
        done += b;
    }
    for (i, (name, _)) in targets.iter().enumerate() {
        let (c, cc, fail) = &mut res[i];
        c.sort_by(|a, b| a.total_cmp(b));
        cc.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{name} n={} fail={fail} conn_p50_us={:.1} conn_p99_us={:.1} cc_p50_us={:.1} cc_p99_us={:.1}",
            c.len(),
            pct(c, 50.0),
            pct(c, 99.0),
            pct(cc, 50.0),
            pct(cc, 99.0)
        );
    }
    Ok(())
}

/// Runs the client pinned to CLI_CPU in `ns`; returns name -> (key -> value).
fn run_client(
    ns: &str,
    nconn: usize,
    targets: &[String],
) -> Result<BTreeMap<String, BTreeMap<String, String>>, Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "taskset", "-c", CLI_CPU])
        .arg(&exe)
        .arg("--client")
        .arg(nconn.to_string())
        .args(targets)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out)?;
    if !wait_bounded(&mut child, Duration::from_secs(300))? {
        return Err("latency client failed".into());
    }
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next()?.to_string();
            let kv = w
                .filter_map(|x| x.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Some((name, kv))
        })
        .collect())
}

// ------------------------------------------------------------------ one N

struct Guard {
    names: Vec<String>,
    server: Option<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        for n in &self.names {
            let _ = netns::delete(n);
        }
    }
}

fn topology(g: &mut Guard) -> Result<(String, String, String), Box<dyn std::error::Error>> {
    let id = format!("{PFX}-{}", std::process::id());
    let (node, cli, be) = (
        format!("{id}-node"),
        format!("{id}-cli"),
        format!("{id}-be"),
    );
    for n in [&node, &cli, &be] {
        netns::create(n)?;
        g.names.push(n.clone());
        sh(&["ip", "-n", n, "link", "set", "lo", "up"])?;
    }
    sh(&[
        "ip",
        "netns",
        "exec",
        &node,
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=1",
    ])?;
    for (host, ns, sub, addrs) in [
        ("vc", &cli, 1, &["10.244.1.2/24"][..]),
        (
            "vb",
            &be,
            2,
            &["10.244.2.10/24", "10.244.2.11/24", "10.244.2.12/24"][..],
        ),
    ] {
        sh(&[
            "ip", "-n", &node, "link", "add", host, "type", "veth", "peer", "name", "eth0",
            "netns", ns,
        ])?;
        sh(&[
            "ip",
            "-n",
            &node,
            "addr",
            "add",
            &format!("10.244.{sub}.1/24"),
            "dev",
            host,
        ])?;
        sh(&["ip", "-n", &node, "link", "set", host, "up"])?;
        for a in addrs {
            sh(&["ip", "-n", ns, "addr", "add", a, "dev", "eth0"])?;
        }
        sh(&["ip", "-n", ns, "link", "set", "eth0", "up"])?;
        sh(&[
            "ip",
            "-n",
            ns,
            "route",
            "add",
            "default",
            "via",
            &format!("10.244.{sub}.1"),
        ])?;
    }
    // the server listens on 0.0.0.0:8080 (every endpoint address), pinned to SRV_CPU
    let mut srv = Command::new("ip")
        .args(["netns", "exec", &be, "taskset", "-c", SRV_CPU])
        .arg(std::env::current_exe()?)
        .args(["--server", "0.0.0.0:8080", "900"])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(srv.stdout.take().unwrap()).read_line(&mut line)?;
    g.server = Some(srv);
    if line.trim() != "listening" {
        return Err("server did not start".into());
    }
    Ok((node, cli, be))
}

fn ip_add(base: Ipv4Addr, k: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + k)
}

fn cluster_ip(i: u32) -> Ipv4Addr {
    ip_add(Ipv4Addr::new(10, 96, 0, 10), i)
}

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(ns.to_string()),
        ..Default::default()
    }
}

/// Service `i` (namespace ns<i/100>, name svc<i>, ClusterIP 10.96.0.10+i, port http
/// 80 -> 8080) and its slice with two ready endpoints.
fn objects(i: u32, eps: &[Ipv4Addr]) -> (Service, EndpointSlice) {
    let ns = format!("ns{}", i / 100);
    let name = format!("svc{i}");
    let svc = Service {
        metadata: meta(&ns, &name),
        spec: Some(ServiceSpec {
            cluster_ip: Some(cluster_ip(i).to_string()),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                protocol: Some("TCP".into()),
                target_port: Some(IntOrString::Int(8080)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    (svc, slice(&ns, &name, eps))
}

fn slice(ns: &str, svc: &str, eps: &[Ipv4Addr]) -> EndpointSlice {
    let mut m = meta(ns, &format!("{svc}-x"));
    m.labels = Some(BTreeMap::from([(
        "kubernetes.io/service-name".to_string(),
        svc.to_string(),
    )]));
    EndpointSlice {
        metadata: m,
        address_type: "IPv4".into(),
        endpoints: eps
            .iter()
            .map(|ip| Endpoint {
                addresses: vec![ip.to_string()],
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    ..Default::default()
                }),
                node_name: Some("other".into()),
                ..Default::default()
            })
            .collect(),
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            port: Some(8080),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
    }
}

fn real(last: u8) -> [Ipv4Addr; 2] {
    [
        Ipv4Addr::new(10, 244, 2, last),
        Ipv4Addr::new(10, 244, 2, last + 1),
    ]
}

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

fn parse_result(text: &str, prefix: &str) -> Kv {
    text.lines()
        .rfind(|l| l.starts_with(prefix))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|x| x.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn run_anchor(path: &str, nconn: usize, extra: &[(&str, &str)]) -> Kv {
    eprintln!("# anchor {path} (load {})", loadavg());
    let started = Instant::now();
    let mut cmd = Command::new("bash");
    cmd.arg(path)
        .env("NS", "1000 10000")
        .env("NCONN", nconn.to_string())
        .env("CLI_CPU", CLI_CPU)
        .env("SRV_CPU", SRV_CPU)
        .stdout(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("# anchor {path}: {e}");
            return Kv::new();
        }
    };
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("  | {line}");
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let ok = wait_bounded(&mut child, Duration::from_secs(1200)).unwrap_or(false);
    let text = reader.join().unwrap_or_default();
    eprintln!(
        "# anchor {path}: {} in {:.0} s",
        if ok { "done" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    parse_result(&text, "RESULT ")
}

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

fn num(m: &Kv, k: &str) -> Option<f64> {
    m.get(k)?.parse().ok()
}

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) if x >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
    }
}

fn ratio(p: Option<f64>, a: Option<f64>) -> String {
    match (p, a) {
        (Some(p), Some(a)) if a > 0.0 && p / a < 0.001 => format!("{:.1e}", p / a),
        (Some(p), Some(a)) if a > 0.0 => format!("{:.3}", p / a),
        _ => "-".into(),
    }
}

fn table(pod: &BTreeMap<u32, Kv>, a2: &Kv, a3: &Kv) {
    let p = |n: u32, k: &str| pod.get(&n).and_then(|m| num(m, k));
    println!(
        "| metric | podnet | ipt-legacy (02) | podnet/legacy | iptables-nft (02) | podnet/ipt-nft | kube-proxy nft (03) | podnet/nft |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let row = |name: &str, pv: Option<f64>, l: Option<f64>, i: Option<f64>, f: Option<f64>| {
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            fmt(pv),
            fmt(l),
            ratio(pv, l),
            fmt(i),
            ratio(pv, i),
            fmt(f),
            ratio(pv, f)
        );
    };
    for n in [1000u32, 10_000] {
        if !pod.contains_key(&n) {
            continue;
        }
        row(
            &format!("full load {n} (ms)"),
            p(n, "full_ms"),
            num(a2, &format!("legacy_n{n}_initial_restore_ms")),
            num(a2, &format!("nft_n{n}_initial_restore_ms")),
            num(a3, &format!("nft_n{n}_initial_load_ms")),
        );
        let rs = p(n, "resync_plan_ms")
            .zip(p(n, "resync_kernel_ms"))
            .map(|(a, b)| a + b);
        row(
            &format!("full resync {n} (ms)"),
            rs,
            num(a2, &format!("legacy_n{n}_full_resync_ms")),
            num(a2, &format!("nft_n{n}_full_resync_ms")),
            num(a3, &format!("nft_n{n}_full_resync_ms")),
        );
    }
    let n = 10_000;
    if pod.contains_key(&n) {
        row(
            "one endpoint change 10k (ms; anchors: partial restore / partial tx)",
            p(n, "change_total_ms"),
            num(a2, "legacy_n10000_incr_partial_restore_ms"),
            num(a2, "nft_n10000_incr_partial_restore_ms"),
            num(a3, "nft_n10000_incr_partial_tx_ms"),
        );
        row(
            "one endpoint change 10k vs 03's single map-element update (ms)",
            p(n, "change_total_ms"),
            None,
            None,
            num(a3, "nft_n10000_incr_single_element_ms"),
        );
        row(
            "new service 10k (ms)",
            p(n, "newsvc_total_ms"),
            None,
            None,
            None,
        );
        for q in ["p50", "p99"] {
            row(
                &format!("first connection {q} svc_last 10k (us)"),
                p(n, &format!("svc_last_conn_{q}_us")),
                num(a2, &format!("legacy_n10000_svc_last_conn_{q}_us")),
                num(a2, &format!("nft_n10000_svc_last_conn_{q}_us")),
                num(a3, &format!("nft_n10000_svc_last_conn_{q}_us")),
            );
        }
        for q in ["p50", "p99"] {
            row(
                &format!("direct, no rules {q} (us; each run's own)"),
                p(n, &format!("norules_direct_conn_{q}_us")),
                num(a2, &format!("norules_direct_conn_{q}_us")),
                None,
                num(a3, &format!("norules_direct_conn_{q}_us")),
            );
        }
    }
    // podnet alone, against the goals
    println!("\n| podnet | value | goal | met |\n|---|---|---|---|");
    let goal = |name: &str, v: Option<f64>, g: f64, unit: &str| {
        let met = match v {
            Some(x) if x < g => "yes",
            Some(_) => "NO",
            None => "-",
        };
        println!("| {name} | {} {unit} | < {g} {unit} | {met} |", fmt(v));
    };
    let ms_to_s = |v: Option<f64>| v.map(|x| x / 1e3);
    goal("full sync 10k", ms_to_s(p(10_000, "full_ms")), 1.0, "s");
    goal(
        "full sync 10k, CPU time of the syncing thread",
        ms_to_s(p(10_000, "full_cpu_ms")),
        1.0,
        "s",
    );
    goal("full sync 50k", ms_to_s(p(50_000, "full_ms")), 5.0, "s");
    goal(
        "full sync 50k, CPU time of the syncing thread",
        ms_to_s(p(50_000, "full_cpu_ms")),
        5.0,
        "s",
    );
    goal(
        "one endpoint change 50k (median)",
        p(50_000, "change_total_ms"),
        10.0,
        "ms",
    );
    goal(
        "one new service 50k (median)",
        p(50_000, "newsvc_total_ms"),
        10.0,
        "ms",
    );
    let d = p(50_000, "norules_direct_conn_p99_us");
    let s = p(50_000, "svc_last_conn_p99_us");
    goal(
        "first-connection p99 50k / direct no-rules p99",
        s.zip(d).map(|(s, d)| s / d),
        1.10,
        "x",
    );
    goal(
        "memory 50k (VmRSS)",
        p(50_000, "vmrss_kb").map(|k| k / 1024.0),
        150.0,
        "MB",
    );
    goal(
        "memory 50k (VmHWM, peak incl. the full batch)",
        p(50_000, "vmhwm_kb").map(|k| k / 1024.0),
        150.0,
        "MB",
    );
    println!("\n| podnet per N | build ms | plan ms | engine commit ms | kernel ms | total ms (CPU ms) | msgs | MB sent | resync plan+kernel ms | change plan/kernel/total ms (msgs, bytes) | new svc plan/kernel/total ms (msgs, bytes) | conn p50/p99 us: direct no rules, svc_last, direct with table | VmRSS / VmHWM MB |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (n, m) in pod {
        let g = |k: &str| fmt(num(m, k));
        let mb = |k: &str| fmt(num(m, k).map(|x| x / 1024.0));
        println!(
            "| {n} | {} | {} | {} | {} | {} ({}) | {} | {} | {} + {} | {}/{}/{} ({}, {}) | {}/{}/{} ({}, {}) | {}/{}, {}/{}, {}/{} | {} / {} |",
            g("build_ms"),
            g("plan_ms"),
            g("engine_commit_ms"),
            g("kernel_ms"),
            g("full_ms"),
            g("full_cpu_ms"),
            g("full_msgs"),
            fmt(num(m, "full_bytes").map(|x| x / 1048576.0)),
            g("resync_plan_ms"),
            g("resync_kernel_ms"),
            g("change_plan_ms"),
            g("change_kernel_ms"),
            g("change_total_ms"),
            g("change_msgs"),
            g("change_bytes"),
            g("newsvc_plan_ms"),
            g("newsvc_kernel_ms"),
            g("newsvc_total_ms"),
            g("newsvc_msgs"),
            g("newsvc_bytes"),
            g("norules_direct_conn_p50_us"),
            g("norules_direct_conn_p99_us"),
            g("svc_last_conn_p50_us"),
            g("svc_last_conn_p99_us"),
            g("direct_conn_p50_us"),
            g("direct_conn_p99_us"),
            mb("vmrss_kb"),
            mb("vmhwm_kb"),
        );
    }
}
