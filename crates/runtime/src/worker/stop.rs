//! Bringing a pod down: killing one container (failed probes), finishing a completed
//! pod (release its network), and the deletion teardown (SIGTERM, grace period,
//! SIGKILL, CNI DEL, namespace and files, then the final delete from the store).

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{Stage, Which, Worker};
use crate::names::ContainerFiles;
use crate::process::{self, ProcessRecord};
use crate::sandbox::{self, SandboxRecord};
use crate::writeback::final_delete;

/// How a pod is being deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// `deletionTimestamp` set: graceful stop, then the final delete from the store.
    Graceful,
    /// The key disappeared: stop at once; nothing to delete.
    Forced,
}

/// How long a group that got SIGKILL may take to vanish.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Stops process groups: SIGTERM, up to `grace` for them to end, then SIGKILL and a
/// bounded wait. A grace of zero sends SIGKILL at once.
pub(crate) async fn stop_groups(records: &[ProcessRecord], grace: Duration) {
    let running = |rs: &[ProcessRecord]| {
        rs.iter()
            .filter(|r| process::group_running(r))
            .cloned()
            .collect::<Vec<_>>()
    };
    let mut left = running(records);
    if !grace.is_zero() {
        for r in &left {
            process::signal_group(r, Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while !left.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            left = running(&left);
        }
    }
    for r in &left {
        tracing::info!(pid = r.pid, "killing container process group");
        process::signal_group(r, Signal::SIGKILL);
    }
    let deadline = Instant::now() + KILL_WAIT;
    while !left.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = running(&left);
    }
    for r in &left {
        tracing::warn!(pid = r.pid, "container process group survived SIGKILL");
    }
}

impl Worker {
    /// The pod's grace period for deletion (`deletionGracePeriodSeconds`, else
    /// `terminationGracePeriodSeconds`, else 30 s).
    fn grace(&self) -> Duration {
        let secs = self
            .pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30);
        Duration::from_secs(secs.max(0) as u64)
    }

    /// Stops one container because a probe failed; its exit then restarts it (or not)
    /// by the restart policy.
    pub(super) fn kill(&mut self, which: Which, message: String) {
        let grace = self.grace_for_probe_kill(which);
        let c = self.ctr(which);
        let Some(record) = c.record.clone() else {
            return;
        };
        tracing::info!(container = %c.name, message = %message, "stopping container");
        c.killed_for = Some(message);
        let name = c.name.clone();
        self.abort_probes(&name);
        tokio::spawn(async move { stop_groups(&[record], grace).await });
    }

    fn grace_for_probe_kill(&self, which: Which) -> Duration {
        let spec = self.spec_of(which);
        let probe_grace = spec
            .liveness_probe
            .as_ref()
            .and_then(|p| p.termination_grace_period_seconds)
            .or_else(|| {
                spec.startup_probe
                    .as_ref()
                    .and_then(|p| p.termination_grace_period_seconds)
            });
        match probe_grace {
            Some(s) => Duration::from_secs(s.max(0) as u64),
            None => self.grace(),
        }
    }

    /// The pod finished (Succeeded or Failed): nothing may run any more and its network
    /// is released. The pod directory (logs) stays until the pod is deleted.
    pub(super) async fn enter_terminal(&mut self) {
        self.stage = Stage::Terminal;
        let records: Vec<ProcessRecord> = self.all_records();
        stop_groups(&records, Duration::ZERO).await;
        let record = self
            .sandbox
            .clone()
            .or_else(|| SandboxRecord::load(&self.dir));
        if let Some(record) = record {
            let _permit = self.ctx.sandboxes.acquire().await;
            match sandbox::teardown(&self.ctx.cfg, self.ctx.runner.clone(), &record).await {
                Ok(()) => {
                    let _ = std::fs::remove_file(crate::names::sandbox_record(&self.dir));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "releasing the network of a finished pod failed")
                }
            }
        }
        tracing::info!(phase = self.phase(), "pod finished");
    }

    /// Every process record in the pod directory (running containers and any left over).
    fn all_records(&self) -> Vec<ProcessRecord> {
        let names = self.init.iter().chain(&self.main).map(|c| c.name.clone());
        names
            .filter_map(|n| ProcessRecord::load(&ContainerFiles::new(&self.dir, &n).record))
            .collect()
    }

    /// Deletion: stops every container, tears the sandbox down, removes the pod
    /// directory and, when graceful, deletes the pod from the store.
    pub(super) async fn terminate(mut self, ending: Ending) {
        let grace = match ending {
            Ending::Graceful => self.grace(),
            Ending::Forced => Duration::ZERO,
        };
        tracing::info!(?ending, grace_secs = grace.as_secs(), "stopping pod");
        let names: Vec<String> = self.probes.keys().cloned().collect();
        for n in names {
            self.abort_probes(&n);
        }
        stop_groups(&self.all_records(), grace).await;
        for (_, w) in self.waiters.drain() {
            w.abort();
        }
        let record = self
            .sandbox
            .take()
            .or_else(|| SandboxRecord::load(&self.dir));
        if let Some(record) = record {
            let _permit = self.ctx.sandboxes.acquire().await;
            for attempt in 0..3u32 {
                match sandbox::teardown(&self.ctx.cfg, self.ctx.runner.clone(), &record).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, attempt, "pod sandbox teardown failed");
                        tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                    }
                }
            }
        }
        if let Err(e) = sandbox::remove_dir(&self.dir) {
            tracing::warn!(error = %e, "removing the pod directory failed");
        }
        if ending == Ending::Graceful {
            for attempt in 0..5u32 {
                match final_delete(&self.ctx.api, &self.ns, &self.name, &self.uid).await {
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, attempt, "final delete of the pod failed");
                        tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                    }
                }
            }
        }
        tracing::info!("pod stopped and removed");
    }
}
