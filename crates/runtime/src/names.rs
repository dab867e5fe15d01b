//! Names and paths derived from a pod: its network namespace, CNI container ID, pod
//! directory and the files in it. Pure.

use std::path::{Path, PathBuf};

/// The pod's network namespace: `<prefix>pod-<first 12 alphanumerics of uid>`.
pub fn pod_netns_name(prefix: &str, uid: &str) -> String {
    let short: String = uid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect();
    format!("{prefix}pod-{short}")
}

/// The pod's directory name: `<ns>_<name>_<uid>` (as the kubelet's log directories).
pub fn pod_dir_name(namespace: &str, name: &str, uid: &str) -> String {
    format!("{namespace}_{name}_{uid}")
}

/// The pod's directory under `state_dir`.
pub fn pod_dir(state_dir: &Path, namespace: &str, name: &str, uid: &str) -> PathBuf {
    state_dir
        .join("pods")
        .join(pod_dir_name(namespace, name, uid))
}

/// Where a container's stdout and stderr go: `<state_dir>/pods/<ns>_<name>_<uid>/<container>.log`.
pub fn log_path(
    state_dir: &Path,
    namespace: &str,
    name: &str,
    uid: &str,
    container: &str,
) -> PathBuf {
    pod_dir(state_dir, namespace, name, uid).join(format!("{container}.log"))
}

/// The uid part of a pod directory name (`<ns>_<name>_<uid>`; none of the three holds `_`).
pub fn uid_of_pod_dir(dir_name: &str) -> Option<&str> {
    let mut parts = dir_name.splitn(3, '_');
    let (_ns, _name, uid) = (parts.next()?, parts.next()?, parts.next()?);
    (!uid.is_empty()).then_some(uid)
}

/// The CNI container ID of a pod: its uid limited to the CNI charset
/// (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`); other characters become `-`.
pub fn cni_container_id(uid: &str) -> String {
    let mut id: String = uid
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        id.insert(0, 'p');
    }
    id
}

/// Files of one container in the pod directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerFiles {
    /// stdout + stderr, appended.
    pub log: PathBuf,
    /// The process record (JSON): pid, start time, restart count.
    pub record: PathBuf,
    /// Written by the shim when the container's process ends: its exit code.
    pub exit: PathBuf,
}

impl ContainerFiles {
    pub fn new(pod_dir: &Path, container: &str) -> Self {
        ContainerFiles {
            log: pod_dir.join(format!("{container}.log")),
            record: pod_dir.join(format!("{container}.state")),
            exit: pod_dir.join(format!("{container}.exit")),
        }
    }
}

/// The sandbox record of a pod directory.
pub fn sandbox_record(pod_dir: &Path) -> PathBuf {
    pod_dir.join("sandbox.json")
}

/// `/etc/netns/<netns>`: files `ip netns exec` bind-mounts over `/etc/<file>`.
pub fn etc_netns_dir(netns: &str) -> PathBuf {
    Path::new("/etc/netns").join(netns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netns_name_uses_twelve_alphanumerics() {
        assert_eq!(
            pod_netns_name("pn-lab-", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
            "pn-lab-pod-1b4e28ba2fa1"
        );
        assert_eq!(pod_netns_name("x-", "ab"), "x-pod-ab");
    }

    #[test]
    fn log_path_layout() {
        assert_eq!(
            log_path(Path::new("/s"), "default", "web", "u-1", "app"),
            PathBuf::from("/s/pods/default_web_u-1/app.log")
        );
        assert_eq!(uid_of_pod_dir("default_web_u-1"), Some("u-1"));
        assert_eq!(uid_of_pod_dir("junk"), None);
    }

    #[test]
    fn container_id_is_sanitised() {
        assert_eq!(cni_container_id("1b4e-28ba"), "1b4e-28ba");
        assert_eq!(cni_container_id("-a:b/c"), "p-a-b-c");
        assert_eq!(cni_container_id(""), "p");
    }
}
