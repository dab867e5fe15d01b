//! Probe tasks of running containers and what their results do: startup gates the
//! others, readiness drives `ready`, liveness and a startup probe that gives up stop the
//! container (which then restarts by the restart policy).

use std::time::{Duration, Instant};

use podnet_model::k8s_openapi::api::core::v1::Probe;
use tokio::sync::mpsc::UnboundedSender;

use super::{Event, Worker};
use crate::probe::{attempt, ProbeKind, Target, Timing};

impl Worker {
    pub(super) fn on_probe(
        &mut self,
        name: &str,
        instance: u64,
        kind: ProbeKind,
        result: Result<(), String>,
    ) {
        let Some(which) = self.find(name) else { return };
        let c = self.ctr(which).clone();
        if c.instance != instance || !c.is_running() {
            return;
        }
        let has_readiness = self
            .trackers
            .contains_key(&(name.to_string(), ProbeKind::Readiness));
        let Some(tracker) = self.trackers.get_mut(&(name.to_string(), kind)) else {
            return;
        };
        let message = result.as_ref().err().cloned().unwrap_or_default();
        let flip = tracker.observe(result.is_ok(), &message);
        let failed_out = tracker.failed_out();
        match kind {
            ProbeKind::Startup if flip == Some(true) => {
                let c = self.ctr(which);
                c.started = true;
                c.ready = !has_readiness;
                tracing::info!(container = name, "startup probe passed");
            }
            ProbeKind::Startup if !c.started && failed_out => {
                self.kill(which, format!("startup probe failed: {message}"));
            }
            ProbeKind::Readiness if c.started => {
                if let Some(ready) = flip {
                    tracing::info!(container = name, ready, message = %message, "readiness changed");
                    self.ctr(which).ready = ready;
                }
            }
            ProbeKind::Liveness if c.started && flip == Some(false) => {
                self.kill(which, format!("liveness probe failed: {message}"));
            }
            _ => {}
        }
    }
}

/// Runs one probe of one container instance forever, reporting every result.
pub(super) async fn probe_loop(
    probe: Probe,
    timing: Timing,
    target: Target,
    tx: UnboundedSender<Event>,
    name: String,
    instance: u64,
    kind: ProbeKind,
) {
    tokio::time::sleep(timing.initial_delay).await;
    loop {
        let started = Instant::now();
        let result = attempt(&probe, &target, timing.timeout).await;
        let event = Event::Probe {
            name: name.clone(),
            instance,
            kind,
            result,
        };
        if tx.send(event).is_err() {
            return;
        }
        let spent = started.elapsed();
        tokio::time::sleep(
            timing
                .period
                .saturating_sub(spent)
                .max(Duration::from_millis(100)),
        )
        .await;
    }
}
