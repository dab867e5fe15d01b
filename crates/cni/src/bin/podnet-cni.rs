//! The `podnet-cni` plugin executable: run by a container runtime with the `CNI_*`
//! environment and the network configuration on stdin. See docs/cni.md.
//!
//! Logs go to stderr (which runtimes capture) only when `PODNET_CNI_LOG` holds a
//! tracing filter such as `debug` or `podnet_cni=debug`; stdout carries the protocol.

fn main() {
    if let Some(filter) = std::env::var_os("PODNET_CNI_LOG") {
        let filter = tracing_subscriber::EnvFilter::new(filter.to_string_lossy());
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    std::process::exit(podnet_cni::plugin::main());
}
