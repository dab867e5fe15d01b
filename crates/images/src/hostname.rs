//! The name a built-in reports as its hostname.
//!
//! In Kubernetes a container's hostname is its pod's name (its own UTS namespace). The
//! lab's pods share the node's UTS namespace, so the node runtime passes the pod's name
//! in `HOSTNAME`; without it the kernel's hostname is used.

use std::path::Path;

/// `HOSTNAME` if set and not empty, else `/proc/sys/kernel/hostname`, else `localhost`.
pub fn hostname() -> String {
    hostname_from(
        std::env::var("HOSTNAME").ok(),
        Path::new("/proc/sys/kernel/hostname"),
    )
}

fn hostname_from(env: Option<String>, kernel_file: &Path) -> String {
    if let Some(name) = env.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()) {
        return name;
    }
    std::fs::read_to_string(kernel_file)
        .map(|n| n.trim().to_string())
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_wins_then_kernel_then_localhost() {
        let missing = Path::new("/nonexistent/hostname");
        assert_eq!(hostname_from(Some("web-0".into()), missing), "web-0");
        assert_eq!(hostname_from(Some(" ".into()), missing), "localhost");
        assert_eq!(hostname_from(None, missing), "localhost");
        let kernel = Path::new("/proc/sys/kernel/hostname");
        if kernel.exists() {
            let expected = std::fs::read_to_string(kernel).unwrap().trim().to_string();
            assert_eq!(hostname_from(None, kernel), expected);
        }
    }
}
