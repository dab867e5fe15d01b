//! What a node runtime needs to know: its node, where CNI lives, where to keep state,
//! how to run built-in images and what DNS pods get.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

/// The cluster DNS every `ClusterFirst` pod gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    /// The kube-dns Service's ClusterIP.
    pub nameserver: IpAddr,
    /// The cluster domain: search paths are `<ns>.svc.<domain> svc.<domain> <domain>`.
    pub cluster_domain: String,
    /// `options ndots:N` of cluster-DNS pods.
    pub ndots: u8,
    /// The node's resolv.conf, copied for `dnsPolicy: Default` pods.
    pub node_resolv_conf: PathBuf,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            nameserver: IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10)),
            cluster_domain: "cluster.local".into(),
            ndots: 5,
            node_resolv_conf: PathBuf::from("/etc/resolv.conf"),
        }
    }
}

/// Restart back-off of crashing containers: doubles from `initial` up to `max`, and
/// starts over once a container ran for `max` without exiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
        }
    }
}

/// Everything [`crate::run`] needs besides the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// `spec.nodeName` of the pods this runtime runs.
    pub node_name: String,
    /// The node's IP (`status.hostIP`; the pod IP of `hostNetwork` pods).
    pub host_ip: IpAddr,
    /// Pod network namespaces are `<netns_prefix>pod-<first 12 alphanumerics of the uid>`.
    pub netns_prefix: String,
    /// The CNI configuration directory; its lexically first file is the network.
    pub cni_conf_dir: PathBuf,
    /// Where CNI plugins are looked up (`CNI_PATH`).
    pub cni_plugin_dirs: Vec<PathBuf>,
    /// The CNI result cache (`<dir>/results/...`).
    pub cni_cache_dir: PathBuf,
    /// Per-pod directories (`<state_dir>/pods/<ns>_<name>_<uid>/`): container logs,
    /// process records, exit codes and the sandbox record.
    pub state_dir: PathBuf,
    /// The `podnet` executable; built-in images run as `<podnet_exe> image <argv...>`.
    pub podnet_exe: PathBuf,
    /// DNS for pods.
    pub dns: DnsSettings,
    /// When the calling process is not itself in the node's network namespace (e.g.
    /// `lab down` calling [`crate::teardown_all`]), the node namespace's name: CNI
    /// plugins then run under `ip netns exec <node_netns>`. `None`: the caller's
    /// namespace is the node's.
    pub node_netns: Option<String>,
    /// How many pods set up or tear down their sandbox at the same time.
    pub max_parallel_sandboxes: usize,
    /// Container restart back-off.
    pub backoff: Backoff,
}

impl RuntimeConfig {
    /// A configuration with the lab's defaults for everything but the node and paths.
    pub fn new(
        node_name: impl Into<String>,
        host_ip: IpAddr,
        netns_prefix: impl Into<String>,
        state_dir: impl Into<PathBuf>,
        podnet_exe: impl Into<PathBuf>,
    ) -> Self {
        let state_dir = state_dir.into();
        RuntimeConfig {
            node_name: node_name.into(),
            host_ip,
            netns_prefix: netns_prefix.into(),
            cni_conf_dir: PathBuf::from("/etc/cni/net.d"),
            cni_plugin_dirs: vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")],
            cni_cache_dir: state_dir.join("cni"),
            state_dir,
            podnet_exe: podnet_exe.into(),
            dns: DnsSettings::default(),
            node_netns: None,
            max_parallel_sandboxes: 4,
            backoff: Backoff::default(),
        }
    }

    /// `<state_dir>/pods`.
    pub fn pods_dir(&self) -> PathBuf {
        self.state_dir.join("pods")
    }

    /// The prefix of every pod network namespace this runtime names.
    pub fn pod_netns_prefix(&self) -> String {
        format!("{}pod-", self.netns_prefix)
    }
}
