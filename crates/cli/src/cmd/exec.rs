//! `podnet exec POD [-n NS] [-c CONTAINER] -- CMD...`: a command in a pod's network
//! namespace, with the pod's /etc/resolv.conf and /etc/hosts (`ip netns exec` binds
//! `/etc/netns/<ns>/*` over them in a private mount namespace).

use std::process::{Command, ExitCode};

use anyhow::{bail, Context};

#[derive(clap::Args)]
pub struct Args {
    /// The pod.
    pod: String,
    /// Its namespace.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// The container (all containers of a pod share its network; accepted for kubectl
    /// compatibility and checked to exist).
    #[arg(short, long)]
    container: Option<String>,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

pub async fn run(store: &str, args: Args) -> anyhow::Result<ExitCode> {
    let api = super::api(store).await?;
    let pod = super::get_pod(&api, &args.namespace, &args.pod).await?;
    if let Some(c) = &args.container {
        let known: Vec<String> = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
            .collect();
        if !known.contains(c) {
            bail!(
                "pod {} has no container {c:?}: expected one of {}",
                args.pod,
                known.join(", ")
            );
        }
    }
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let netns = pod_netns(&uid).with_context(|| {
        format!(
            "pod {}/{} has no sandbox on this machine (not started yet, or not in a lab)",
            args.namespace, args.pod
        )
    })?;
    run_in_netns(&netns, &args.command)
}

/// The network namespace of the pod with `uid`, found by the runtime's naming
/// (`<prefix>pod-<first 12 alphanumerics of the uid>`).
pub fn pod_netns(uid: &str) -> Option<String> {
    let short: String = uid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect();
    if short.is_empty() {
        return None;
    }
    let suffix = format!("pod-{short}");
    std::fs::read_dir("/run/netns")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(&suffix))
}

/// Runs `argv` with `ip netns exec NETNS`, passing the terminal through; returns its
/// exit status.
pub fn run_in_netns(netns: &str, argv: &[String]) -> anyhow::Result<ExitCode> {
    let status = Command::new("ip")
        .args(["netns", "exec", netns])
        .args(argv)
        .status()
        .context("running ip netns exec (install iproute2)")?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}
