//! Bringing a pod up: its sandbox (created or adopted), its containers (started or
//! adopted from their process records), their waiter and probe tasks, and what probe
//! results do.

use std::collections::BTreeMap;
use std::time::Instant;

use podnet_model::k8s_openapi::api::core::v1::Container;
use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use podnet_model::{Kind, Object};

use super::{probes, Event, Stage, Which, Worker};
use crate::dns::pod_hostnames;
use crate::env::{referenced, EnvSources, PodFacts};
use crate::launch::{plan_launch, Launch, DEFAULT_PATH};
use crate::names::ContainerFiles;
use crate::probe::{ProbeKind, Target, Timing, Tracker};
use crate::process::{self, ProcessRecord};
use crate::sandbox::{self, SandboxRecord};
use crate::status;

/// How the worker learns that a process ended.
enum Watch {
    Child(tokio::process::Child),
    Adopted(ProcessRecord),
}

impl Worker {
    /// Adopts a complete sandbox from the pod directory, or sets one up.
    pub(super) async fn ensure_sandbox(&mut self) {
        let ctx = self.ctx.clone();
        let _permit = ctx.sandboxes.acquire().await;
        let existing = SandboxRecord::load(&self.dir).filter(SandboxRecord::is_ready);
        let record = match existing {
            Some(record) => {
                if let Err(e) = sandbox::write_etc(&self.ctx.cfg, &self.pod, &record) {
                    tracing::warn!(error = %e, "refreshing /etc/netns files failed");
                }
                tracing::info!(netns = %record.netns, "adopted pod sandbox");
                self.sandbox = Some(record);
                self.adopt_containers();
                self.stage = Stage::Containers;
                return;
            }
            None => {
                self.discard_stale_processes();
                if let Err(e) = std::fs::create_dir_all(&self.dir) {
                    Err(crate::RuntimeError::io("creating", &self.dir)(e))
                } else {
                    sandbox::setup(&self.ctx.cfg, self.ctx.runner.clone(), &self.pod, &self.dir)
                        .await
                }
            }
        };
        match record {
            Ok(record) => {
                self.sandbox = Some(record);
                self.sandbox_error = None;
                self.stage = Stage::Containers;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?self.sandbox_backoff, "pod sandbox setup failed");
                self.sandbox_error = Some(e.to_string());
                self.sandbox_retry = Instant::now() + self.sandbox_backoff;
                self.sandbox_backoff = (self.sandbox_backoff * 2).min(self.ctx.cfg.backoff.max);
            }
        }
    }

    fn all(&self) -> Vec<Which> {
        (0..self.init.len())
            .map(Which::Init)
            .chain((0..self.main.len()).map(Which::Main))
            .collect()
    }

    /// Processes recorded for a sandbox that is gone: killed, their records dropped,
    /// their restart counts kept.
    fn discard_stale_processes(&mut self) {
        for which in self.all() {
            let name = self.ctr(which).name.clone();
            let files = ContainerFiles::new(&self.dir, &name);
            let Some(record) = ProcessRecord::load(&files.record) else {
                continue;
            };
            if process::group_running(&record) {
                tracing::warn!(
                    pid = record.pid,
                    "killing a container left from a lost sandbox"
                );
                process::signal_group(&record, nix::sys::signal::Signal::SIGKILL);
            }
            let _ = std::fs::remove_file(&files.record);
            let _ = std::fs::remove_file(&files.exit);
            let c = self.ctr(which);
            c.restart_count = record.restart_count;
            c.has_run = true;
        }
    }

    /// Takes over containers a previous runtime started in this sandbox.
    fn adopt_containers(&mut self) {
        let (policy, backoff) = (self.policy, self.ctx.cfg.backoff);
        for which in self.all() {
            let spec = self.spec_of(which);
            let files = ContainerFiles::new(&self.dir, &spec.name);
            let Some(record) = ProcessRecord::load(&files.record) else {
                continue;
            };
            let started_at = record
                .started_at
                .parse()
                .map(Time)
                .unwrap_or_else(|_| status::now());
            if record.is_alive() {
                tracing::info!(container = %spec.name, pid = record.pid, restart_count = record.restart_count,
                    "adopted running container");
                let env = self
                    .launch_of(&spec, &EnvSources::default())
                    .map(|l| l.env)
                    .unwrap_or_default();
                self.running(
                    which,
                    &spec,
                    record.clone(),
                    started_at,
                    Watch::Adopted(record),
                    env,
                );
            } else {
                let info = process::recorded_exit(&files.exit);
                let finished = std::fs::metadata(&files.exit)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| podnet_model::k8s_openapi::jiff::Timestamp::try_from(t).ok())
                    .and_then(|t| {
                        podnet_model::k8s_openapi::jiff::Timestamp::from_second(t.as_second()).ok()
                    })
                    .map(Time)
                    .unwrap_or_else(status::now);
                let c = self.ctr(which);
                c.on_started(record, started_at, (false, false));
                let restart = c.on_exit(
                    info.code,
                    info.known,
                    policy,
                    &backoff,
                    Instant::now(),
                    finished,
                );
                tracing::info!(container = %spec.name, exit_code = info.code, restart,
                    "container exited while the runtime was away");
            }
        }
    }

    fn launch_of(
        &self,
        spec: &Container,
        sources: &EnvSources,
    ) -> Result<Launch, crate::launch::Blocked> {
        let pod_ips = self
            .sandbox
            .as_ref()
            .map(|s| s.pod_ips.clone())
            .unwrap_or_default();
        let facts = PodFacts {
            pod: &self.pod,
            pod_ips: &pod_ips,
            host_ip: self.ctx.cfg.host_ip,
        };
        let podspec = self.pod.spec.clone().unwrap_or_default();
        let (hostname, _) = pod_hostnames(
            &podspec,
            &self.name,
            &self.ns,
            &self.ctx.cfg.dns.cluster_domain,
        );
        plan_launch(spec, facts, sources, &self.ctx.cfg.podnet_exe, &hostname)
    }

    /// The ConfigMaps and Secrets a container refers to, read from the store.
    async fn sources(&self, spec: &Container) -> EnvSources {
        let (cms, secrets) = referenced(spec);
        let mut out = EnvSources::default();
        for name in cms {
            let data = match self
                .ctx
                .api
                .get(Kind::ConfigMap, Some(&self.ns), &name)
                .await
            {
                Ok(Some(Object::ConfigMap(cm))) => Some(cm.data.unwrap_or_default()),
                _ => None,
            };
            out.config_maps.insert(name, data);
        }
        for name in secrets {
            let data = match self.ctx.api.get(Kind::Secret, Some(&self.ns), &name).await {
                Ok(Some(Object::Secret(s))) => {
                    let mut map: BTreeMap<String, String> = s.string_data.unwrap_or_default();
                    for (k, v) in s.data.unwrap_or_default() {
                        map.insert(k, String::from_utf8_lossy(&v.0).into_owned());
                    }
                    Some(map)
                }
                _ => None,
            };
            out.secrets.insert(name, data);
        }
        out
    }

    /// Starts one container's process.
    pub(super) async fn start(&mut self, which: Which) {
        let spec = self.spec_of(which);
        let backoff = self.ctx.cfg.backoff;
        let now = Instant::now();
        let sources = self.sources(&spec).await;
        let launch = match self.launch_of(&spec, &sources) {
            Ok(l) => l,
            Err(b) => {
                tracing::warn!(container = %spec.name, reason = b.reason, message = %b.message, "container cannot start");
                return self.ctr(which).block(b.reason, b.message, &backoff, now);
            }
        };
        if let Some(wd) = launch.working_dir.as_ref().filter(|wd| !wd.is_dir()) {
            let msg = format!(
                "container {:?}: workingDir {}: expected an existing directory on the node, found none",
                spec.name,
                wd.display()
            );
            return self
                .ctr(which)
                .block("CreateContainerError", msg, &backoff, now);
        }
        let Some(sandbox) = self.sandbox.clone() else {
            return;
        };
        let files = ContainerFiles::new(&self.dir, &spec.name);
        let prefix = sandbox.exec_prefix(&self.ctx.tools.ip);
        match process::spawn(&self.ctx.tools, &launch, &prefix, &files) {
            Err(e) => {
                tracing::warn!(container = %spec.name, error = %e, "starting container failed");
                self.ctr(which)
                    .block("RunContainerError", e.to_string(), &backoff, now);
            }
            Ok(sp) => {
                let started_at = status::now();
                let record = ProcessRecord {
                    pid: sp.pid,
                    start_ticks: sp.start_ticks,
                    started_at: started_at.0.to_string(),
                    restart_count: self.ctr(which).next_restart_count(),
                };
                if let Err(e) = record.store(&files.record) {
                    tracing::warn!(container = %spec.name, error = %e, "recording the container process failed");
                }
                tracing::info!(container = %spec.name, pid = sp.pid, argv = ?launch.argv,
                    restart_count = record.restart_count, "container started");
                self.running(
                    which,
                    &spec,
                    record,
                    started_at,
                    Watch::Child(sp.child),
                    launch.env,
                );
            }
        }
    }

    /// Marks a container running and starts its waiter and probe tasks.
    fn running(
        &mut self,
        which: Which,
        spec: &Container,
        record: ProcessRecord,
        started_at: Time,
        watch: Watch,
        env: Vec<(String, String)>,
    ) {
        let name = spec.name.clone();
        let has = (spec.startup_probe.is_some(), spec.readiness_probe.is_some());
        let c = self.ctr(which);
        c.on_started(record, started_at, has);
        let instance = c.instance;
        self.abort_probes(&name);
        let exit_file = ContainerFiles::new(&self.dir, &name).exit;
        let tx = self.tx.clone();
        let waiter_name = name.clone();
        let waiter = tokio::spawn(async move {
            let info = match watch {
                Watch::Child(child) => process::wait_child(child, &exit_file).await,
                Watch::Adopted(record) => process::wait_adopted(&record, &exit_file).await,
            };
            let _ = tx.send(Event::Exited {
                name: waiter_name,
                instance,
                info,
                at: status::now(),
            });
        });
        if let Some(old) = self.waiters.insert(name.clone(), waiter) {
            old.abort();
        }
        let Some(sandbox) = &self.sandbox else { return };
        let Some(pod_ip) = sandbox.pod_ips.first().copied() else {
            return;
        };
        let mut env = env;
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.push(("PATH".into(), DEFAULT_PATH.into()));
        }
        let target = Target {
            pod_ip,
            exec_prefix: sandbox.exec_prefix(&self.ctx.tools.ip),
            env,
            ports: spec.ports.clone().unwrap_or_default(),
        };
        let probes = [
            (ProbeKind::Startup, &spec.startup_probe),
            (ProbeKind::Readiness, &spec.readiness_probe),
            (ProbeKind::Liveness, &spec.liveness_probe),
        ];
        let mut tasks = Vec::new();
        for (kind, probe) in probes {
            let Some(probe) = probe.clone() else { continue };
            let timing = Timing::of(&probe);
            self.trackers
                .insert((name.clone(), kind), Tracker::new(kind, timing));
            let (tx, target, name) = (self.tx.clone(), target.clone(), name.clone());
            tasks.push(tokio::spawn(probes::probe_loop(
                probe, timing, target, tx, name, instance, kind,
            )));
        }
        self.probes.insert(name, tasks);
    }
}
