//! Shared harness of the plugin tests: a "node" network namespace where the plugin runs
//! (as a runtime would, `ip netns exec NODE podnet-cni`), "pod" namespaces, and an
//! embedded store in a temp dir holding the Node. Everything is removed by `Drop`, also
//! when a test fails. Nothing is created in the machine's root namespace.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use podnet_model::k8s_openapi::api::core::v1::{Node, NodeSpec};
use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use podnet_model::Object;
use podnet_store::{Api, Store};
use serde_json::{json, Value};

pub const PLUGIN: &str = env!("CARGO_BIN_EXE_podnet-cni");
pub const NODE_NAME: &str = "node-1";
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_eq!(
        uid, "0",
        "this test needs root (it creates network namespaces and runs podnet-cni in them); run the tests as root"
    );
    for tool in ["ip", "ping"] {
        assert!(
            Command::new(tool).arg("-V").output().is_ok(),
            "this test needs the {tool} command (iproute2, iputils-ping)"
        );
    }
}

/// A unique prefix: `pncni-<pid>-<n>`.
pub fn unique() -> String {
    format!(
        "pncni-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// What one plugin run printed and returned.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "plugin failed: {self:?}");
        self
    }

    /// Asserts an error object with `code`; returns its message.
    pub fn err(&self, code: u64) -> String {
        assert_ne!(self.code, 0, "plugin should have failed: {self:?}");
        let v = self.json();
        assert_eq!(v["code"].as_u64(), Some(code), "wrong error code: {self:?}");
        v["msg"].as_str().unwrap_or_default().to_string()
    }
}

/// A node namespace, pod namespaces, a store; all removed on drop.
pub struct Lab {
    pub prefix: String,
    pub node_ns: String,
    pub pods: Vec<String>,
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    pub store: Arc<dyn Store>,
    pub rt: tokio::runtime::Runtime,
    /// The executable run as the plugin: [`PLUGIN`] unless a test sets another (the shim).
    pub binary: PathBuf,
}

impl Lab {
    /// A node namespace and a store holding Node `node-1` with `pod_cidr` (none: a Node
    /// without spec.podCIDR).
    pub fn new(pod_cidr: Option<&str>) -> Lab {
        require_root();
        let prefix = unique();
        let node_ns = format!("{prefix}-node");
        run_ok(&["ip", "netns", "add", &node_ns]);
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("state.db");
        let store: Arc<dyn Store> =
            Arc::new(podnet_store::embedded::SqliteStore::open(&db).expect("open store"));
        let lab = Lab {
            prefix,
            node_ns,
            pods: Vec::new(),
            dir,
            db,
            store,
            rt: rt(),
            binary: PathBuf::from(PLUGIN),
        };
        lab.put_node(pod_cidr);
        lab
    }

    pub fn put_node(&self, pod_cidr: Option<&str>) {
        let node = Node {
            metadata: ObjectMeta {
                name: Some(NODE_NAME.to_string()),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                pod_cidr: pod_cidr.map(str::to_string),
                ..NodeSpec::default()
            }),
            ..Node::default()
        };
        self.rt
            .block_on(Api::new(self.store.clone()).put(&Object::Node(node)))
            .expect("put node");
    }

    /// A new pod namespace; returns its path.
    pub fn pod(&mut self) -> String {
        let name = format!("{}-p{}", self.prefix, self.pods.len());
        run_ok(&["ip", "netns", "add", &name]);
        self.pods.push(name.clone());
        format!("/run/netns/{name}")
    }

    /// The name of a pod namespace from its path.
    pub fn ns_of(path: &str) -> &str {
        path.trim_start_matches("/run/netns/")
    }

    pub fn config(&self) -> Value {
        self.config_version("1.1.0")
    }

    pub fn config_version(&self, version: &str) -> Value {
        json!({
            "cniVersion": version,
            "name": "podnet",
            "type": "podnet",
            "store": self.db.display().to_string(),
            "node": NODE_NAME,
        })
    }

    /// Runs the plugin in the node namespace with exactly `vars` and `stdin`.
    pub fn exec_raw(&self, vars: &[(&str, &str)], stdin: &[u8]) -> Run {
        self.exec_raw_with(vars, stdin, &[])
    }

    pub fn exec_raw_with(
        &self,
        vars: &[(&str, &str)],
        stdin: &[u8],
        extra: &[(&str, &str)],
    ) -> Run {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.node_ns])
            .arg(&self.binary)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .envs(vars.iter().copied())
            .envs(extra.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn plugin");
        let pid = child.id();
        if let Some(mut i) = child.stdin.take() {
            let _ = i.write_all(stdin);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = match rx.recv_timeout(PLUGIN_TIMEOUT) {
            Ok(out) => out.expect("wait for plugin"),
            Err(_) => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).output();
                panic!("plugin did not finish within {PLUGIN_TIMEOUT:?}");
            }
        };
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        }
    }

    /// Runs `command` for an attachment with `config` on stdin.
    pub fn exec(
        &self,
        command: &str,
        container_id: &str,
        netns: &str,
        ifname: &str,
        args: &str,
        config: &Value,
    ) -> Run {
        self.exec_fp(command, container_id, netns, ifname, args, config, None)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn exec_fp(
        &self,
        command: &str,
        container_id: &str,
        netns: &str,
        ifname: &str,
        args: &str,
        config: &Value,
        failpoint: Option<&str>,
    ) -> Run {
        let vars = [
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", container_id),
            ("CNI_NETNS", netns),
            ("CNI_IFNAME", ifname),
            ("CNI_ARGS", args),
            ("CNI_PATH", "/nonexistent"),
        ];
        let extra: Vec<(&str, &str)> = failpoint
            .map(|f| vec![("PODNET_CNI_FAILPOINT", f)])
            .unwrap_or_default();
        self.exec_raw_with(&vars, config.to_string().as_bytes(), &extra)
    }

    pub fn add(&self, container_id: &str, netns: &str) -> Run {
        self.exec("ADD", container_id, netns, "eth0", "", &self.config())
    }

    pub fn del(&self, container_id: &str, netns: &str) -> Run {
        self.exec("DEL", container_id, netns, "eth0", "", &self.config())
    }

    /// Runs a command inside a namespace (`ip netns exec NS ...`).
    pub fn in_ns(ns: &str, args: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(args);
        run(&full)
    }

    /// The link names of the node namespace.
    pub fn node_links(&self) -> Vec<String> {
        link_names(&self.node_ns)
    }

    /// The veth links of the node namespace.
    pub fn node_veths(&self) -> Vec<String> {
        self.node_links()
            .into_iter()
            .filter(|l| l.starts_with("veth"))
            .collect()
    }

    /// Every store key under `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.rt
            .block_on(self.store.range(prefix))
            .expect("range")
            .kvs
            .into_iter()
            .map(|kv| kv.key)
            .collect()
    }

    /// Every IPAM key (addresses and attachments) of the node.
    pub fn ipam_keys(&self) -> Vec<String> {
        let mut k = self.keys("/registry/podnet.io/ipam/");
        k.extend(self.keys("/registry/podnet.io/ipam-attachments/"));
        k
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.pods.iter().chain(std::iter::once(&self.node_ns)) {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

pub fn link_names(ns: &str) -> Vec<String> {
    let out = run_ok(&["ip", "-n", ns, "-j", "link", "show"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("ip -j link");
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l["ifname"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The IPv4 addresses (`a.b.c.d/p`) of `dev` in `ns`.
pub fn addresses(ns: &str, dev: &str) -> Vec<String> {
    let out = run(&["ip", "-n", ns, "-j", "-4", "addr", "show", "dev", dev]);
    if !out.status.success() {
        return Vec::new();
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let mut found = Vec::new();
    for link in v.as_array().into_iter().flatten() {
        for a in link["addr_info"].as_array().into_iter().flatten() {
            found.push(format!(
                "{}/{}",
                a["local"].as_str().unwrap_or_default(),
                a["prefixlen"]
            ));
        }
    }
    found
}

/// One ping, bounded in time; true when a reply came back.
pub fn ping(ns: &str, ip: &str) -> bool {
    Lab::in_ns(ns, &["ping", "-c", "1", "-W", "2", ip])
        .status
        .success()
}

pub fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("failed to run {args:?}: {e}"))
}

pub fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
