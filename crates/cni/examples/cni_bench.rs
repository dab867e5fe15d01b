//! Benchmark: podnet-cni against the reference CNI plugins (bridge + host-local, the
//! anchor `../shared/bench/anchors/01_cni_reference.sh`, variant A), side by side in one
//! run, printed as a table with ratios.
//!
//! ```text
//! cargo build --profile cni -p podnet-cni      # the plugin as shipped
//! cargo build --release -p podnet-cni --examples
//! sudo target/release/examples/cni_bench [NPODS=100] [PAR=8]   # PODNET_CNI=... to override
//! ```
//!
//! Variants: the reference plugins; `podnet`, the standalone plugin (one process
//! does the whole call); `podnet-server`, the `podnet` shim with `podnet-cni serve`
//! running in the node namespace (the node agent's CNI server).
//!
//! Per variant, in a fresh "node" namespace (`pncnib-<pid>-<variant>-node`) with NPODS
//! pod namespaces: the exec floor (VERSION), NPODS sequential ADDs and DELs (latency
//! percentiles), a ping from the first pod to the last, and NPODS ADDs and DELs with
//! PAR in flight (wall time). The timing loop runs inside the node namespace (the
//! program re-executes itself there with `--drive`), so no `ip netns exec` is timed.
//! Everything stays in the namespaces made here; they are deleted at the end, also
//! when the run fails.
//!
//! At the end it counts what leaked: veths left in the node namespace, and addresses
//! still held (host-local's reservation files, podnet's IPAM keys). The table is
//! markdown, with the load average in its caption (the machine may be shared).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use podnet_model::k8s_openapi::api::core::v1::{Node, NodeSpec};
use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use podnet_model::Object;
use serde_json::{json, Value};

const REFERENCE_DIR: &str = "/usr/lib/cni";
const SUBNET: &str = "10.244.1.0/24";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--drive") {
        drive(&args[2..]);
        return;
    }
    let npods: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let par: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(8);
    if let Err(e) = orchestrate(npods, par) {
        eprintln!("cni_bench: {e}");
        std::process::exit(1);
    }
}

/// Deletes the namespaces with its prefix when dropped.
struct Namespaces {
    names: Vec<String>,
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn orchestrate(npods: usize, par: usize) -> Result<(), String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next().map(str::to_string))
        })
        .unwrap_or_default();
    if uid != "0" {
        return Err("must run as root (it creates network namespaces)".into());
    }
    for b in ["bridge", "host-local"] {
        if !Path::new(REFERENCE_DIR).join(b).is_file() {
            return Err(format!(
                "missing {REFERENCE_DIR}/{b} (apt-get install containernetworking-plugins)"
            ));
        }
    }
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    // The plugin as shipped is built with the `cni` profile (target/cni/); the release
    // build next to this program is the fallback.
    let target = me.parent().and_then(Path::parent).and_then(Path::parent);
    let plugin = match std::env::var_os("PODNET_CNI") {
        Some(p) => Some(PathBuf::from(p)),
        None => [
            target.map(|t| t.join("cni").join("podnet-cni")),
            me.parent().and_then(Path::parent).map(|r| r.join("podnet-cni")),
        ]
        .into_iter()
        .flatten()
        .find(|p| p.is_file()),
    }
    .filter(|p| p.is_file())
    .ok_or("podnet-cni not found: build it (cargo build --profile cni -p podnet-cni) or set PODNET_CNI")?;
    eprintln!("cni_bench: podnet-cni is {}", plugin.display());
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;

    // The shim and the plugin as `podnet-cni install` lays them out.
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    sh(&[
        &plugin.display().to_string(),
        "install",
        &bin.display().to_string(),
    ])?;

    let mut results = Vec::new();
    for variant in ["reference", "podnet", "podnet-server"] {
        let prefix = format!("pncnib-{}-{variant}", std::process::id());
        let node = format!("{prefix}-node");
        let mut guard = Namespaces { names: Vec::new() };
        sh(&["ip", "netns", "add", &node])?;
        guard.names.push(node.clone());
        sh(&["ip", "-n", &node, "link", "set", "lo", "up"])?;
        for i in 0..npods {
            let p = format!("{prefix}-p{i:03}");
            sh(&["ip", "netns", "add", &p])?;
            guard.names.push(p);
        }
        let conf = match variant {
            "reference" => {
                let data = tmp.path().join("host-local");
                json!({"cniVersion":"1.0.0","name":"pncnib","type":"bridge","bridge":"cni0",
                    "isGateway":true,"ipMasq":false,"hairpinMode":true,
                    "ipam":{"type":"host-local","dataDir":data,"ranges":[[{"subnet":SUBNET}]],
                        "routes":[{"dst":"0.0.0.0/0"}]}})
            }
            _ => {
                let db = tmp.path().join(format!("{variant}.db"));
                put_node(&db)?;
                json!({"cniVersion":"1.0.0","name":"pncnib","type":"podnet",
                    "store":db,"node":"bench-node","mtu":1500})
            }
        };
        let binary = match variant {
            "reference" => PathBuf::from(REFERENCE_DIR).join("bridge"),
            "podnet" => plugin.clone(),
            _ => bin.join("podnet"),
        };
        // podnet-server: the shim, served by `podnet-cni serve` in the node namespace
        // (what the node agent does); killed before the namespaces go.
        let server = match variant {
            "podnet-server" => Some(Server::start(&node, &bin.join("podnet-cni"))?),
            _ => None,
        };
        let out = Command::new("ip")
            .args(["netns", "exec", &node])
            .arg(&me)
            .arg("--drive")
            .arg(&binary)
            .arg(conf.to_string())
            .arg(&prefix)
            .arg(npods.to_string())
            .arg(par.to_string())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| e.to_string())?;
        drop(server);
        if !out.status.success() {
            return Err(format!("driver for {variant} failed"));
        }
        let mut v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        v["leaked_veths"] = json!(count_veths(&node)?);
        v["leaked_addresses"] = json!(match variant {
            "reference" => count_host_local(&tmp.path().join("host-local"))?,
            _ => count_ipam_keys(&tmp.path().join(format!("{variant}.db")))?,
        });
        results.push((variant, v));
        drop(guard);
    }
    report(npods, par, &results);
    Ok(())
}

/// `podnet-cni serve` in a node namespace; killed (by its pid) when dropped.
struct Server(std::process::Child);

impl Server {
    fn start(node: &str, plugin: &Path) -> Result<Server, String> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", node])
            .arg(plugin)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting the CNI server: {e}"))?;
        // It logs one line once it listens.
        let mut line = String::new();
        let stderr = child.stderr.take().ok_or("the server's stderr")?;
        let mut reader = std::io::BufReader::new(stderr);
        std::io::BufRead::read_line(&mut reader, &mut line).map_err(|e| e.to_string())?;
        if !line.contains("serving CNI requests") {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the CNI server did not start: {line}"));
        }
        // keep draining its log so that it never blocks on a full pipe
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        Ok(Server(child))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Veth links left in the node namespace after every DEL.
fn count_veths(node: &str) -> Result<usize, String> {
    let out = Command::new("ip")
        .args(["-n", node, "-o", "link", "show", "type", "veth"])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("listing veths in {node} failed"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().count())
}

/// Reservation files (named by address) left in host-local's data directory.
fn count_host_local(data: &Path) -> Result<usize, String> {
    let mut n = 0;
    let Ok(nets) = std::fs::read_dir(data) else {
        return Ok(0);
    };
    for net in nets.flatten() {
        for f in std::fs::read_dir(net.path())
            .map_err(|e| e.to_string())?
            .flatten()
        {
            n += usize::from(
                f.file_name()
                    .to_string_lossy()
                    .parse::<std::net::IpAddr>()
                    .is_ok(),
            );
        }
    }
    Ok(n)
}

/// IPAM keys (per address and per attachment) left in the store.
fn count_ipam_keys(db: &Path) -> Result<usize, String> {
    use podnet_cni::plugin::ipam::{ADDRESS_PREFIX, ATTACHMENT_PREFIX};
    use podnet_store::Store;
    let store = podnet_store::embedded::SqliteStore::open_oneshot(db).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut n = 0;
        for prefix in [ADDRESS_PREFIX, ATTACHMENT_PREFIX] {
            n += store
                .range(prefix)
                .await
                .map_err(|e| e.to_string())?
                .kvs
                .len();
        }
        Ok(n)
    })
}

fn put_node(db: &Path) -> Result<(), String> {
    let store = podnet_store::embedded::SqliteStore::open(db).map_err(|e| e.to_string())?;
    let node = Node {
        metadata: ObjectMeta {
            name: Some("bench-node".into()),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(SUBNET.into()),
            ..NodeSpec::default()
        }),
        ..Node::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(podnet_store::Api::new(std::sync::Arc::new(store)).put(&Object::Node(node)))
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn report(npods: usize, par: usize, results: &[(&str, Value)]) {
    let r = &results[0].1;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "podnet-cni vs reference bridge+host-local: {npods} pods, {par} in parallel, {cores} cores, \
         load average {} at the end; every ADD/DEL of the run succeeded (any failure aborts it)",
        load.join(" ")
    );
    println!();
    let names: Vec<&str> = results.iter().map(|(n, _)| *n).collect();
    let mut head = String::from("| metric | reference |");
    let mut rule = String::from("|---|---:|");
    for n in &names[1..] {
        head.push_str(&format!(" {n} | ratio |"));
        rule.push_str("---:|---:|");
    }
    println!("{head}\n{rule}");
    let rows = [
        ("exec floor (VERSION) p50 ms", "/exec_floor_ms/p50"),
        ("sequential ADD p50 ms", "/seq_add_ms/p50"),
        ("sequential ADD p99 ms", "/seq_add_ms/p99"),
        ("sequential ADD mean ms", "/seq_add_ms/mean"),
        ("sequential DEL p50 ms", "/seq_del_ms/p50"),
        ("sequential DEL p99 ms", "/seq_del_ms/p99"),
        ("sequential DEL mean ms", "/seq_del_ms/mean"),
        ("all ADDs, PAR in flight, wall ms", "/par_add_wall_ms"),
        ("all DELs, PAR in flight, wall ms", "/par_del_wall_ms"),
    ];
    let num = |v: &Value, ptr: &str| v.pointer(ptr).and_then(Value::as_f64).unwrap_or(f64::NAN);
    for (name, ptr) in rows {
        let a = num(r, ptr);
        let mut line = format!("| {} | {a:.1} |", name.replace("PAR", &par.to_string()));
        for (_, p) in &results[1..] {
            let b = num(p, ptr);
            line.push_str(&format!(" {b:.1} | {:.2} |", b / a));
        }
        println!("{line}");
    }
    for (name, ptr) in [
        ("unique addresses, sequential", "/seq_unique_ips"),
        ("unique addresses, parallel", "/par_unique_ips"),
        ("leaked addresses at the end", "/leaked_addresses"),
        ("veths left at the end", "/leaked_veths"),
        ("ping pod 1 → last pod", "/ping"),
    ] {
        let f = |v: &Value| {
            v.pointer(ptr)
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .unwrap_or_default()
        };
        let mut line = format!("| {name} | {} |", f(r));
        for (_, p) in &results[1..] {
            line.push_str(&format!(" {} | |", f(p)));
        }
        println!("{line}");
    }
    println!();
    println!(
        "(ratio = podnet / reference; below 1 is faster. podnet: the standalone plugin, \
         one process per call; podnet-server: the `podnet` shim handing each call to \
         `podnet-cni serve` in the node namespace, as the node agent does)"
    );
}

// ---- the driver, run inside the node namespace ----

fn invoke(binary: &Path, conf: &Value, cmd: &str, cid: &str, netns: &str) -> Result<Value, String> {
    let mut child = Command::new(binary)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_COMMAND", cmd)
        .env("CNI_CONTAINERID", cid)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", REFERENCE_DIR)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    if let Some(mut i) = child.stdin.take() {
        // A plugin may exit without reading all of stdin (VERSION): its exit status
        // and output decide, not the broken pipe.
        match i.write_all(conf.to_string().as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.to_string()),
            _ => {}
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{cmd} {cid}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_str(text.trim()).map_err(|e| e.to_string())
    }
}

fn stats(mut xs: Vec<f64>) -> Value {
    xs.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let k = ((p / 100.0 * xs.len() as f64).ceil() as usize).max(1) - 1;
        xs[k.min(xs.len() - 1)]
    };
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    json!({"p50": pct(50.0), "p99": pct(99.0), "mean": mean, "n": xs.len()})
}

fn ip_of(r: &Value) -> String {
    r["ips"][0]["address"]
        .as_str()
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

fn drive(args: &[String]) {
    let run = || -> Result<Value, String> {
        let binary = PathBuf::from(&args[0]);
        let mut conf: Value = serde_json::from_str(&args[1]).map_err(|e| e.to_string())?;
        let prefix = &args[2];
        let npods: usize = args[3].parse().map_err(|_| "npods")?;
        let par: usize = args[4].parse().map_err(|_| "par")?;
        let ns = |i: usize| format!("/run/netns/{prefix}-p{i:03}");
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
        let mut res = serde_json::Map::new();

        let mut floor = Vec::new();
        for _ in 0..npods {
            let t = Instant::now();
            invoke(&binary, &json!({"cniVersion": "1.0.0"}), "VERSION", "", "")?;
            floor.push(ms(t));
        }
        res.insert("exec_floor_ms".into(), stats(floor));

        let mut adds = Vec::new();
        let mut results = Vec::new();
        for i in 0..npods {
            let t = Instant::now();
            results.push(invoke(
                &binary,
                &conf,
                "ADD",
                &format!("seq{i:04}"),
                &ns(i),
            )?);
            adds.push(ms(t));
        }
        let ips: std::collections::HashSet<String> = results.iter().map(ip_of).collect();
        res.insert("seq_add_ms".into(), stats(adds));
        res.insert("seq_unique_ips".into(), json!(ips.len()));
        let last = ip_of(&results[npods - 1]);
        let ping = Command::new("ip")
            .args([
                "netns",
                "exec",
                &format!("{prefix}-p000"),
                "ping",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "1",
                &last,
            ])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        res.insert("ping".into(), json!(if ping { "ok" } else { "FAIL" }));

        let mut dels = Vec::new();
        for (i, prev) in results.iter().enumerate() {
            conf["prevResult"] = prev.clone();
            let t = Instant::now();
            invoke(&binary, &conf, "DEL", &format!("seq{i:04}"), &ns(i))?;
            dels.push(ms(t));
        }
        if let Some(m) = conf.as_object_mut() {
            m.remove("prevResult");
        }
        res.insert("seq_del_ms".into(), stats(dels));

        let next = AtomicUsize::new(0);
        let par_results = std::sync::Mutex::new(vec![Value::Null; npods]);
        let t = Instant::now();
        std::thread::scope(|s| -> Result<(), String> {
            let workers: Vec<_> = (0..par)
                .map(|_| {
                    s.spawn(|| -> Result<(), String> {
                        loop {
                            let i = next.fetch_add(1, Ordering::SeqCst);
                            if i >= npods {
                                return Ok(());
                            }
                            let r = invoke(&binary, &conf, "ADD", &format!("par{i:04}"), &ns(i))?;
                            par_results.lock().map_err(|_| "poisoned")?[i] = r;
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().map_err(|_| "worker panicked")??;
            }
            Ok(())
        })?;
        res.insert("par_add_wall_ms".into(), json!(ms(t)));
        let par_results = par_results.into_inner().map_err(|_| "poisoned")?;
        let ips: std::collections::HashSet<String> = par_results.iter().map(ip_of).collect();
        res.insert("par_unique_ips".into(), json!(ips.len()));

        let next = AtomicUsize::new(0);
        let t = Instant::now();
        std::thread::scope(|s| -> Result<(), String> {
            let workers: Vec<_> = (0..par)
                .map(|_| {
                    s.spawn(|| -> Result<(), String> {
                        loop {
                            let i = next.fetch_add(1, Ordering::SeqCst);
                            if i >= npods {
                                return Ok(());
                            }
                            let mut c = conf.clone();
                            c["prevResult"] = par_results[i].clone();
                            invoke(&binary, &c, "DEL", &format!("par{i:04}"), &ns(i))?;
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().map_err(|_| "worker panicked")??;
            }
            Ok(())
        })?;
        res.insert("par_del_wall_ms".into(), json!(ms(t)));
        Ok(Value::Object(res))
    };
    match run() {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("driver: {e}");
            std::process::exit(1);
        }
    }
}
