//! Shared helpers of the kernel tests: root and tool checks, unique
//! namespace names, a guard that deletes every namespace a test made (also
//! when the test fails), and a real-packet probe.
//!
//! Every test works only inside namespaces it created: nothing touches the
//! machine's root network namespace.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use podnet_linux::{netns, NetNs};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Kernel tests need root: fail (never skip) without it.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "kernel tests need root (network namespaces, netlink changes): run them as root"
    );
}

/// Fail with a message naming the missing tool and its package.
pub fn require_tool(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(tool).is_file();
    assert!(
        found,
        "missing tool {tool}: install it with `apt-get install -y {package}`"
    );
}

/// `pnlx-<pid>-<counter>-<purpose>`: unique per process and call, so tests
/// in parallel (and parallel runs) never collide.
pub fn unique_name(purpose: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("pnlx-{}-{n}-{purpose}", std::process::id())
}

/// The prefix of every namespace this process creates.
pub fn process_prefix() -> String {
    format!("pnlx-{}-", std::process::id())
}

/// Creates namespaces and deletes all of them when dropped.
#[derive(Default)]
pub struct Namespaces {
    names: Vec<String>,
}

impl Namespaces {
    pub fn new() -> Self {
        require_root();
        Self::default()
    }

    /// Create a namespace named after `purpose`, with loopback left down.
    pub fn create(&mut self, purpose: &str) -> (String, NetNs) {
        let name = unique_name(purpose);
        // Registered first: a failure half-way still gets cleaned up.
        self.names.push(name.clone());
        let ns = netns::create(&name).unwrap_or_else(|e| panic!("creating netns {name}: {e}"));
        (name, ns)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.names {
            if let Err(e) = netns::delete(name) {
                // Best effort: report, keep deleting the rest.
                tracing::warn!(netns = %name, error = %e, "cleanup failed");
            }
        }
    }
}

/// `ip netns exec NS ping -c1 -W1 IP`, up to `attempts` times (the first
/// packet may wait for ARP on several hops). True when a reply came back.
pub fn ping(netns: &str, ip: &str, attempts: usize) -> bool {
    require_tool("ip", "iproute2");
    require_tool("ping", "iputils-ping");
    (0..attempts).any(|_| {
        Command::new("ip")
            .args(["netns", "exec", netns, "ping", "-c1", "-W1", ip])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("running ip netns exec ... ping")
            .success()
    })
}

/// `ip -n NS ARGS...`, for checks from iproute2's side. Returns stdout.
pub fn ip(netns: &str, args: &[&str]) -> String {
    require_tool("ip", "iproute2");
    let out = Command::new("ip")
        .arg("-n")
        .arg(netns)
        .args(args)
        .output()
        .expect("running ip");
    assert!(
        out.status.success(),
        "ip -n {netns} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
