//! The `podnet-cni` plugin executable: run by a container runtime with the `CNI_*`
//! environment and the network configuration on stdin. See docs/cni.md.
//!
//! Logs go to stderr (which runtimes capture) only when `PODNET_CNI_LOG` holds a
//! tracing filter such as `debug` or `podnet_cni=debug`; stdout carries the protocol.
//!
//! Two more uses, with an argument (a runtime passes none):
//! - `podnet-cni serve`: the plugin server of this network namespace (abstract unix
//!   socket `@podnet-cni`) for the `podnet` shim; logs at info unless
//!   `PODNET_CNI_LOG` says otherwise.
//! - `podnet-cni install DIR`: writes the shim as `DIR/podnet` and this program as
//!   `DIR/podnet-cni` (the shim's fallback when no server runs), e.g. `/opt/cni/bin`.

use std::path::Path;

fn main() {
    let arg = std::env::args().nth(1);
    let log = std::env::var_os("PODNET_CNI_LOG")
        .or_else(|| (arg.as_deref() == Some("serve")).then(|| "info".into()));
    if let Some(filter) = log {
        let filter = tracing_subscriber::EnvFilter::new(filter.to_string_lossy());
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let code = match arg.as_deref() {
        Some("serve") => serve(),
        Some("install") => match std::env::args().nth(2) {
            Some(dir) => report(install(Path::new(&dir))),
            None => report(Err("usage: podnet-cni install DIR".into())),
        },
        _ => podnet_cni::plugin::main(),
    };
    std::process::exit(code);
}

/// The outcome of `serve` or `install` for the person who ran it (a runtime never
/// passes these arguments, so stderr is free for a plain message).
#[allow(clippy::print_stderr)]
fn report(r: Result<(), String>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("podnet-cni: {e}");
            1
        }
    }
}

fn serve() -> i32 {
    match podnet_cni::plugin::server::bind() {
        Ok(listener) => {
            tracing::info!("serving CNI requests on @podnet-cni");
            let e = podnet_cni::plugin::server::serve(listener);
            report(Err(format!("CNI server stopped: {e}")))
        }
        Err(e) => report(Err(e.to_string())),
    }
}

/// Writes `dir/podnet` (the shim) and `dir/podnet-cni` (this program).
fn install(dir: &Path) -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| format!("locating this program: {e}"))?;
    let this = std::fs::read(&me).map_err(|e| format!("reading {}: {e}", me.display()))?;
    let full = dir.join("podnet-cni");
    podnet_cni::install::write_executable(&full, &this)
        .map_err(|e| format!("writing {}: {e}", full.display()))?;
    podnet_cni::install::shim(dir)
        .map(drop)
        .map_err(|e| format!("writing the shim into {}: {e}", dir.display()))
}
