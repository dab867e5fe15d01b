//! Crash injection for tests: `PODNET_CNI_FAILPOINT=<name>` makes the plugin die by
//! SIGKILL (sent to itself with `kill -KILL <pid>`; no unwinding, no cleanup, no core
//! file) when it reaches that step, the way an OOM kill or a power cut would stop it.
//! Names: `after-alloc`, `after-bridge`, `after-veth`.

/// The environment variable naming the failpoint to hit.
pub const ENV: &str = "PODNET_CNI_FAILPOINT";

/// Dies when `name` is the configured failpoint.
pub fn hit(name: &str) {
    if std::env::var_os(ENV).is_some_and(|v| v == name) {
        tracing::warn!(failpoint = name, "killing the plugin at a failpoint");
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
        // Only reached when `kill` could not be run.
        std::process::abort();
    }
}
