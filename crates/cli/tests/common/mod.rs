//! What the lab end-to-end tests share: root and tool checks, a lab with its state in
//! a temp dir (removed with `lab down` when dropped, also after a failed assertion),
//! processes started in its hosts as `lab up` starts them (and an agent restarted after
//! SIGKILL), a bounded wait, and the trace a lab could leave on the machine.
#![allow(dead_code)] // each test file uses its own part

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails (never skips) unless root, and names the package of every missing tool.
pub fn require_root_and_tools(tools: &[(&str, &str)]) {
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
        })
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "the lab tests need root (network namespaces); run the test command as root"
    );
    for (tool, pkg) in tools {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap()
                .status
                .success(),
            "the lab tests need {tool}: apt-get install {pkg} (scripts/install-deps.sh)"
        );
    }
}

pub struct Lab {
    pub name: String,
    pub root: tempfile::TempDir,
    /// Processes the test started itself (killed by PID on drop).
    pub children: Vec<Child>,
}

impl Lab {
    /// A lab named `<tag><pid>` with its state in a temp dir.
    pub fn new(tag: &str) -> Lab {
        Lab {
            name: format!("{tag}{}", std::process::id() % 100_000),
            root: tempfile::tempdir().unwrap(),
            children: Vec::new(),
        }
    }

    /// The lab's state directory.
    pub fn state(&self) -> PathBuf {
        self.root.path().join(&self.name)
    }

    /// The prefix of every namespace the lab makes.
    pub fn prefix(&self) -> String {
        format!("pn-{}-", self.name)
    }

    /// The namespace of one of the lab's hosts (`node-1`, `switch`, ...).
    pub fn netns(&self, host: &str) -> String {
        format!("pn-{}-{host}", self.name)
    }

    /// `podnet ARGS` against this lab's root and store.
    pub fn podnet_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_podnet"));
        c.args(args)
            .env("PODNET_LAB_ROOT", self.root.path())
            .env("PODNET_STORE", self.state().join("state.db"))
            .current_dir(repo());
        c
    }

    pub fn podnet(&self, args: &[&str]) -> Output {
        self.podnet_cmd(args).output().unwrap()
    }

    /// `podnet ARGS`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.podnet(args);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "podnet {args:?} failed:\n{out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }

    /// `podnet lab up` of the quickstart lab (`examples/quickstart/lab.yaml`) under this
    /// lab's name, with `extra` flags and then `manifests`, which must succeed.
    pub fn up(&self, extra: &[&str], manifests: &[&str]) -> String {
        let mut args = vec![
            "lab",
            "up",
            "-f",
            "examples/quickstart/lab.yaml",
            "--name",
            &self.name,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(manifests);
        self.ok(&args)
    }

    /// `podnet ARGS -o json`-style output parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// A pod's IP (`-n NAMESPACE`, or the default namespace when `None`).
    pub fn pod_ip(&self, namespace: Option<&str>, name: &str) -> String {
        let mut args = vec!["get", "pod", name, "-o", "json"];
        if let Some(ns) = namespace {
            args.extend(["-n", ns]);
        }
        self.json(&args)["status"]["podIP"]
            .as_str()
            .unwrap_or_else(|| panic!("pod {name} has no IP"))
            .to_string()
    }

    /// A shell command inside one of the lab's hosts (`node-1`, ...).
    pub fn host(&self, host: &str, cmd: &str) -> String {
        self.ok(&[
            "lab", "exec", "--name", &self.name, host, "--", "sh", "-c", cmd,
        ])
    }

    /// The metrics text of the agent on `node` (the lab's `--metrics` port 9150); empty
    /// while it does not answer (e.g. just restarted).
    pub fn agent_metrics(&self, node: &str) -> String {
        Command::new("ip")
            .args(["netns", "exec", &self.netns(node), "curl", "-s", "-m", "2"])
            .arg("http://127.0.0.1:9150/metrics")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Starts `argv` inside host `host`'s namespace as the lab does (own process group,
    /// log appended to the lab's log), recording its PID for `lab down`.
    pub fn spawn_in_host(&self, host: &str, role: &str, argv: &[String]) -> u32 {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.state().join("logs").join(format!("{role}.log")))
            .unwrap();
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.netns(host)))
            .arg("--")
            .args(argv)
            .env("RUST_LOG", "info")
            .current_dir(self.state())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().unwrap();
        let pid = child.id();
        std::fs::write(
            self.state().join("pids").join(format!("{role}.pid")),
            format!("{pid}\n"),
        )
        .unwrap();
        // Reaped by `lab down` (it kills by PID and process group); not a Child we own.
        std::mem::forget(child);
        pid
    }

    /// Kills `node`'s agent (the PID the lab recorded) with SIGKILL, waits (at most 5 s)
    /// until it is gone, and starts it again with the same command line; its new PID.
    pub fn restart_agent(&self, node: &str) -> u32 {
        let role = format!("agent-{node}");
        let pid_file = self.state().join("pids").join(format!("{role}.pid"));
        let pid: u32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap()
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert!(argv.iter().any(|a| a == "agent"), "PID {pid}: {argv:?}");
        let kill = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        assert!(kill.success(), "kill -9 {pid}");
        // Gone, or a zombie (its sockets are closed) when this process is its parent.
        wait_until(&format!("agent {pid} gone"), Duration::from_secs(5), || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
                s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z'))
            })
        });
        self.spawn_in_host(node, &role, &argv)
    }
}

/// The value of the metrics line that starts with `name` (labels included, e.g.
/// `podnet_agent_managed{kind="route"} `), if there is one.
pub fn metric_value(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}

/// [`metric_value`], failing the test when the line is missing.
pub fn metric(text: &str, name: &str) -> u64 {
    metric_value(text, name).unwrap_or_else(|| panic!("{name} missing in\n{text}"))
}

/// Polls `f` every 10 ms until it holds; fails after `limit`. The time it took.
pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    t0.elapsed()
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.podnet(&["lab", "down", "--name", &self.name]);
    }
}

/// What a lab could leave behind on the machine.
#[derive(Debug, PartialEq, Eq)]
pub struct Trace {
    pub namespaces: BTreeSet<String>,
    pub root_links: BTreeSet<String>,
    pub etc_netns: BTreeSet<String>,
    pub processes: BTreeSet<String>,
}

/// The namespaces and `/etc/netns` entries with `prefix`, the root namespace's links,
/// and the processes whose command line names `root`.
pub fn trace(prefix: &str, root: &Path) -> Trace {
    let lines = |cmd: &str| -> BTreeSet<String> {
        let o = Command::new("sh").args(["-c", cmd]).output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let root_s = root.display().to_string();
    Trace {
        namespaces: lines("ip netns list | awk '{print $1}'")
            .into_iter()
            .filter(|n| n.starts_with(prefix))
            .collect(),
        root_links: lines("ip -o link show | awk -F': ' '{print $2}'"),
        etc_netns: lines("ls /etc/netns 2>/dev/null")
            .into_iter()
            .filter(|n| n.starts_with(prefix))
            .collect(),
        processes: lines("ps -eo pid=,args=")
            .into_iter()
            .filter(|l| l.contains(&root_s))
            .collect(),
    }
}
