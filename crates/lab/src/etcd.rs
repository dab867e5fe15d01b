//! The lab's etcd: three members, each in its own namespace on the underlay
//! (172.18.0.201-203), so that nodes reach the store as separate hosts would. Each
//! member also listens on a unix socket in the lab's state directory, which is how
//! `podnet` outside the lab's namespaces reaches it (`etcd+unix://...`).

use std::time::{Duration, Instant};

use crate::error::LabError;
use crate::plan::{LabPlan, Role};
use crate::procs;

/// Starts the members (not waiting for them).
pub fn start(plan: &LabPlan) -> Result<(), LabError> {
    let members: Vec<_> = plan.hosts.iter().filter(|h| h.role == Role::Etcd).collect();
    let cluster: Vec<String> = members
        .iter()
        .map(|h| format!("{}=http://{}:2380", h.name, h.ip))
        .collect();
    let etcd = which("etcd").ok_or_else(|| {
        LabError::Failed("store: etcd needs the etcd binary: apt-get install etcd-server".into())
    })?;
    for m in &members {
        let data = plan.state_dir.join(format!("{}.data", m.name));
        let argv = vec![
            etcd.clone(),
            format!("--name={}", m.name),
            format!("--data-dir={}", data.display()),
            format!(
                "--listen-client-urls=http://{}:2379,unix://{}:2379",
                m.ip, m.name
            ),
            format!("--advertise-client-urls=http://{}:2379", m.ip),
            format!("--listen-peer-urls=http://{}:2380", m.ip),
            format!("--initial-advertise-peer-urls=http://{}:2380", m.ip),
            format!("--initial-cluster={}", cluster.join(",")),
            "--initial-cluster-state=new".into(),
            format!("--initial-cluster-token=pn-{}", plan.name),
            "--heartbeat-interval=50".into(),
            "--election-timeout=500".into(),
        ];
        procs::spawn_in(&plan.state_dir, &m.name, &m.netns, &argv, &[])?;
    }
    Ok(())
}

/// Opens the store, retrying (bounded) until it answers.
pub async fn open_when_ready(
    url: &str,
    timeout: Duration,
) -> Result<std::sync::Arc<dyn podnet_store::Store>, LabError> {
    let deadline = Instant::now() + timeout;
    loop {
        let err = match podnet_store::open(url).await {
            Ok(store) => match store.revision().await {
                Ok(_) => return Ok(store),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            return Err(LabError::Failed(format!(
                "the store {url} did not answer within {timeout:?}: {err}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn which(bin: &str) -> Option<String> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}
