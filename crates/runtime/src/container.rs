//! One container's life as the runtime tracks it, and the rules that move it: start,
//! exit, restart policy with back-off, readiness. Pure: times come in as arguments.

use std::time::{Duration, Instant};

use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::config::Backoff;
use crate::process::ProcessRecord;

/// `spec.restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    pub fn parse(s: Option<&str>) -> RestartPolicy {
        match s {
            Some("OnFailure") => RestartPolicy::OnFailure,
            Some("Never") => RestartPolicy::Never,
            _ => RestartPolicy::Always,
        }
    }
}

/// How a container process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub exit_code: i32,
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<Time>,
    pub finished_at: Time,
    pub container_id: Option<String>,
}

/// The container's state as `containerStatuses[].state` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CState {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: Time,
    },
    Terminated(Term),
}

/// One container of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ctr {
    pub name: String,
    pub image: String,
    pub init: bool,
    pub restart_count: i32,
    pub state: CState,
    pub last: Option<Term>,
    /// Readiness verdict while running (true without a readiness probe).
    pub ready: bool,
    /// Startup verdict while running (true without a startup probe).
    pub started: bool,
    /// When to start it next; `None`: not to be started (running, done, or blocked
    /// until something changes).
    pub next_start: Option<Instant>,
    pub backoff: Duration,
    /// The running process.
    pub record: Option<ProcessRecord>,
    /// Bumped at every start: events of older instances are ignored.
    pub instance: u64,
    /// Whether a process of it ever ran (so the next start is a restart).
    pub has_run: bool,
    /// Set when the runtime stops the process itself (a failed liveness or startup
    /// probe): the message its termination gets.
    pub killed_for: Option<String>,
}

impl Ctr {
    pub fn new(name: &str, image: &str, init: bool, backoff: &Backoff, now: Instant) -> Ctr {
        Ctr {
            name: name.to_string(),
            image: image.to_string(),
            init,
            restart_count: 0,
            state: CState::Waiting {
                reason: if init {
                    "PodInitializing"
                } else {
                    "ContainerCreating"
                }
                .to_string(),
                message: None,
            },
            last: None,
            ready: false,
            started: false,
            next_start: Some(now),
            backoff: backoff.initial,
            record: None,
            instance: 0,
            has_run: false,
            killed_for: None,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, CState::Running { .. })
    }

    /// Terminated with exit code 0 and not to be restarted.
    pub fn succeeded(&self) -> bool {
        matches!(&self.state, CState::Terminated(t) if t.exit_code == 0)
            && self.next_start.is_none()
    }

    /// `podnet://<pid>` of the running process.
    pub fn container_id(&self) -> Option<String> {
        self.record.as_ref().map(|r| format!("podnet://{}", r.pid))
    }

    /// Cannot start: stays waiting with `reason`; retried after the back-off.
    pub fn block(&mut self, reason: &str, message: String, backoff: &Backoff, now: Instant) {
        self.state = CState::Waiting {
            reason: reason.to_string(),
            message: Some(message),
        };
        self.next_start = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(backoff.max);
    }

    /// A process started (or was adopted) for it.
    pub fn on_started(
        &mut self,
        record: ProcessRecord,
        started_at: Time,
        has_probes: (bool, bool),
    ) {
        self.state = CState::Running { started_at };
        self.restart_count = record.restart_count;
        self.record = Some(record);
        self.instance += 1;
        self.has_run = true;
        self.next_start = None;
        self.killed_for = None;
        let (has_startup, has_readiness) = has_probes;
        self.started = !has_startup;
        self.ready = !has_startup && !has_readiness;
    }

    /// The restart count a new process gets.
    pub fn next_restart_count(&self) -> i32 {
        if self.has_run {
            self.restart_count + 1
        } else {
            self.restart_count
        }
    }

    /// Its process ended with `exit_code`. Applies the restart policy; returns whether
    /// it will be restarted.
    pub fn on_exit(
        &mut self,
        exit_code: i32,
        known: bool,
        policy: RestartPolicy,
        backoff: &Backoff,
        now: Instant,
        finished_at: Time,
    ) -> bool {
        let started_at = match &self.state {
            CState::Running { started_at } => Some(started_at.clone()),
            _ => None,
        };
        let ran_for = started_at
            .as_ref()
            .and_then(|s| finished_at.0.duration_since(s.0).try_into().ok())
            .unwrap_or(Duration::ZERO);
        let killed = self.killed_for.take();
        let (reason, message) = if !known {
            (
                "ContainerStatusUnknown".to_string(),
                Some("the container's process ended while the runtime was not watching and left no exit code".to_string()),
            )
        } else if exit_code == 0 {
            ("Completed".to_string(), killed)
        } else {
            ("Error".to_string(), killed)
        };
        let term = Term {
            exit_code,
            reason,
            message,
            started_at,
            finished_at,
            container_id: self.container_id(),
        };
        self.record = None;
        self.ready = false;
        self.started = false;
        let restart = match (policy, self.init) {
            (RestartPolicy::Never, _) => false,
            (_, true) | (RestartPolicy::OnFailure, false) => exit_code != 0,
            (RestartPolicy::Always, false) => true,
        };
        if !restart {
            self.state = CState::Terminated(term);
            self.next_start = None;
            return false;
        }
        if ran_for >= backoff.max {
            self.backoff = backoff.initial;
        }
        let wait = self.backoff;
        self.state = CState::Waiting {
            reason: "CrashLoopBackOff".to_string(),
            message: Some(format!(
                "back-off {}s restarting failed container={}",
                wait.as_secs_f32(),
                self.name
            )),
        };
        self.last = Some(term);
        self.next_start = Some(now + wait);
        self.backoff = (self.backoff * 2).min(backoff.max);
        true
    }
}

/// The pod phase from its containers, as the kubelet's `getPhase`.
pub fn phase(policy: RestartPolicy, init: &[Ctr], main: &[Ctr]) -> &'static str {
    for c in init {
        if let CState::Terminated(t) = &c.state {
            if t.exit_code != 0 && c.next_start.is_none() {
                return "Failed";
            }
        }
    }
    if !init.iter().all(Ctr::succeeded) {
        return "Pending";
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in main {
        match &c.state {
            CState::Running { .. } => running += 1,
            CState::Terminated(t) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            CState::Waiting { .. } if c.last.is_some() => stopped += 1,
            CState::Waiting { .. } => waiting += 1,
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        if policy == RestartPolicy::Always {
            "Running"
        } else if stopped == succeeded {
            "Succeeded"
        } else if policy == RestartPolicy::Never {
            "Failed"
        } else {
            "Running"
        }
    } else {
        "Pending"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podnet_model::k8s_openapi::jiff::Timestamp;

    fn t(secs: i64) -> Time {
        Time(Timestamp::from_second(1_800_000_000 + secs).unwrap())
    }

    fn rec(rc: i32) -> ProcessRecord {
        ProcessRecord {
            pid: 10,
            start_ticks: 1,
            started_at: String::new(),
            restart_count: rc,
        }
    }

    #[test]
    fn always_restarts_with_growing_backoff() {
        let b = Backoff::default();
        let now = Instant::now();
        let mut c = Ctr::new("c", "busybox", false, &b, now);
        c.on_started(rec(c.next_restart_count()), t(0), (false, false));
        assert!(c.ready);
        assert!(c.on_exit(1, true, RestartPolicy::Always, &b, now, t(1)));
        assert_eq!(c.next_start, Some(now + Duration::from_secs(1)));
        assert!(matches!(&c.state, CState::Waiting { reason, .. } if reason == "CrashLoopBackOff"));
        assert_eq!(c.last.as_ref().map(|l| l.reason.as_str()), Some("Error"));
        assert_eq!(
            phase(RestartPolicy::Always, &[], std::slice::from_ref(&c)),
            "Running"
        );
        assert_eq!(c.next_restart_count(), 1);
        c.on_started(rec(1), t(2), (false, true));
        assert!(!c.ready);
        assert!(c.on_exit(1, true, RestartPolicy::Always, &b, now, t(3)));
        assert_eq!(c.next_start, Some(now + Duration::from_secs(2)));
        // A long run resets the back-off.
        c.on_started(rec(2), t(10), (false, false));
        assert!(c.on_exit(0, true, RestartPolicy::Always, &b, now, t(100)));
        assert_eq!(c.next_start, Some(now + Duration::from_secs(1)));
    }

    #[test]
    fn never_and_on_failure() {
        let b = Backoff::default();
        let now = Instant::now();
        let mut c = Ctr::new("c", "i", false, &b, now);
        c.on_started(rec(0), t(0), (false, false));
        assert!(!c.on_exit(1, true, RestartPolicy::Never, &b, now, t(1)));
        assert_eq!(
            phase(RestartPolicy::Never, &[], std::slice::from_ref(&c)),
            "Failed"
        );

        let mut c = Ctr::new("c", "i", false, &b, now);
        c.on_started(rec(0), t(0), (false, false));
        assert!(!c.on_exit(0, true, RestartPolicy::OnFailure, &b, now, t(1)));
        assert_eq!(
            phase(RestartPolicy::OnFailure, &[], std::slice::from_ref(&c)),
            "Succeeded"
        );

        let mut init = Ctr::new("i", "i", true, &b, now);
        assert_eq!(
            phase(RestartPolicy::Always, std::slice::from_ref(&init), &[]),
            "Pending"
        );
        init.on_started(rec(0), t(0), (false, false));
        assert!(init.on_exit(2, true, RestartPolicy::Always, &b, now, t(1)));
        assert_eq!(
            phase(RestartPolicy::Always, std::slice::from_ref(&init), &[]),
            "Pending"
        );
        init.on_started(rec(1), t(2), (false, false));
        assert!(!init.on_exit(2, true, RestartPolicy::Never, &b, now, t(3)));
        assert_eq!(
            phase(RestartPolicy::Never, std::slice::from_ref(&init), &[]),
            "Failed"
        );
    }
}
