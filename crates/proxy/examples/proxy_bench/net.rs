//! The namespaces of a run (client, node, backend), the pinned TCP latency client and server.

use super::*;

/// Remove namespaces `pnpb-<pid>-*` whose process is gone (a killed earlier run).
pub(crate) fn remove_stale_namespaces(only_pid: Option<u32>) {
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
pub(crate) fn server(args: &[String]) -> Res {
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
pub(crate) fn client(args: &[String]) -> Res {
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
pub(crate) fn run_client(
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

pub(crate) struct Guard {
    pub(crate) names: Vec<String>,
    pub(crate) server: Option<Child>,
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

pub(crate) fn topology(
    g: &mut Guard,
) -> Result<(String, String, String), Box<dyn std::error::Error>> {
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
