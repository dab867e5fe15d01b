//! `lab up`: build the network, start the store, the controller and one agent per node
//! (each inside its node's namespace), apply the manifests and wait until the pods are
//! Ready. Progress is reported step by step through a callback; a failure leaves what
//! was made for `lab down` (which `up` also runs first on a stale lab of the same name).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use podnet_model::manifest::Manifest;
use podnet_model::{ClusterConfig, Kind, Object};
use podnet_store::Api;

use crate::config::{CniKind, Lab, StoreKind};
use crate::error::LabError;
use crate::plan::LabPlan;
use crate::{down, procs, underlay};

/// What `up` tells its caller while it works.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A step started.
    Step(&'static str),
    /// The current step finished.
    Done(&'static str, Duration),
    /// While waiting: `ready` of `total` things.
    Waiting {
        what: &'static str,
        ready: usize,
        total: usize,
    },
}

/// The port of the internet host's agnhost netexec (`/clientip` for the egress check).
pub const INTERNET_PORT: u16 = 8080;

/// Where each lab agent serves its metrics, inside its node's namespace.
pub const AGENT_METRICS: &str = "127.0.0.1:9150";

pub struct UpOptions {
    /// The `podnet` executable the lab's processes run.
    pub podnet_exe: PathBuf,
    /// Normally `/run/podnet/labs`.
    pub state_root: PathBuf,
    /// How long to wait for nodes and pods.
    pub timeout: Duration,
}

/// A running lab.
#[derive(Debug, Clone)]
pub struct Running {
    pub plan: LabPlan,
    pub store_url: String,
}

/// Brings the lab up. `manifests` are applied once the nodes are ready.
pub async fn up(
    lab: &Lab,
    manifests: Vec<Manifest>,
    opts: &UpOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Running, LabError> {
    let plan = LabPlan::with_state_root(lab, opts.state_root.clone());
    let mut step = Stepper::new(progress);

    step.start("cleaning up a stale lab of the same name");
    let report = down::down(&plan.name, &opts.state_root);
    if !report.errors.is_empty() {
        return Err(LabError::Failed(format!(
            "cleaning the stale lab: {}",
            report.errors.join("; ")
        )));
    }
    step.done();

    step.start("building the network (switch, nodes, router, hosts)");
    std::fs::create_dir_all(&plan.state_dir).map_err(LabError::io("creating", &plan.state_dir))?;
    let plan_file = plan.state_dir.join("lab.json");
    std::fs::write(
        &plan_file,
        serde_json::to_vec_pretty(&plan).unwrap_or_default(),
    )
    .map_err(LabError::io("writing", &plan_file))?;
    underlay::build(&plan).await?;
    step.done();

    step.start("starting the store and writing the ClusterConfig");
    if plan.store == StoreKind::Etcd {
        crate::etcd::start(&plan)?;
    }
    let store_url = plan.client_store_url();
    let store = crate::etcd::open_when_ready(&store_url, opts.timeout).await?;
    let api = Api::new(store);
    let cfg = ClusterConfig {
        spec: lab.spec.cluster.clone(),
        ..ClusterConfig::default()
    };
    api.put(&Object::ClusterConfig(cfg))
        .await
        .map_err(|e| LabError::Failed(format!("writing the ClusterConfig: {e}")))?;
    step.done();

    step.start("starting the controller and one agent per node");
    start_processes(
        &plan,
        lab.spec.cni,
        &plan.node_store_url(),
        &opts.podnet_exe,
    )?;
    step.done();

    step.start("waiting for every node to register and get its pod CIDR");
    let total = plan.nodes().count();
    wait(opts.timeout, "nodes", total, step.progress, || async {
        count_nodes_ready(&api).await
    })
    .await?;
    step.done();

    if !manifests.is_empty() {
        step.start("applying the manifests");
        podnet_client::apply(&api, manifests, Vec::new())
            .await
            .map_err(|e| match e {
                podnet_client::ApplyError::Invalid(errs) => LabError::Failed(
                    errs.iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
                other => LabError::Failed(other.to_string()),
            })?;
        step.done();

        step.start("waiting for every pod to be Ready");
        let pods = api
            .list(Kind::Pod, None)
            .await
            .map_err(|e| LabError::Failed(e.to_string()))?
            .0
            .len();
        wait(opts.timeout, "pods", pods, step.progress, || async {
            count_pods_ready(&api).await
        })
        .await?;
        step.done();
    }
    Ok(Running { plan, store_url })
}

/// `STATE/cni-bin/podnet` (the shim) and `STATE/cni-bin/podnet-cni` (a link to the
/// podnet executable); the shim alone where it is not built falls back to the link.
fn install_cni_bin(state: &Path, podnet: &Path) -> Result<std::path::PathBuf, LabError> {
    let dir = state.join("cni-bin");
    std::fs::create_dir_all(&dir).map_err(LabError::io("creating", &dir))?;
    let link = |name: &str| {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(podnet, &path).map_err(LabError::io("linking", path))
    };
    link("podnet-cni")?;
    match podnet_cni::install::shim(&dir) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => link("podnet")?,
        Err(e) => return Err(LabError::io("writing", dir.join("podnet"))(e)),
    }
    Ok(dir)
}

fn start_processes(
    plan: &LabPlan,
    cni: CniKind,
    store_url: &str,
    podnet: &Path,
) -> Result<(), LabError> {
    // CNI_PATH: the lab's own plugin directory first - the `podnet` shim, which hands
    // each call to the node agent's CNI server (docs/cni.md), and `podnet-cni` for its
    // fallback: the podnet executable, which acts as the plugin when run with
    // CNI_COMMAND set - then the podnet executable's directory and the reference
    // plugins.
    let cni_bin = install_cni_bin(&plan.state_dir, podnet)?;
    let bin_dirs = format!(
        "{}:{}:/usr/lib/cni",
        cni_bin.display(),
        podnet.parent().unwrap_or(Path::new("/")).display()
    );
    let chain = match cni {
        CniKind::Podnet => "podnet",
        CniKind::Reference => "reference",
    };
    let exe = podnet.display().to_string();
    let first = plan
        .nodes()
        .next()
        .ok_or_else(|| LabError::Failed("a lab needs at least one node".into()))?;
    let rust_log = [("RUST_LOG".to_string(), "info".to_string())];
    procs::spawn_in(
        &plan.state_dir,
        "controller",
        &first.netns,
        &[
            exe.clone(),
            "controller".into(),
            "--store".into(),
            store_url.into(),
            "--id".into(),
            format!("lab-{}", plan.name),
        ],
        &rust_log,
    )?;
    // The outside world answers who it sees: the egress check expects the node IP.
    if let Some(internet) = plan.host("internet") {
        procs::spawn_in(
            &plan.state_dir,
            "internet-netexec",
            &internet.netns,
            &[
                exe.clone(),
                "image".into(),
                "agnhost".into(),
                "netexec".into(),
                format!("--http-port={INTERNET_PORT}"),
                "--udp-port=-1".into(),
            ],
            &rust_log,
        )?;
    }
    for node in plan.nodes() {
        let dir = plan.state_dir.join("nodes").join(&node.name);
        let argv = vec![
            exe.clone(),
            "agent".into(),
            "--store".into(),
            store_url.into(),
            "--node".into(),
            node.name.clone(),
            "--node-ip".into(),
            node.ip.to_string(),
            // Routing follows the ClusterConfig's overlay mode; metrics on the node
            // namespace's own loopback (`podnet lab exec NODE -- curl 127.0.0.1:9150/metrics`).
            "--metrics".into(),
            AGENT_METRICS.into(),
            "--cni-conf-dir".into(),
            dir.join("net.d").display().to_string(),
            "--runtime-dir".into(),
            dir.display().to_string(),
            "--netns-prefix".into(),
            plan.prefix.clone(),
            "--cni-chain".into(),
            chain.into(),
            "--cni-bin-dir".into(),
            bin_dirs.clone(),
        ];
        procs::spawn_in(
            &plan.state_dir,
            &format!("agent-{}", node.name),
            &node.netns,
            &argv,
            &rust_log,
        )?;
    }
    Ok(())
}

async fn count_nodes_ready(api: &Api) -> Result<usize, LabError> {
    let (nodes, _) = api
        .list(Kind::Node, None)
        .await
        .map_err(|e| LabError::Failed(e.to_string()))?;
    Ok(nodes
        .iter()
        .filter(|o| matches!(o, Object::Node(n) if n.spec.as_ref().and_then(|s| s.pod_cidr.as_ref()).is_some()))
        .count())
}

async fn count_pods_ready(api: &Api) -> Result<usize, LabError> {
    let (pods, _) = api
        .list(Kind::Pod, None)
        .await
        .map_err(|e| LabError::Failed(e.to_string()))?;
    Ok(pods
        .iter()
        .filter(|o| matches!(o, Object::Pod(p) if pod_ready(p)))
        .count())
}

/// The pod's Ready condition is True (or it ran to completion).
pub fn pod_ready(p: &podnet_model::k8s_openapi::api::core::v1::Pod) -> bool {
    let Some(st) = p.status.as_ref() else {
        return false;
    };
    st.phase.as_deref() == Some("Succeeded")
        || st
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

async fn wait<F, Fut>(
    timeout: Duration,
    what: &'static str,
    total: usize,
    progress: &mut dyn FnMut(Progress),
    mut count: F,
) -> Result<(), LabError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, LabError>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let ready = count().await?;
        progress(Progress::Waiting { what, ready, total });
        if ready >= total {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(LabError::Failed(format!(
                "only {ready} of {total} {what} ready after {timeout:?}: see the logs in the lab's state directory"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Stepper<'a> {
    progress: &'a mut dyn FnMut(Progress),
    current: Option<(&'static str, Instant)>,
}

impl<'a> Stepper<'a> {
    fn new(progress: &'a mut dyn FnMut(Progress)) -> Self {
        Stepper {
            progress,
            current: None,
        }
    }

    fn start(&mut self, what: &'static str) {
        (self.progress)(Progress::Step(what));
        self.current = Some((what, Instant::now()));
    }

    fn done(&mut self) {
        if let Some((what, t)) = self.current.take() {
            (self.progress)(Progress::Done(what, t.elapsed()));
        }
    }
}
