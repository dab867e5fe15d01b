//! The kube-proxy-style anchors (../shared/bench/anchors/02, 03) and the side-by-side table.

use super::*;

pub(crate) fn parse_result(text: &str, prefix: &str) -> Kv {
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

pub(crate) fn run_anchor(path: &str, nconn: usize, extra: &[(&str, &str)]) -> Kv {
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

pub(crate) fn num(m: &Kv, k: &str) -> Option<f64> {
    m.get(k)?.parse().ok()
}

pub(crate) fn fmt(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) if x >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
    }
}

pub(crate) fn ratio(p: Option<f64>, a: Option<f64>) -> String {
    match (p, a) {
        (Some(p), Some(a)) if a > 0.0 && p / a < 0.001 => format!("{:.1e}", p / a),
        (Some(p), Some(a)) if a > 0.0 => format!("{:.3}", p / a),
        _ => "-".into(),
    }
}

pub(crate) fn table(pod: &BTreeMap<u32, Kv>, a2: &Kv, a3: &Kv) {
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
    goal(
        "one scale 2 <-> 3 endpoints 50k (median)",
        p(50_000, "scale_total_ms"),
        10.0,
        "ms",
    );
    goal(
        "one new service with 9 endpoints 50k (median; verdict-map path)",
        p(50_000, "newsvc9_total_ms"),
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
