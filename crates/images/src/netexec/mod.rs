//! `agnhost netexec`: an HTTP server with upstream's endpoints (`/hostname`, `/clientip`,
//! `/echo`, `/dial`, `/shell`, `/exit`, ...) and UDP servers answering `hostname`,
//! `echo <msg>` and `clientip`.

mod dial;
mod routes;
mod shell;
mod udp;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::Exit;

pub use shell::run_shell;

/// How long in-flight requests may finish after a SIGTERM (and any delay) has passed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The least time `/exit` leaves for its own response to be written.
const EXIT_MIN_GRACE: Duration = Duration::from_secs(1);

/// What netexec serves, apart from its sockets.
#[derive(Debug, Clone)]
pub struct NetexecConfig {
    /// Answered by `/hostname` and the UDP `hostname` command.
    pub hostname: String,
    /// Keep serving this long after the shutdown future resolves (`--delay-shutdown`).
    pub delay_shutdown: Duration,
    /// Serve every request as this path and query (`--http-override`).
    pub http_override: Option<String>,
    /// The shell `/shell` runs commands with (upstream: `/bin/sh`).
    pub shell: PathBuf,
}

impl NetexecConfig {
    /// Upstream's defaults with the given hostname.
    pub fn new(hostname: impl Into<String>) -> Self {
        NetexecConfig {
            hostname: hostname.into(),
            delay_shutdown: Duration::ZERO,
            http_override: None,
            shell: PathBuf::from("/bin/sh"),
        }
    }
}

/// A request from `/exit` or `/shutdown` to stop with an exit code.
#[derive(Debug)]
struct ExitRequest {
    code: u8,
    grace: Duration,
}

/// What the handlers share.
struct State {
    cfg: NetexecConfig,
    /// Set once the shutdown future resolved: `/readyz` answers 503.
    terminating: AtomicBool,
    /// Cleared when a UDP server stops on an error: `/healthz` answers 412.
    udp_healthy: AtomicBool,
    exit_tx: mpsc::Sender<ExitRequest>,
}

/// Serves netexec on the given sockets until `shutdown` resolves (then keeps serving
/// for `cfg.delay_shutdown`, exiting 0) or a client asks for `/exit` or `/shutdown`
/// (exiting with the code asked for).
pub async fn serve_netexec(
    http: TcpListener,
    udp: Vec<UdpSocket>,
    cfg: NetexecConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Exit {
    let (exit_tx, mut exit_rx) = mpsc::channel(4);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (code_tx, code_rx) = oneshot::channel();
    let delay = cfg.delay_shutdown;
    let state = Arc::new(State {
        cfg,
        terminating: AtomicBool::new(false),
        udp_healthy: AtomicBool::new(true),
        exit_tx,
    });
    if let Ok(addr) = http.local_addr() {
        tracing::info!(%addr, "netexec: serving HTTP");
    }

    let mut udp_tasks = JoinSet::new();
    for sock in udp {
        let (state, stop) = (state.clone(), stop_rx.clone());
        udp_tasks.spawn(async move {
            if let Err(error) = udp::serve(sock, &state.cfg.hostname, stop).await {
                tracing::error!(%error, "netexec: the UDP server stopped");
                state.udp_healthy.store(false, Ordering::SeqCst);
            }
        });
    }

    let stopper_state = state.clone();
    let stopper = async move {
        let (code, grace) = tokio::select! {
            () = shutdown => {
                stopper_state.terminating.store(true, Ordering::SeqCst);
                if !delay.is_zero() {
                    tracing::info!(?delay, "netexec: shutting down after the delay");
                    tokio::time::sleep(delay).await;
                }
                (0, SHUTDOWN_GRACE)
            }
            Some(req) = exit_rx.recv() => (req.code, req.grace.max(EXIT_MIN_GRACE)),
        };
        let _ = stop_tx.send(true);
        let _ = code_tx.send(code);
        grace
    };
    let handler = move |req, peer| routes::handle(state.clone(), req, peer);
    crate::http::serve(http, handler, stopper).await;
    udp_tasks.join_all().await;
    let code = code_rx.await.unwrap_or(0);
    tracing::info!(code, "netexec: exiting");
    Exit(code)
}
