//! `bench-dataplane --attribution`: where the per-packet cost of a NAT-capable node
//! goes. Two identical copies ("twins") of the hand-built paths are built; the base
//! twin never gets a rule, the variant twin gets one netfilter piece at a time (an
//! empty filter hook, conntrack, conntrack with everything notracked, a masquerade
//! rule, podnet's anti-spoofing lookup, ...), and each variant is measured against the
//! base with [`measure_pair`]: the paired ping-pong, same-CPU ("s") and cross-CPU ("x"),
//! and iperf3 one after the other.
//! No podnet code runs here: it isolates what the kernel charges for each piece.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use crate::dataplane::{build_script, measure_pair, median, paths, Figures, NetPath};

/// One netfilter configuration of the variant twin's node namespaces.
pub struct Variant {
    pub name: &'static str,
    /// nftables script (`nft -f -`) for a node namespace, given the path it serves.
    pub script: fn(&str) -> String,
}

const HOOK: &str = "table ip v {\n chain f {\n  type filter hook forward priority 0;\n }\n}\n";
const CONNTRACK: &str = "table ip v {\n chain f {\n  type filter hook forward priority 0;\n  ct state established accept\n }\n}\n";
const NOTRACK_ALL: &str = "table ip w {\n chain pre {\n  type filter hook prerouting priority -300;\n  notrack\n }\n chain out {\n  type filter hook output priority -300;\n  notrack\n }\n}\n";
const NOTRACK_VXLAN: &str = "table ip w {\n chain pre {\n  type filter hook prerouting priority -300;\n  udp dport 8472 notrack\n }\n chain out {\n  type filter hook output priority -300;\n  udp dport 8472 notrack\n }\n}\n";
const MASQUERADE: &str = "table ip m {\n set keep {\n  type ipv4_addr\n  flags interval\n  elements = { 10.0.0.0/8, 224.0.0.0/4 }\n }\n chain post {\n  type nat hook postrouting priority 100;\n  ip saddr 10.0.0.0/8 ip daddr != @keep masquerade fully-random\n }\n}\n";

/// podnet's anti-spoofing table (`bridge podnet`, as the agent writes it) for the
/// pods of `path`'s twin (hb-hostgw and hb-vxlan: one pod per node, on `veth0`).
fn antispoof(path: &str) -> String {
    let elements = if path == "hb-bridge" {
        "\"veth1\" . 10.10.1.2, \"veth2\" . 10.10.1.3"
    } else {
        "\"veth0\" . 10.244.1.2, \"veth0\" . 10.244.2.2"
    };
    format!(
        "table bridge s {{\n set pod-sources {{\n  type ifname . ipv4_addr\n  elements = {{ {elements} }}\n }}\n chain prerouting {{\n  type filter hook prerouting priority -200;\n  iifname \"veth*\" iifname . ip saddr != @pod-sources drop\n  iifname \"veth*\" iifname . arp saddr ip != @pod-sources drop\n }}\n}}\n"
    )
}

/// The variants, in the order they are reported.
pub fn variants() -> Vec<Variant> {
    vec![
        Variant {
            name: "an empty filter hook (forward)",
            script: |_| HOOK.into(),
        },
        Variant {
            name: "conntrack (one `ct state` rule)",
            script: |_| CONNTRACK.into(),
        },
        Variant {
            name: "conntrack, every packet notracked at raw",
            script: |_| format!("{CONNTRACK}{NOTRACK_ALL}"),
        },
        Variant {
            name: "conntrack, the VXLAN underlay notracked",
            script: |_| format!("{CONNTRACK}{NOTRACK_VXLAN}"),
        },
        Variant {
            name: "egress masquerade rule (nat + conntrack)",
            script: |_| MASQUERADE.into(),
        },
        Variant {
            name: "anti-spoofing lookup (bridge family)",
            script: antispoof,
        },
        Variant {
            name: "masquerade + anti-spoofing (podnet's agent tables)",
            script: |p| format!("{MASQUERADE}{}", antispoof(p)),
        },
    ]
}

/// The node namespaces of a twin's path.
fn nodes(prefix: &str, path: &str) -> Vec<String> {
    match path {
        "hb-bridge" => vec![format!("{prefix}bn")],
        "hb-vxlan" => vec![format!("{prefix}vn1"), format!("{prefix}vn2")],
        // hb-hostgw
        _ => vec![format!("{prefix}hn1"), format!("{prefix}hn2")],
    }
}

fn nft(ns: &str, script: &str) -> anyhow::Result<()> {
    let mut c = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    c.stdin
        .take()
        .context("nft stdin")?
        .write_all(script.as_bytes())?;
    let o = c.wait_with_output()?;
    if !o.status.success() {
        bail!("nft in {ns}: {}", String::from_utf8_lossy(&o.stderr));
    }
    Ok(())
}

fn build(prefix: &str) -> anyhow::Result<()> {
    let o = Command::new("bash")
        .args(["-c", &build_script(prefix)])
        .output()?;
    if !o.status.success() {
        bail!(
            "building the twin {prefix}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(())
}

/// Runs the attribution over `rounds` rounds of `nrt` round trips per path (and
/// iperf3 for `dur` seconds on each twin, when not 0) and
/// prints a markdown table. `base` and `var` are the twins' namespace prefixes (the
/// caller removes every namespace with its run prefix afterwards).
pub fn run(
    me: &Path,
    base: &str,
    var: &str,
    rounds: usize,
    nrt: usize,
    dur: u64,
) -> anyhow::Result<()> {
    build(base)?;
    build(var)?;
    let pick = |prefix: &str| -> BTreeMap<String, NetPath> {
        paths(prefix)
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect()
    };
    let (bp, vp) = (pick(base), pick(var));
    // (variant, path) -> per round (variant twin, bare twin)
    let mut res: BTreeMap<(usize, String), Vec<(Figures, Figures)>> = BTreeMap::new();
    let vs = variants();
    for round in 1..=rounds {
        eprintln!("== attribution round {round}/{rounds}");
        for (i, v) in vs.iter().enumerate() {
            for (name, vpath) in &vp {
                for ns in nodes(var, name) {
                    nft(&ns, "flush ruleset\n")?;
                    nft(&ns, &(v.script)(name))?;
                }
                let (fv, fb) = measure_pair(me, vpath, &bp[name], dur, nrt, (round + i) % 2 == 0)?;
                eprintln!(
                    "  {} / {name}: s {:.1} vs {:.1} us, x {:.1} vs {:.1} us, {:.2} vs {:.2} Gbit/s",
                    v.name, fv.p50s, fb.p50s, fv.p50x, fb.p50x, fv.gbps, fb.gbps
                );
                res.entry((i, name.clone())).or_default().push((fv, fb));
            }
        }
        for name in vp.keys() {
            for ns in nodes(var, name) {
                nft(&ns, "flush ruleset\n")?;
            }
        }
    }
    println!(
        "\n## attribution: medians of {rounds} rounds, paired ping-pong {nrt} x 64 B, variant twin vs the twin without rules"
    );
    println!("| netfilter in the node namespace(s) | path | p50 s base (us) | p50 s with it | s ratio | extra s (us) | p50 x base | p50 x with it | x ratio | Gbit/s base | Gbit/s with it | throughput ratio |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for ((i, name), rows) in &res {
        let m = |f: fn(&(Figures, Figures)) -> f64| median(&rows.iter().map(f).collect::<Vec<_>>());
        let (bs, vs_) = (m(|r| r.1.p50s), m(|r| r.0.p50s));
        let (bx, vx) = (m(|r| r.1.p50x), m(|r| r.0.p50x));
        let (bg, vg) = (m(|r| r.1.gbps), m(|r| r.0.gbps));
        println!(
            "| {} | {name} | {bs:.1} | {vs_:.1} | {:.3} | {:+.1} | {bx:.1} | {vx:.1} | {:.3} | {bg:.2} | {vg:.2} | {:.3} |",
            vs[*i].name,
            vs_ / bs,
            vs_ - bs,
            vx / bx,
            vg / bg
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_names_only_its_own_tables() {
        for v in variants() {
            for path in ["hb-bridge", "hb-hostgw", "hb-vxlan"] {
                let s = (v.script)(path);
                assert!(s.starts_with("table "), "{}: {s}", v.name);
                assert!(!s.contains("podnet"), "{}: {s}", v.name);
            }
        }
        assert!(antispoof("hb-bridge").contains("10.10.1.3"));
        assert!(antispoof("hb-vxlan").contains("10.244.2.2"));
    }
}
