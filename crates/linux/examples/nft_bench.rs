//! What nf_tables costs through `podnet_linux::nft`, in a fresh network
//! namespace (created here, deleted on exit; nothing touches the root
//! namespace):
//!
//! - full load of a table with 1 base chain, a 50k-element concatenated
//!   verdict map and a 100k-element map;
//! - the same as a resync (atomic replace over the loaded table);
//! - one element added, one changed (delete + add), one deleted;
//! - for reference, the `nft` binary adding one element to the same table.
//!
//! Run as root: `cargo run --release -p podnet-linux --example nft_bench`.
#![allow(clippy::print_stdout)]

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use podnet_linux::netns;
use podnet_linux::nft::*;

const VMAP_ELEMENTS: u32 = 50_000;
const MAP_ELEMENTS: u32 = 100_000;
const ROUNDS: u32 = 15;

struct NsGuard(String);

impl Drop for NsGuard {
    fn drop(&mut self) {
        let _ = netns::delete(&self.0);
    }
}

fn table() -> TableState {
    let mut st = TableState::new(Table::new(Family::Ip, "podnet"));
    st.add_set(Set::map(
        "services",
        vec![
            DataType::Ipv4Addr,
            DataType::InetProto,
            DataType::InetService,
        ],
        SetData::Verdict,
    ));
    for i in 0..VMAP_ELEMENTS {
        st.insert_element(
            "services",
            Element::verdict(
                vec![
                    Value::Ipv4(Ipv4Addr::from(0x0a60_0000 + i)),
                    Value::Proto(proto::TCP),
                    Value::Port(80),
                ],
                Verdict::Accept,
            ),
        );
    }
    st.add_set(Set::map(
        "backends",
        vec![DataType::Ipv4Addr, DataType::InetService, DataType::Mark],
        SetData::Values(vec![DataType::Ipv4Addr, DataType::InetService]),
    ));
    for i in 0..MAP_ELEMENTS {
        st.insert_element(
            "backends",
            backend(Ipv4Addr::from(0x0a60_0000 + i / 2), i % 2, 0x0af4_0000 + i),
        );
    }
    st.add_chain(
        Chain::base("prerouting", ChainType::Nat, Hook::Prerouting, -100),
        vec![Rule::new(vec![Stmt::VerdictMap {
            fields: vec![Field::IpDaddr, Field::MetaL4Proto, Field::ThDport],
            map: "services".into(),
        }])],
    );
    st
}

fn backend(vip: Ipv4Addr, index: u32, ep: u32) -> Element {
    Element::map(
        vec![Value::Ipv4(vip), Value::Port(80), Value::U32(index)],
        vec![Value::Ipv4(Ipv4Addr::from(ep)), Value::Port(8080)],
    )
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn row(what: &str, diff: Duration, total: Duration, stats: &Stats) {
    println!(
        "| {what} | {} | {} | {} | {} | {} |",
        ms(diff),
        ms(total),
        stats.ops,
        stats.messages,
        stats.bytes
    );
}

/// Plan the batch (timed), then apply it (timed, diff included).
fn step(applier: &mut Applier, nft: &Nft, what: &str, desired: TableState) {
    let started = Instant::now();
    let batch = diff(applier.applied(), &desired);
    let diff_time = started.elapsed();
    drop(batch);
    let started = Instant::now();
    let stats = applier.apply(nft, desired).expect(what);
    row(what, diff_time, started.elapsed(), &stats);
}

fn median_max(mut times: Vec<Duration>) -> String {
    times.sort();
    format!(
        "{} / {}",
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    )
}

fn main() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "run as root (it creates a network namespace)"
    );
    let name = format!("pnlx-bench-{}", std::process::id());
    let ns = netns::create(&name).expect("creating the benchmark namespace");
    let _guard = NsGuard(name.clone());
    let nft = Nft::in_netns(&ns).expect("opening the nf_tables socket");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "nft_bench: {VMAP_ELEMENTS}-element vmap + {MAP_ELEMENTS}-element map, loadavg {}",
        load.trim()
    );
    println!("| step | diff ms | diff + commit ms | ops | messages | bytes |");
    println!("|---|---|---|---|---|---|");

    let started = Instant::now();
    let mut desired = table();
    println!(
        "| (building the desired state) | | {} | | | |",
        ms(started.elapsed())
    );

    let mut applier = Applier::new();
    step(
        &mut applier,
        &nft,
        "full load (empty kernel)",
        desired.clone(),
    );
    applier.forget();
    step(&mut applier, &nft, "full resync (replace)", desired.clone());
    step(&mut applier, &nft, "no change", desired.clone());

    // Single changes, each repeated ROUNDS times (median and max shown).
    println!("\nsingle changes, {ROUNDS} rounds each: median / max ms");
    println!("| step | full-state apply (diff) | TableChange |");
    println!("|---|---|---|");
    let mut by_diff: Vec<[Duration; 3]> = Vec::new();
    let mut by_change: Vec<[Duration; 3]> = Vec::new();
    let mut last = Stats::default();
    for round in 0..ROUNDS {
        // Through the full desired state and the diff.
        let vip = Ipv4Addr::from(0x0ac8_0000 + round);
        let mut times = [Duration::ZERO; 3];
        let added = backend(vip, 0, 0x0af5_0001);
        let changed = backend(vip, 0, 0x0af5_0002);
        let skip_diff = std::env::var_os("NFT_BENCH_SKIP_DIFF").is_some();
        for (i, e) in [Some(added), Some(changed), None].into_iter().enumerate() {
            if skip_diff {
                break;
            }
            match e {
                Some(e) => desired.insert_element("backends", e),
                None => {
                    let key = vec![Value::Ipv4(vip), Value::Port(80), Value::U32(0)];
                    desired
                        .sets
                        .get_mut("backends")
                        .unwrap()
                        .elements
                        .remove(&key);
                }
            }
            let copy = desired.clone();
            let started = Instant::now();
            last = applier.apply(&nft, copy).expect("apply");
            times[i] = started.elapsed();
        }
        by_diff.push(times);
        // Through TableChange.
        let vip = Ipv4Addr::from(0x0ac9_0000 + round);
        let key = vec![Value::Ipv4(vip), Value::Port(80), Value::U32(0)];
        let changes = [
            TableChange {
                upsert_elements: vec![("backends".into(), backend(vip, 0, 0x0af5_0003))],
                ..TableChange::default()
            },
            TableChange {
                upsert_elements: vec![("backends".into(), backend(vip, 0, 0x0af5_0004))],
                ..TableChange::default()
            },
            TableChange {
                remove_elements: vec![("backends".into(), key)],
                ..TableChange::default()
            },
        ];
        let mut times = [Duration::ZERO; 3];
        for (i, c) in changes.into_iter().enumerate() {
            let started = Instant::now();
            last = applier.apply_change(&nft, c).expect("apply_change");
            times[i] = started.elapsed();
        }
        by_change.push(times);
    }
    for (i, what) in [
        "add 1 map element",
        "change 1 map element",
        "delete 1 map element",
    ]
    .into_iter()
    .enumerate()
    {
        println!(
            "| {what} | {} | {} |",
            median_max(by_diff.iter().map(|t| t[i]).collect()),
            median_max(by_change.iter().map(|t| t[i]).collect())
        );
    }
    println!(
        "(last single change sent {} messages, {} bytes)",
        last.messages, last.bytes
    );

    // The nft binary, for reference, on the same loaded table.
    let started = Instant::now();
    let status = Command::new("ip")
        .args([
            "netns", "exec", &name, "nft", "add", "element", "ip", "podnet",
        ])
        .args(["backends", "{ 10.201.0.1 . 80 . 0x0 : 10.245.0.1 . 8080 }"])
        .status();
    match status {
        Ok(s) if s.success() => println!(
            "| `nft add element` (1 element, for reference) | | {} | | | |",
            ms(started.elapsed())
        ),
        other => println!("| `nft add element` failed: {other:?} | | | | | |"),
    }
}
