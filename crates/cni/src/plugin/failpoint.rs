//! Crash injection for tests: `PODNET_CNI_FAILPOINT=<name>` makes the plugin abort
//! (`std::process::abort`, no unwinding, no cleanup) when it reaches that step, the way
//! a SIGKILL or a power cut would stop it. Names: `after-alloc`, `after-bridge`,
//! `after-veth`.

/// The environment variable naming the failpoint to hit.
pub const ENV: &str = "PODNET_CNI_FAILPOINT";

/// Aborts the process when `name` is the configured failpoint.
pub fn hit(name: &str) {
    if std::env::var_os(ENV).is_some_and(|v| v == name) {
        tracing::warn!(failpoint = name, "aborting at failpoint");
        std::process::abort();
    }
}
