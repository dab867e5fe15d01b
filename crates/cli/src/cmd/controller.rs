//! `podnet controller`: allocators and controllers, leader-elected through the store.
//! Start as many as you like; one is active, the others take over within the lease TTL.

use std::process::ExitCode;
use std::time::Duration;

use podnet_controller::ControllerOptions;

#[derive(clap::Args)]
pub struct Args {
    /// Identity written to the leader lease (default: HOSTNAME-PID).
    #[arg(long)]
    id: Option<String>,
    /// Leader lease TTL in seconds: a standby takes over within this time of the
    /// leader's death.
    #[arg(long, default_value_t = 5)]
    lease_ttl: u64,
    /// Full reconcile (repair, release leaks) every this many seconds.
    #[arg(long, default_value_t = 60)]
    resync: u64,
}

pub async fn run(store: &str, args: Args) -> anyhow::Result<ExitCode> {
    let store = super::open(store).await?;
    let opts = ControllerOptions {
        identity: args.id,
        lease_ttl: Duration::from_secs(args.lease_ttl),
        resync_interval: Duration::from_secs(args.resync.max(1)),
        ..ControllerOptions::default()
    };
    podnet_controller::run(store, opts, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the controller");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutting down");
}
