//! The pod status the runtime reports, built from its containers (pure). Fields the
//! runtime does not own are kept from the stored status; condition transition times
//! are kept while a condition's status does not change.

use std::net::IpAddr;

use podnet_model::k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, PodCondition, PodIP, PodStatus,
};
use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use podnet_model::k8s_openapi::jiff::Timestamp;

use crate::container::{CState, Ctr, Term};

/// Now, in whole seconds (the precision Kubernetes times are stored with), so that a
/// status read back compares equal to the one written.
pub fn now() -> Time {
    let secs = Timestamp::now().as_second();
    Time(Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// Everything the runtime knows of a pod, for its status.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub phase: &'a str,
    pub init: &'a [Ctr],
    pub main: &'a [Ctr],
    pub pod_ips: &'a [IpAddr],
    pub host_ip: IpAddr,
    pub start_time: &'a Time,
    pub now: &'a Time,
}

const MANAGED: [&str; 4] = ["PodScheduled", "Initialized", "ContainersReady", "Ready"];

/// The new status: `current` with the runtime's fields replaced.
pub fn build(current: Option<&PodStatus>, input: Input<'_>) -> PodStatus {
    let mut status = current.cloned().unwrap_or_default();
    let terminal = matches!(input.phase, "Succeeded" | "Failed");
    let not_done: Vec<&str> = input
        .init
        .iter()
        .filter(|c| !c.succeeded())
        .map(|c| c.name.as_str())
        .collect();
    let unready: Vec<&str> = input
        .main
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    let cond = |type_: &str, ok: bool, reason: &str, message: String| {
        let previous = current
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == type_));
        let status = if ok { "True" } else { "False" }.to_string();
        let last_transition_time = match previous {
            Some(p) if p.status == status && p.last_transition_time.is_some() => {
                p.last_transition_time.clone()
            }
            _ => Some(input.now.clone()),
        };
        PodCondition {
            type_: type_.to_string(),
            status,
            last_transition_time,
            reason: (!ok).then(|| reason.to_string()),
            message: (!ok).then_some(message),
            ..PodCondition::default()
        }
    };
    let list = |names: &[&str]| format!("[{}]", names.join(" "));
    let ready_reason = if terminal {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    let ready_msg = if terminal {
        String::new()
    } else {
        format!("containers with unready status: {}", list(&unready))
    };
    let mut conditions = vec![
        cond("PodScheduled", true, "", String::new()),
        cond(
            "Initialized",
            not_done.is_empty(),
            "ContainersNotInitialized",
            format!("containers with incomplete status: {}", list(&not_done)),
        ),
        cond(
            "ContainersReady",
            unready.is_empty() && !terminal,
            ready_reason,
            ready_msg.clone(),
        ),
        cond(
            "Ready",
            unready.is_empty() && !terminal,
            ready_reason,
            ready_msg,
        ),
    ];
    let others = status
        .conditions
        .iter()
        .flatten()
        .filter(|c| !MANAGED.contains(&c.type_.as_str()))
        .cloned();
    conditions.extend(others);
    status.conditions = Some(conditions);
    status.phase = Some(input.phase.to_string());
    status.host_ip = Some(input.host_ip.to_string());
    status.host_ips = Some(vec![HostIP {
        ip: input.host_ip.to_string(),
    }]);
    status.pod_ip = input.pod_ips.first().map(ToString::to_string);
    status.pod_ips = (!input.pod_ips.is_empty()).then(|| {
        input
            .pod_ips
            .iter()
            .map(|ip| PodIP { ip: ip.to_string() })
            .collect()
    });
    status.start_time = Some(input.start_time.clone());
    status.init_container_statuses =
        (!input.init.is_empty()).then(|| input.init.iter().map(container_status).collect());
    status.container_statuses = Some(input.main.iter().map(container_status).collect());
    status
}

fn terminated(t: &Term) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: t.exit_code,
            reason: Some(t.reason.clone()),
            message: t.message.clone(),
            started_at: t.started_at.clone(),
            finished_at: Some(t.finished_at.clone()),
            container_id: t.container_id.clone(),
            ..ContainerStateTerminated::default()
        }),
        ..ContainerState::default()
    }
}

fn container_status(c: &Ctr) -> ContainerStatus {
    let state = match &c.state {
        CState::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..ContainerState::default()
        },
        CState::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(started_at.clone()),
            }),
            ..ContainerState::default()
        },
        CState::Terminated(t) => terminated(t),
    };
    let container_id = match &c.state {
        CState::Terminated(t) => t.container_id.clone(),
        _ => c.container_id(),
    };
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: String::new(),
        container_id,
        ready: c.is_running() && c.ready,
        started: Some(c.is_running() && c.started),
        restart_count: c.restart_count,
        state: Some(state),
        last_state: Some(c.last.as_ref().map(terminated).unwrap_or_default()),
        ..ContainerStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Backoff;
    use crate::process::ProcessRecord;
    use std::time::Instant;

    fn time(s: i64) -> Time {
        Time(Timestamp::from_second(1_800_000_000 + s).unwrap())
    }

    #[test]
    fn running_ready_pod_and_stable_transition_times() {
        let b = Backoff::default();
        let mut c = Ctr::new("app", "busybox", false, &b, Instant::now());
        let record = ProcessRecord {
            pid: 77,
            start_ticks: 1,
            started_at: String::new(),
            restart_count: 0,
        };
        c.on_started(record, time(1), (false, true));
        let main = [c.clone()];
        let ips: [IpAddr; 1] = ["10.244.1.5".parse().unwrap()];
        let input = Input {
            phase: "Running",
            init: &[],
            main: &main,
            pod_ips: &ips,
            host_ip: "172.18.0.2".parse().unwrap(),
            start_time: &time(0),
            now: &time(2),
        };
        let s1 = build(None, input);
        assert_eq!(s1.pod_ip.as_deref(), Some("10.244.1.5"));
        let ready = |s: &PodStatus| {
            s.conditions
                .as_ref()
                .unwrap()
                .iter()
                .find(|c| c.type_ == "Ready")
                .cloned()
                .unwrap()
        };
        assert_eq!(ready(&s1).status, "False");
        assert_eq!(
            ready(&s1).message.as_deref(),
            Some("containers with unready status: [app]")
        );
        let cs = &s1.container_statuses.as_ref().unwrap()[0];
        assert_eq!(cs.container_id.as_deref(), Some("podnet://77"));
        assert!(cs.state.as_ref().unwrap().running.is_some());

        // Same facts later: identical status (no write needed).
        let later = Input {
            now: &time(9),
            ..input
        };
        assert_eq!(build(Some(&s1), later), s1);

        // Ready flips: only Ready/ContainersReady get a new transition time.
        let mut c2 = c;
        c2.ready = true;
        let main2 = [c2];
        let s2 = build(
            Some(&s1),
            Input {
                main: &main2,
                ..later
            },
        );
        assert_eq!(ready(&s2).status, "True");
        assert_eq!(ready(&s2).last_transition_time, Some(time(9)));
        let sched = s2
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "PodScheduled")
            .cloned()
            .unwrap();
        assert_eq!(sched.last_transition_time, Some(time(2)));
    }
}
