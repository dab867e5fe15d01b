//! One pod's worker: a task that owns the pod's sandbox and containers, driven by pod
//! updates, container events (exits, probe results) and timers (restarts, retries).
//!
//! The loop is a state machine over [`Stage`]: `step` does what the stage asks now
//! (set up the sandbox, start due containers, notice completion), then the status is
//! written back if it changed, then the worker waits for the next update, event or
//! timer. Deletion (graceful or forced) ends the loop with [`Worker::terminate`].

mod probes;
mod start;
mod stop;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use podnet_cni::ChainRunner;
use podnet_model::k8s_openapi::api::core::v1::{Container, Pod, PodStatus};
use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use podnet_store::Api;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::config::RuntimeConfig;
use crate::container::{phase, CState, Ctr, RestartPolicy};
use crate::names::pod_dir;
use crate::probe::{ProbeKind, Tracker};
use crate::process::{ExitInfo, Tools};
use crate::sandbox::SandboxRecord;
use crate::status;
use crate::writeback::{write_status, WriteOutcome};

pub(crate) use stop::stop_groups;

/// What every worker shares.
pub(crate) struct Ctx {
    pub api: Api,
    pub cfg: RuntimeConfig,
    pub tools: Tools,
    pub runner: Arc<ChainRunner>,
    /// Bounds concurrent sandbox setups and teardowns.
    pub sandboxes: Semaphore,
}

/// The latest word on the pod from the store.
#[derive(Debug, Clone)]
pub(crate) enum Update {
    Pod(Box<Pod>),
    /// Deleted from the store (forced): tear down at once.
    Gone,
}

/// What container tasks report.
#[derive(Debug)]
pub(crate) enum Event {
    Exited {
        name: String,
        instance: u64,
        info: ExitInfo,
        at: Time,
    },
    Probe {
        name: String,
        instance: u64,
        kind: ProbeKind,
        result: Result<(), String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Setting up or adopting the sandbox (retried with back-off).
    Sandbox,
    /// Init containers one by one, then the main containers.
    Containers,
    /// Succeeded or Failed: nothing runs, the network is released; waits for deletion.
    Terminal,
}

/// A container of the pod, by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Init(usize),
    Main(usize),
}

pub(crate) struct Worker {
    ctx: Arc<Ctx>,
    pod: Pod,
    uid: String,
    ns: String,
    name: String,
    dir: PathBuf,
    policy: RestartPolicy,
    stage: Stage,
    sandbox: Option<SandboxRecord>,
    sandbox_retry: Instant,
    sandbox_backoff: Duration,
    sandbox_error: Option<String>,
    init: Vec<Ctr>,
    main: Vec<Ctr>,
    start_time: Time,
    trackers: HashMap<(String, ProbeKind), Tracker>,
    /// Per container: the task waiting for its process.
    waiters: HashMap<String, JoinHandle<()>>,
    /// Per container: its probe tasks.
    probes: HashMap<String, Vec<JoinHandle<()>>>,
    tx: UnboundedSender<Event>,
    rx: UnboundedReceiver<Event>,
    /// The status last written (or read); `None` until known.
    written: Option<PodStatus>,
    /// Whether to write status at all (not for pods found already finished).
    report: bool,
    flush_retry: Option<Instant>,
}

/// Runs the worker of `pod` until it is deleted (or the runtime stops).
pub(crate) async fn run(ctx: Arc<Ctx>, pod: Pod, updates: watch::Receiver<Update>) {
    let span = tracing::info_span!(
        "pod",
        namespace = pod.metadata.namespace.as_deref().unwrap_or("default"),
        name = pod.metadata.name.as_deref().unwrap_or_default(),
        uid = pod.metadata.uid.as_deref().unwrap_or_default(),
    );
    Worker::new(ctx, pod).run(updates).instrument(span).await
}

fn deleting(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

impl Worker {
    fn new(ctx: Arc<Ctx>, pod: Pod) -> Worker {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let ns = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let now = Instant::now();
        let b = ctx.cfg.backoff;
        let ctrs = |cs: &[Container], init| -> Vec<Ctr> {
            cs.iter()
                .map(|c| {
                    Ctr::new(
                        &c.name,
                        c.image.as_deref().unwrap_or_default(),
                        init,
                        &b,
                        now,
                    )
                })
                .collect()
        };
        let (tx, rx) = unbounded_channel();
        Worker {
            dir: pod_dir(&ctx.cfg.state_dir, &ns, &name, &uid),
            policy: RestartPolicy::parse(spec.restart_policy.as_deref()),
            init: ctrs(spec.init_containers.as_deref().unwrap_or_default(), true),
            main: ctrs(&spec.containers, false),
            start_time: pod
                .status
                .as_ref()
                .and_then(|s| s.start_time.clone())
                .unwrap_or_else(status::now),
            written: pod.status.clone(),
            stage: Stage::Sandbox,
            sandbox: None,
            sandbox_retry: now,
            sandbox_backoff: b.initial,
            sandbox_error: None,
            trackers: HashMap::new(),
            waiters: HashMap::new(),
            probes: HashMap::new(),
            tx,
            rx,
            report: true,
            flush_retry: None,
            ctx,
            pod,
            uid,
            ns,
            name,
        }
    }

    async fn run(mut self, mut updates: watch::Receiver<Update>) {
        if deleting(&self.pod) {
            return self.terminate(stop::Ending::Graceful).await;
        }
        let phase = self.pod.status.as_ref().and_then(|s| s.phase.clone());
        if matches!(phase.as_deref(), Some("Succeeded") | Some("Failed")) {
            // Finished before this runtime started: never run again; release what is left.
            self.report = false;
            self.enter_terminal().await;
        }
        loop {
            self.step().await;
            self.flush().await;
            // The floor bounds the loop's rate should a timer ever be due but not acted on.
            let wake = self
                .next_wakeup()
                .max(Instant::now() + Duration::from_millis(10));
            tokio::select! {
                changed = updates.changed() => {
                    if changed.is_err() {
                        return; // the runtime is stopping: leave everything running
                    }
                    let update = updates.borrow_and_update().clone();
                    match update {
                        Update::Gone => return self.terminate(stop::Ending::Forced).await,
                        Update::Pod(p) if p.metadata.uid.as_deref() != Some(&self.uid) => {
                            return self.terminate(stop::Ending::Forced).await
                        }
                        Update::Pod(p) => {
                            self.pod = *p;
                            if deleting(&self.pod) {
                                return self.terminate(stop::Ending::Graceful).await;
                            }
                        }
                    }
                }
                Some(ev) = self.rx.recv() => self.on_event(ev),
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    async fn step(&mut self) {
        let now = Instant::now();
        match self.stage {
            Stage::Sandbox if now >= self.sandbox_retry => self.ensure_sandbox().await,
            Stage::Containers => self.run_containers(now).await,
            _ => {}
        }
    }

    fn next_wakeup(&self) -> Instant {
        let mut wake = Instant::now() + Duration::from_secs(3600);
        match self.stage {
            Stage::Sandbox => wake = wake.min(self.sandbox_retry),
            Stage::Containers => {
                // Only what `run_containers` may start: the pending init container, or
                // (all init containers done) the main ones.
                let eligible: Vec<&Ctr> = match self.init.iter().find(|c| !c.succeeded()) {
                    Some(init) => vec![init],
                    None => self.main.iter().collect(),
                };
                for c in eligible.into_iter().filter(|c| !c.is_running()) {
                    if let Some(t) = c.next_start {
                        wake = wake.min(t);
                    }
                }
            }
            Stage::Terminal => {}
        }
        if let Some(t) = self.flush_retry {
            wake = wake.min(t);
        }
        wake
    }

    fn ctr(&mut self, which: Which) -> &mut Ctr {
        match which {
            Which::Init(i) => &mut self.init[i],
            Which::Main(i) => &mut self.main[i],
        }
    }

    fn spec_of(&self, which: Which) -> Container {
        let spec = self.pod.spec.clone().unwrap_or_default();
        match which {
            Which::Init(i) => spec.init_containers.unwrap_or_default().swap_remove(i),
            Which::Main(i) => spec.containers[i].clone(),
        }
    }

    fn find(&self, name: &str) -> Option<Which> {
        if let Some(i) = self.main.iter().position(|c| c.name == name) {
            return Some(Which::Main(i));
        }
        self.init
            .iter()
            .position(|c| c.name == name)
            .map(Which::Init)
    }

    /// Starts what is due: the first unfinished init container, else the main ones.
    async fn run_containers(&mut self, now: Instant) {
        let due = |c: &Ctr| !c.is_running() && c.next_start.is_some_and(|t| t <= now);
        if let Some(i) = self.init.iter().position(|c| !c.succeeded()) {
            if due(&self.init[i]) {
                self.start(Which::Init(i)).await;
            }
        } else {
            for i in 0..self.main.len() {
                if due(&self.main[i]) {
                    self.start(Which::Main(i)).await;
                }
            }
        }
        if matches!(self.phase(), "Succeeded" | "Failed") {
            self.enter_terminal().await;
        }
    }

    fn phase(&self) -> &'static str {
        if self.stage == Stage::Sandbox {
            return "Pending";
        }
        phase(self.policy, &self.init, &self.main)
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Exited {
                name,
                instance,
                info,
                at,
            } => {
                let Some(which) = self.find(&name) else {
                    return;
                };
                let (policy, backoff) = (self.policy, self.ctx.cfg.backoff);
                let c = self.ctr(which);
                if c.instance != instance || !c.is_running() {
                    return;
                }
                let restart =
                    c.on_exit(info.code, info.known, policy, &backoff, Instant::now(), at);
                tracing::info!(container = %name, exit_code = info.code, restart, "container exited");
                self.waiters.remove(&name);
                self.abort_probes(&name);
            }
            Event::Probe {
                name,
                instance,
                kind,
                result,
            } => self.on_probe(&name, instance, kind, result),
        }
    }

    /// Writes the status when it changed.
    async fn flush(&mut self) {
        if !self.report {
            return;
        }
        let pod_ips = self
            .sandbox
            .as_ref()
            .map(|s| s.pod_ips.clone())
            .unwrap_or_default();
        let phase = self.phase();
        let mut main = self.main.clone();
        if let (Stage::Sandbox, Some(err)) = (self.stage, &self.sandbox_error) {
            for c in &mut main {
                c.state = CState::Waiting {
                    reason: "ContainerCreating".into(),
                    message: Some(format!("pod sandbox: {err}")),
                };
            }
        }
        let now = status::now();
        let input = status::Input {
            phase,
            init: &self.init,
            main: &main,
            pod_ips: &pod_ips,
            host_ip: self.ctx.cfg.host_ip,
            start_time: &self.start_time,
            now: &now,
        };
        if self.written.is_some()
            && self.written == Some(status::build(self.written.as_ref(), input))
        {
            return;
        }
        let result = write_status(&self.ctx.api, &self.ns, &self.name, &self.uid, |cur| {
            status::build(cur, input)
        })
        .await;
        self.flush_retry = None;
        match result {
            Ok(WriteOutcome::Stored(s)) | Ok(WriteOutcome::Unchanged(s)) => self.written = Some(s),
            Ok(WriteOutcome::Gone) => {}
            Ok(WriteOutcome::Contended) => {
                self.flush_retry = Some(Instant::now() + Duration::from_millis(200))
            }
            Err(e) => {
                tracing::warn!(error = %e, "writing pod status failed; retrying");
                self.flush_retry = Some(Instant::now() + Duration::from_secs(1));
            }
        }
    }

    /// Stops the probes of a container and forgets their results.
    fn abort_probes(&mut self, name: &str) {
        for t in self.probes.remove(name).into_iter().flatten() {
            t.abort();
        }
        self.trackers.retain(|(n, _), _| n != name);
    }
}
