//! Helpers for the controller's integration tests: an embedded store in a temp dir,
//! controllers running in the background, objects from JSON, bounded polling.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use podnet_controller::{run, ControllerOptions};
use podnet_model::{Kind, Object, ObjectRef};
use podnet_store::embedded::SqliteStore;
use podnet_store::{Api, Store};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub fn open(path: &Path) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(path).expect("open embedded store"))
}

/// A controller running as a task; stops (revoking its lease) when dropped or stopped.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("controller task");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

pub fn options(id: &str) -> ControllerOptions {
    ControllerOptions {
        identity: Some(id.to_string()),
        lease_ttl: Duration::from_secs(2),
        ..ControllerOptions::default()
    }
}

pub fn start(store: Arc<dyn Store>, opts: ControllerOptions) -> Running {
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        run(store, opts, async {
            let _ = rx.await;
        })
        .await
        .expect("controller run");
    });
    Running {
        stop: Some(tx),
        task: Some(task),
    }
}

pub fn obj(v: serde_json::Value) -> Object {
    Object::from_value(v).expect("valid object")
}

pub async fn put(store: &Arc<dyn Store>, v: serde_json::Value) {
    Api::new(store.clone()).put(&obj(v)).await.expect("put");
}

pub async fn delete(store: &Arc<dyn Store>, kind: Kind, ns: Option<&str>, name: &str) {
    Api::new(store.clone())
        .delete(&ObjectRef::new(kind, ns, name))
        .await
        .expect("delete");
}

pub async fn list(store: &Arc<dyn Store>, kind: Kind) -> Vec<Object> {
    Api::new(store.clone())
        .list(kind, None)
        .await
        .expect("list")
        .0
}

pub async fn get(
    store: &Arc<dyn Store>,
    kind: Kind,
    ns: Option<&str>,
    name: &str,
) -> Option<Object> {
    Api::new(store.clone())
        .get(kind, ns, name)
        .await
        .expect("get")
}

/// Every allocation key, item key -> owner value.
pub async fn allocations(store: &Arc<dyn Store>) -> HashMap<String, serde_json::Value> {
    store
        .range(podnet_controller::alloc::ALLOC_PREFIX)
        .await
        .expect("range")
        .kvs
        .into_iter()
        .map(|kv| {
            (
                kv.key,
                serde_json::from_slice(&kv.value).expect("owner json"),
            )
        })
        .collect()
}

/// Polls `check` until it returns Some, at most `limit`; panics naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn service(o: &Object) -> &podnet_model::k8s_openapi::api::core::v1::Service {
    match o {
        Object::Service(s) => s,
        _ => panic!("expected a service, found {}", o.kind()),
    }
}

pub fn cluster_ip(o: &Object) -> Option<String> {
    service(o).spec.as_ref()?.cluster_ip.clone()
}

pub fn svc_json(ns: &str, name: &str, spec: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

pub fn pod_json(
    ns: &str,
    name: &str,
    labels: serde_json::Value,
    ip: &str,
    ready: bool,
) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"), "labels": labels},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    })
}

pub fn node_json(name: &str) -> serde_json::Value {
    serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
}

/// The leader key's value.
pub async fn leader(store: &Arc<dyn Store>) -> Option<String> {
    store
        .get(podnet_controller::LEADER_KEY)
        .await
        .expect("get leader")
        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
}

/// Fails when two services share a ClusterIP or a (protocol, nodePort), or an
/// allocation key disagrees with the objects.
pub async fn assert_no_duplicates(store: &Arc<dyn Store>) {
    let mut ips: HashMap<String, String> = HashMap::new();
    let mut ports: HashMap<(String, i32), String> = HashMap::new();
    for o in list(store, Kind::Service).await {
        let s = service(&o);
        let who = format!("{}/{}", o.namespace().unwrap(), o.name());
        let spec = s.spec.clone().unwrap_or_default();
        let blocked = s
            .status
            .as_ref()
            .and_then(|st| st.conditions.as_ref())
            .is_some_and(|c| !c.is_empty());
        if blocked {
            continue; // a refused explicit request keeps the user's value
        }
        if let Some(ip) = spec.cluster_ip.filter(|ip| ip != "None" && !ip.is_empty()) {
            if let Some(other) = ips.insert(ip.clone(), who.clone()) {
                panic!("cluster IP {ip} held by both {other} and {who}");
            }
        }
        for p in spec.ports.unwrap_or_default() {
            if let Some(n) = p.node_port {
                let k = (p.protocol.clone().unwrap_or("TCP".into()), n);
                if let Some(other) = ports.insert(k.clone(), who.clone()) {
                    panic!("node port {k:?} held by both {other} and {who}");
                }
            }
        }
    }
    let allocs = allocations(store).await;
    for (ip, who) in &ips {
        let key = format!("{}serviceips/{ip}", podnet_controller::alloc::ALLOC_PREFIX);
        let owner = allocs
            .get(&key)
            .unwrap_or_else(|| panic!("no allocation key for {ip} of {who}"));
        assert_eq!(
            format!(
                "{}/{}",
                owner["namespace"].as_str().unwrap(),
                owner["name"].as_str().unwrap()
            ),
            *who
        );
    }
}

pub const CHILD_DB: &str = "PODNET_CONTROLLER_TEST_CHILD_DB";
pub const CHILD_ID: &str = "PODNET_CONTROLLER_TEST_CHILD_ID";

/// The body of a child controller process: runs a controller on the store named by
/// the environment, or returns at once when not spawned as a child. Exits by itself
/// after two minutes so that none lingers.
pub async fn run_child_controller(ttl: Duration) {
    let (Ok(db), Ok(id)) = (std::env::var(CHILD_DB), std::env::var(CHILD_ID)) else {
        return;
    };
    let store = open(Path::new(&db));
    let opts = ControllerOptions {
        identity: Some(id),
        lease_ttl: ttl,
        ..ControllerOptions::default()
    };
    run(store, opts, tokio::time::sleep(Duration::from_secs(120)))
        .await
        .unwrap();
}

/// A controller child process (the test binary running `test`), killed when dropped.
pub struct ChildController(pub std::process::Child);

impl ChildController {
    pub fn spawn(test: &str, db: &Path, id: &str) -> ChildController {
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                test,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, db)
            .env(CHILD_ID, id)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn child controller");
        ChildController(child)
    }

    /// SIGKILL: no chance to give the lease back.
    pub fn kill9(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }

    /// Peak resident memory of the process so far, in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for ChildController {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
