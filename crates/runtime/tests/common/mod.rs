//! A mini-node for the runtime's tests: a fresh network namespace
//! (`pnrt-<pid>-<n>-node`) with the runtime running inside it on a thread of its own,
//! an embedded store and a CNI network (Debian's reference `bridge` + `host-local`
//! plugins) in a temp dir. Everything it makes is removed when it is dropped, also
//! when a test fails.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use podnet_linux::netns::{self, NetNs};
use podnet_model::k8s_openapi::api::core::v1::Pod;
use podnet_model::{Kind, Object};
use podnet_runtime::process::ProcessRecord;
use podnet_runtime::{pod_netns_name, RuntimeConfig, RuntimeError};
use podnet_store::embedded::SqliteStore;
use podnet_store::Api;

static NEXT: AtomicU32 = AtomicU32::new(1);
static NEXT_POD: AtomicU32 = AtomicU32::new(1);

/// Where the reference plugins are (package containernetworking-plugins).
pub const PLUGIN_DIR: &str = "/usr/lib/cni";

fn require_environment() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(String::from))
        })
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "the runtime tests need root (network namespaces, CNI): run them as root"
    );
    for plugin in ["bridge", "host-local"] {
        let path = Path::new(PLUGIN_DIR).join(plugin);
        assert!(
            path.is_file(),
            "missing CNI plugin {}: install the package containernetworking-plugins",
            path.display()
        );
    }
    assert!(
        Path::new("/bin/busybox").is_file(),
        "missing /bin/busybox: install busybox-static"
    );
}

struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), RuntimeError>>>,
}

/// One node: namespace, store, CNI network, runtime.
pub struct Node {
    pub n: u32,
    pub prefix: String,
    pub node_ns: String,
    pub subnet: String,
    pub dir: tempfile::TempDir,
    pub api: Api,
    pub cfg: RuntimeConfig,
    running: Option<Running>,
}

impl Node {
    /// A node with the runtime started.
    pub fn start() -> Node {
        let mut node = Node::new();
        node.start_runtime();
        node
    }

    pub fn new() -> Node {
        require_environment();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let prefix = format!("pnrt-{pid}-{n}-");
        let node_ns = format!("{prefix}node");
        let dir = tempfile::tempdir().expect("temp dir");
        let subnet = format!("10.251.{}.0/24", n % 250 + 1);
        // The guard exists before anything is created, so that a failure below cleans up.
        let store = SqliteStore::open(&dir.path().join("state.db")).expect("open store");
        let api = Api::new(Arc::new(store));
        let mut cfg = RuntimeConfig::new(
            "node-a",
            "172.18.0.2".parse().unwrap(),
            &prefix,
            dir.path().join("state"),
            env!("CARGO_BIN_EXE_podnet-image-shim"),
        );
        cfg.cni_conf_dir = dir.path().join("net.d");
        cfg.cni_plugin_dirs = vec![PathBuf::from(PLUGIN_DIR)];
        cfg.cni_cache_dir = dir.path().join("cni-cache");
        let node = Node {
            n,
            prefix,
            node_ns,
            subnet,
            dir,
            api,
            cfg,
            running: None,
        };
        netns::create(&node.node_ns).expect("create node namespace");
        node.ip_in_node(&["link", "set", "lo", "up"]);
        std::fs::create_dir_all(&node.cfg.cni_conf_dir).unwrap();
        let conf = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": format!("pnrt{n}"),
            "plugins": [{
                "type": "bridge",
                "bridge": format!("pnbr{n}"),
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": node.subnet}]],
                    "dataDir": node.ipam_dir(),
                }
            }]
        });
        std::fs::write(
            node.cfg.cni_conf_dir.join("10-pnrt.conflist"),
            serde_json::to_vec_pretty(&conf).unwrap(),
        )
        .unwrap();
        node
    }

    /// host-local's directory of leased addresses.
    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.path().join("ipam")
    }

    /// Whether host-local holds a lease on `ip`.
    pub fn ip_leased(&self, ip: &str) -> bool {
        self.ipam_dir()
            .join(format!("pnrt{}", self.n))
            .join(ip)
            .exists()
    }

    fn ip_in_node(&self, args: &[&str]) {
        let st = Command::new("ip")
            .arg("-n")
            .arg(&self.node_ns)
            .args(args)
            .status()
            .expect("run ip");
        assert!(st.success(), "ip -n {} {args:?} failed", self.node_ns);
    }

    /// Starts the runtime on a thread inside the node namespace.
    pub fn start_runtime(&mut self) {
        assert!(self.running.is_none(), "runtime already running");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (api, cfg, node_ns) = (self.api.clone(), self.cfg.clone(), self.node_ns.clone());
        let thread = std::thread::Builder::new()
            .name(format!("runtime-{}", self.n))
            .spawn(move || {
                let ns = NetNs::open(&node_ns).expect("open node namespace");
                ns.run(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("tokio runtime");
                    let r = rt.block_on(podnet_runtime::run(api, cfg, async {
                        let _ = rx.await;
                    }));
                    rt.shutdown_timeout(Duration::from_secs(5));
                    r
                })
                .expect("enter node namespace")
            })
            .expect("spawn runtime thread");
        self.running = Some(Running {
            stop: Some(tx),
            thread: Some(thread),
        });
    }

    /// Stops the runtime without tearing anything down (as a killed agent).
    pub fn stop_runtime(&mut self) {
        let Some(mut r) = self.running.take() else {
            return;
        };
        if let Some(s) = r.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = r.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(t.is_finished(), "runtime did not stop within 20 s");
            t.join().expect("runtime thread").expect("runtime result");
        }
    }

    /// `teardown_all` from inside the node namespace.
    pub fn teardown_all(&self) -> Result<(), RuntimeError> {
        let cfg = self.cfg.clone();
        let ns = NetNs::open(&self.node_ns).expect("open node namespace");
        ns.run(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            let r = rt.block_on(podnet_runtime::teardown_all(&cfg));
            rt.shutdown_timeout(Duration::from_secs(5));
            r
        })
        .expect("enter node namespace")
    }

    /// A new pod bound to this node, from the JSON of its spec.
    pub fn pod(&self, name: &str, spec: serde_json::Value) -> Pod {
        let k = NEXT_POD.fetch_add(1, Ordering::SeqCst);
        let uid = format!(
            "{:04x}{k:08x}-0000-4000-8000-{:012x}",
            self.n,
            std::process::id()
        );
        let mut spec = spec;
        spec["nodeName"] = "node-a".into();
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": uid},
            "spec": spec,
        }))
        .expect("pod json")
    }

    pub async fn put(&self, pod: &Pod) {
        self.api
            .put(&Object::Pod(pod.clone()))
            .await
            .expect("put pod");
    }

    pub async fn get(&self, name: &str) -> Option<Pod> {
        match self
            .api
            .get(Kind::Pod, Some("default"), name)
            .await
            .expect("get pod")
        {
            Some(Object::Pod(p)) => Some(p),
            _ => None,
        }
    }

    pub fn netns_of(&self, pod: &Pod) -> String {
        pod_netns_name(&self.prefix, pod.metadata.uid.as_deref().unwrap())
    }

    pub fn pod_dir(&self, pod: &Pod) -> PathBuf {
        podnet_runtime::names::pod_dir(
            &self.cfg.state_dir,
            "default",
            pod.metadata.name.as_deref().unwrap(),
            pod.metadata.uid.as_deref().unwrap(),
        )
    }

    /// The process record of a container.
    pub fn record(&self, pod: &Pod, container: &str) -> Option<ProcessRecord> {
        ProcessRecord::load(&self.pod_dir(pod).join(format!("{container}.state")))
    }

    /// Polls the pod until `check` accepts it; panics with the last status after `secs`.
    pub async fn wait_pod<T>(
        &self,
        name: &str,
        secs: u64,
        what: &str,
        mut check: impl FnMut(&Pod) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let pod = self.get(name).await;
            if let Some(t) = pod.as_ref().and_then(&mut check) {
                return t;
            }
            if Instant::now() > deadline {
                let status = pod
                    .and_then(|p| p.status)
                    .map(|s| serde_json::to_string_pretty(&s).unwrap());
                panic!("pod {name}: expected {what} within {secs} s; last status: {status:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An HTTP GET from the node namespace; the body.
    pub fn http_get_from_node(&self, ip: IpAddr, port: u16, path: &str) -> Result<String, String> {
        let ns = NetNs::open(&self.node_ns).map_err(|e| e.to_string())?;
        let path = path.to_string();
        ns.run(move || -> Result<String, String> {
            let addr = SocketAddr::new(ip, port);
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                .map_err(|e| format!("connect {addr}: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(3))).ok();
            write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
            let mut out = String::new();
            s.read_to_string(&mut out).map_err(|e| e.to_string())?;
            Ok(out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
        })
        .map_err(|e| e.to_string())?
    }

    /// Runs a command in a pod's namespace (`ip netns exec`), with `stdin`; its stdout.
    pub fn exec_in(&self, netns: &str, argv: &[&str], stdin: &str) -> String {
        let mut child = Command::new("timeout")
            .arg("5")
            .args(["ip", "netns", "exec", netns])
            .args(argv)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn ip netns exec");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).ok();
        let out = child.wait_with_output().expect("wait");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut r) = self.running.take() {
            if let Some(s) = r.stop.take() {
                let _ = s.send(());
            }
            if let Some(t) = r.thread.take() {
                let deadline = Instant::now() + Duration::from_secs(20);
                while !t.is_finished() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = t.join();
            }
        }
        if netns::exists(&self.node_ns) {
            let _ = self.teardown_all();
        }
        for name in netns::list_with_prefix(&self.prefix).unwrap_or_default() {
            let _ = netns::delete(&name);
        }
        for entry in std::fs::read_dir("/etc/netns")
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(&self.prefix)
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// The value of condition `type_` of a pod.
pub fn condition(pod: &Pod, type_: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

pub fn is_ready(pod: &Pod) -> bool {
    condition(pod, "Ready").as_deref() == Some("True")
}

pub fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

pub fn pod_ip(pod: &Pod) -> Option<IpAddr> {
    pod.status.as_ref()?.pod_ip.as_ref()?.parse().ok()
}

/// The status of one container.
pub fn container<'a>(
    pod: &'a Pod,
    name: &str,
) -> Option<&'a podnet_model::k8s_openapi::api::core::v1::ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == name)
}

/// Whether a process is alive (not a zombie).
pub fn alive(pid: u32) -> bool {
    podnet_runtime::procfs::stat(pid).is_some_and(|s| s.state != 'Z')
}

/// The processes whose network namespace is `netns`.
/// The processes in `netns` once there are at least `n` of them (bounded, 10 s): a
/// container is Running as soon as its shim is spawned, a moment before `ip netns exec`
/// has entered the namespace.
pub async fn wait_pids_in_netns(netns: &str, n: usize) -> Vec<u32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let pids = pids_in_netns(netns);
        if pids.len() >= n || std::time::Instant::now() >= deadline {
            assert!(
                pids.len() >= n,
                "netns {netns}: {} processes after 10 s, want {n}",
                pids.len()
            );
            return pids;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub fn pids_in_netns(netns: &str) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(target) = std::fs::metadata(netns::path_of(netns)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(m) = std::fs::metadata(entry.path().join("ns/net")) {
            if m.ino() == target.ino() && m.dev() == target.dev() && alive(pid) {
                out.push(pid);
            }
        }
    }
    out
}
