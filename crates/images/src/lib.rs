//! Built-in equivalents of the test images upstream Kubernetes manifests use. The lab
//! runs pods as processes in network namespaces, with no container images: [`resolve`]
//! decides, from a container's image, `command` and `args`, whether it runs a built-in
//! (`agnhost netexec`, `serve-hostname`, `porter`, `connect`, `pause`, the `pause`
//! image), a command line with the machine's own binaries (busybox-like images), or
//! nothing (with a reason for a pod event). The node runtime execs built-ins as
//! `podnet image <argv...>`, which calls [`main_from_args`].
//!
//! Every server takes its bound sockets and a shutdown future, so tests bind port 0.
#![forbid(unsafe_code)]

mod cmd;
mod connect;
mod error;
mod flags;
mod hostname;
mod http;
mod image_ref;
mod net;
mod netexec;
mod pause;
mod porter;
mod resolve;
mod serve_hostname;

use std::future::Future;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

pub use cmd::{
    parse_argv, BuiltinCmd, ConnectArgs, ConnectProtocol, NetexecArgs, PauseArgs, PauseProgram,
    PorterArgs, ServeHostnameArgs, AGNHOST_SUBCOMMANDS,
};
pub use connect::{connect, ConnectFailure, FailureKind};
pub use error::{ImageError, ParseError};
pub use hostname::hostname;
pub use image_ref::ImageRef;
pub use net::{bind_tcp, bind_udp, BindTo};
pub use netexec::{run_shell, serve_netexec, NetexecConfig};
pub use pause::pause;
pub use porter::{porter_ports, serve_porter, PorterPort, PorterProtocol, PorterSockets};
pub use resolve::{resolve, Resolved, SUPPORTED};
pub use serve_hostname::{serve_hostname, ServeHostnameSockets};

/// The exit status a built-in asks its process to end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit(pub u8);

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.0)
    }
}

/// Binds what `cmd` serves and runs it until it ends or `shutdown` resolves.
pub async fn run(cmd: BuiltinCmd, shutdown: impl Future<Output = ()>) -> Result<Exit, ImageError> {
    match cmd {
        BuiltinCmd::Netexec(a) => {
            let http = bind_tcp(BindTo::Any, a.http_port, "netexec http")?;
            let mut udp = Vec::new();
            if let Some(port) = a.udp_port {
                if a.udp_listen_addresses.is_empty() {
                    udp.push(bind_udp(BindTo::Any, port, "netexec udp")?);
                }
                for ip in &a.udp_listen_addresses {
                    udp.push(bind_udp(BindTo::Ip(*ip), port, "netexec udp")?);
                }
            }
            if let Some(port) = a.sctp_port {
                tracing::warn!(
                    port,
                    "netexec: sctp is not supported in the lab; --sctp-port ignored"
                );
            }
            let mut cfg = NetexecConfig::new(hostname());
            cfg.delay_shutdown = Duration::from_secs(a.delay_shutdown_secs);
            cfg.http_override = a.http_override;
            Ok(serve_netexec(http, udp, cfg, shutdown).await)
        }
        BuiltinCmd::ServeHostname(a) => {
            let mut sockets = ServeHostnameSockets::default();
            if a.http {
                sockets.http = Some(bind_tcp(BindTo::Any, a.port, "serve-hostname http")?);
            }
            if a.tcp {
                sockets.tcp = Some(bind_tcp(BindTo::Any, a.port, "serve-hostname tcp")?);
            }
            if a.udp {
                sockets.udp = Some(bind_udp(BindTo::Any, a.port, "serve-hostname udp")?);
            }
            Ok(serve_hostname(sockets, hostname(), a.close, shutdown).await)
        }
        BuiltinCmd::Porter(a) => {
            let vars = std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
            let mut sockets = PorterSockets::default();
            for p in porter_ports(vars) {
                match p.protocol {
                    PorterProtocol::Tcp => sockets
                        .http
                        .push((bind_tcp(BindTo::Any, p.port, "porter tcp")?, p.value)),
                    PorterProtocol::Udp => sockets
                        .udp
                        .push((bind_udp(BindTo::Any, p.port, "porter udp")?, p.value)),
                    other => tracing::warn!(port = p.port, protocol = ?other,
                        "porter: not supported in the lab; skipped"),
                }
            }
            Ok(serve_porter(sockets, a.json_response, shutdown).await)
        }
        BuiltinCmd::Connect(a) => Ok(tokio::select! {
            result = connect(&a) => match result {
                Ok(()) => Exit(0),
                Err(failure) => {
                    stderr_line(&failure.report_line());
                    Exit(1)
                }
            },
            () = shutdown => Exit(143),
        }),
        BuiltinCmd::Pause(a) => Ok(pause(&a, shutdown).await),
    }
}

/// Parses `argv` (`["agnhost", "netexec", "--http-port=8080"]`, `["pause"]`) and runs it.
pub async fn run_argv(
    argv: &[String],
    shutdown: impl Future<Output = ()>,
) -> Result<Exit, ImageError> {
    run(parse_argv(argv)?, shutdown).await
}

/// A future that resolves on the first SIGTERM or SIGINT; the handlers are installed
/// when this is called (inside a tokio runtime), not when it is first polled.
pub fn shutdown_signal() -> Result<impl Future<Output = ()>, ImageError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(ImageError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ImageError::Signals)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    })
}

/// The whole program behind `podnet image <argv...>`: parses `argv`, runs the built-in
/// on its own single-threaded runtime until it ends or SIGTERM/SIGINT, and returns the
/// process's exit code. Errors are printed on stderr (exit 1). Call it outside any tokio
/// runtime; the caller sets up logging.
pub fn main_from_args(argv: &[String]) -> ExitCode {
    let result = parse_argv(argv).map_err(ImageError::from).and_then(|cmd| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ImageError::Runtime)?;
        runtime.block_on(async { run(cmd, shutdown_signal()?).await })
    });
    match result {
        Ok(exit) => exit.into(),
        Err(e) => {
            stderr_line(&format!("error: {}", error_chain(&e)));
            ExitCode::from(1)
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// One line on the process's stderr: the program's own output, which tests read.
fn stderr_line(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Resolves once `stop` holds true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
