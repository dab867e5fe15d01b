//! `lab down`: removes every namespace, process, file and directory a lab made, also
//! after a crash of `lab up` (it works from what is on the machine, not from what `up`
//! remembers): processes recorded in the pid directory, every process living in one
//! of the lab's namespaces, the namespaces themselves (pods first, the switch last),
//! the `/etc/netns/<ns>` files of pods, and the state directory. Best effort and
//! idempotent: every step is tried, "already gone" is success, errors are collected.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use podnet_linux::netns;

use crate::plan::{prefix_of, STATE_ROOT};
use crate::procs;

/// What `down` removed, and what it could not.
#[derive(Debug, Default)]
pub struct DownReport {
    pub processes: usize,
    pub namespaces: usize,
    pub errors: Vec<String>,
}

/// Tears down lab `name` whose state lives under `state_root` (normally
/// `/run/podnet/labs`).
pub fn down(name: &str, state_root: &Path) -> DownReport {
    let mut report = DownReport::default();
    let state_dir = state_root.join(name);
    let prefix = prefix_of(name);

    // 1. The lab's own processes, by recorded PID (process groups: agents take their
    //    helpers along).
    let recorded: Vec<u32> = procs::recorded(&state_dir)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    report.processes += stop(&recorded, Duration::from_secs(3));

    // 2. Whatever still lives in one of the lab's namespaces (pod containers).
    let namespaces = netns::list_with_prefix(&prefix).unwrap_or_else(|e| {
        report.errors.push(format!("listing namespaces: {e}"));
        Vec::new()
    });
    let inodes: HashSet<u64> = namespaces
        .iter()
        .filter_map(|n| std::fs::metadata(netns::path_of(n)).ok().map(|m| m.ino()))
        .collect();
    let inside = processes_in(&inodes);
    report.processes += stop(&inside, Duration::from_secs(2));

    // 3. The namespaces: pods, then hosts, then the switch (links go with them).
    let mut ordered = namespaces.clone();
    ordered.sort_by_key(|n| {
        if n.starts_with(&format!("{prefix}pod-")) {
            0
        } else if n.ends_with("-switch") {
            2
        } else {
            1
        }
    });
    for n in &ordered {
        match netns::delete(n) {
            Ok(()) => report.namespaces += 1,
            Err(e) => report.errors.push(format!("deleting namespace {n}: {e}")),
        }
    }

    // 4. Files: /etc/netns/<pod ns> (resolv.conf, hosts) and the state directory.
    if let Ok(entries) = std::fs::read_dir("/etc/netns") {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                if let Err(err) = std::fs::remove_dir_all(e.path()) {
                    report
                        .errors
                        .push(format!("removing {}: {err}", e.path().display()));
                }
            }
        }
    }
    if state_dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(&state_dir) {
            report
                .errors
                .push(format!("removing {}: {e}", state_dir.display()));
        }
    }
    // The state root itself goes when the last lab is gone.
    if state_root == Path::new(STATE_ROOT) {
        let _ = std::fs::remove_dir(state_root);
        let _ = std::fs::remove_dir("/run/podnet");
    }
    report
}

/// PIDs of processes whose network namespace is one of `inodes`.
pub fn processes_in(inodes: &HashSet<u64>) -> Vec<u32> {
    if inodes.is_empty() {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .ok()
                .and_then(|l| {
                    let s = l.to_string_lossy().into_owned();
                    s.strip_prefix("net:[")?
                        .strip_suffix(']')?
                        .parse::<u64>()
                        .ok()
                })
                .is_some_and(|ino| inodes.contains(&ino))
        })
        .collect()
}

/// SIGTERM, a bounded wait, then SIGKILL; returns how many were alive.
fn stop(pids: &[u32], grace: Duration) -> usize {
    let live: Vec<u32> = pids.iter().copied().filter(|p| procs::alive(*p)).collect();
    for &p in &live {
        let _ = kill(Pid::from_raw(-(p as i32)), Signal::SIGTERM);
        let _ = kill(Pid::from_raw(p as i32), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && live.iter().any(|p| procs::alive(*p)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for &p in live.iter().filter(|p| procs::alive(**p)) {
        let _ = kill(Pid::from_raw(-(p as i32)), Signal::SIGKILL);
        let _ = kill(Pid::from_raw(p as i32), Signal::SIGKILL);
    }
    live.len()
}
