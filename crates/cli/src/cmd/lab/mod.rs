//! `podnet lab up|down|exec`: a virtual cluster from network namespaces.

mod check;
mod down;
mod exec;
mod summary;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use podnet_lab::plan::STATE_ROOT;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Build a lab (default: 3 nodes) and apply manifests to it.
    Up(up::Args),
    /// Remove everything a lab made: namespaces, links, processes, files.
    Down(down::Args),
    /// Probe connectivity with real packets: localhost, pod-to-pod, node-to-pod.
    Check(check::Args),
    /// Run a command inside a lab host: a node, `external`, `internet` or `router`.
    Exec(exec::Args),
}

/// Where labs keep their state (overridable for tests with PODNET_LAB_ROOT).
pub fn state_root() -> PathBuf {
    std::env::var_os("PODNET_LAB_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(STATE_ROOT))
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Up(a) => up::run(a).await,
        Command::Down(a) => down::run(a),
        Command::Exec(a) => exec::run(a),
        Command::Check(a) => check::run(a).await,
    }
}
