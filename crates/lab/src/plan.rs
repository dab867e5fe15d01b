//! The lab plan: every namespace, link and address a lab consists of, derived purely
//! from the lab file. Bring-up creates exactly this; tear-down removes exactly this
//! (plus whatever carries the lab's prefix), so that a crashed `lab up` can always be
//! cleaned.
//!
//! Addressing (all inside the lab's own namespaces):
//! - underlay 172.18.0.0/24 on a bridge `br0` in the switch namespace; the router is
//!   172.18.0.1 (every host's default gateway), nodes 172.18.0.2.., `external` 172.18.0.100,
//!   etcd members 172.18.0.201..203;
//! - the router's second leg 203.0.113.1/24 (TEST-NET-3) reaches `internet` 203.0.113.10.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{Lab, StoreKind};

pub const UNDERLAY: &str = "172.18.0.0/24";
pub const UNDERLAY_PREFIX: u8 = 24;
pub const ROUTER_IP: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 1);
pub const EXTERNAL_IP: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 100);
pub const ROUTER_INTERNET_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
pub const INTERNET_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
pub const INTERNET_PREFIX: u8 = 24;
/// Where labs keep their state (store, CNI config, logs, pids).
pub const STATE_ROOT: &str = "/run/podnet/labs";
/// The bridge of the switch namespace.
pub const SWITCH_BRIDGE: &str = "br0";

/// What a host of the lab is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Node,
    External,
    Router,
    Internet,
    Etcd,
}

/// One host: a network namespace with `eth0` on the underlay (the internet host's
/// `eth0` is on the router's second leg instead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// The name users type: `node-1`, `external`, `internet`, `router`, `etcd-1`.
    pub name: String,
    pub role: Role,
    /// The network namespace (`ip netns` name).
    pub netns: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    /// The switch-side port of its underlay link (none for `internet`).
    pub switch_port: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabPlan {
    pub name: String,
    /// Prefix of every namespace of this lab: `pn-<name>-`.
    pub prefix: String,
    pub switch_netns: String,
    pub hosts: Vec<Host>,
    pub state_dir: PathBuf,
    pub store: StoreKind,
}

impl LabPlan {
    pub fn new(lab: &Lab) -> LabPlan {
        LabPlan::with_state_root(lab, PathBuf::from(STATE_ROOT))
    }

    pub fn with_state_root(lab: &Lab, root: PathBuf) -> LabPlan {
        let name = lab.name().to_string();
        let prefix = prefix_of(&name);
        let mut ports = 0usize;
        let mut host = |name: &str, role: Role, ip: Ipv4Addr| {
            let port = format!("port{ports}");
            ports += 1;
            Host {
                name: name.to_string(),
                role,
                netns: format!("{prefix}{name}"),
                ip,
                prefix: UNDERLAY_PREFIX,
                switch_port: Some(port),
            }
        };
        let mut hosts = Vec::new();
        let hosts_cfg = &lab.spec.hosts;
        if hosts_cfg.internet {
            hosts.push(host("router", Role::Router, ROUTER_IP));
        }
        for (i, n) in lab.nodes().iter().enumerate() {
            hosts.push(host(
                &n.name,
                Role::Node,
                Ipv4Addr::new(172, 18, 0, 2 + i as u8),
            ));
        }
        if hosts_cfg.external {
            hosts.push(host("external", Role::External, EXTERNAL_IP));
        }
        if lab.spec.store == StoreKind::Etcd {
            for i in 0..3u8 {
                hosts.push(host(
                    &format!("etcd-{}", i + 1),
                    Role::Etcd,
                    Ipv4Addr::new(172, 18, 0, 201 + i),
                ));
            }
        }
        if hosts_cfg.internet {
            hosts.push(Host {
                name: "internet".into(),
                role: Role::Internet,
                netns: format!("{prefix}internet"),
                ip: INTERNET_IP,
                prefix: INTERNET_PREFIX,
                switch_port: None,
            });
        }
        LabPlan {
            state_dir: root.join(&name),
            switch_netns: format!("{prefix}switch"),
            prefix,
            name,
            hosts,
            store: lab.spec.store,
        }
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(|h| h.role == Role::Node)
    }

    /// The default gateway of underlay hosts, when the lab has a router.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        self.host("router").map(|_| ROUTER_IP)
    }

    /// Network namespace of a pod of this lab (kept short and unique per pod uid).
    pub fn pod_netns(&self, pod_uid: &str) -> String {
        let short: String = pod_uid
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(12)
            .collect();
        format!("{}pod-{short}", self.prefix)
    }

    /// The etcd client URLs (`etcd://` form) when the store is etcd.
    pub fn etcd_url(&self) -> Option<String> {
        let members: Vec<String> = self
            .hosts
            .iter()
            .filter(|h| h.role == Role::Etcd)
            .map(|h| format!("{}:2379", h.ip))
            .collect();
        (!members.is_empty()).then(|| format!("etcd://{}", members.join(",")))
    }

    pub fn store_path(&self) -> PathBuf {
        self.state_dir.join("state.db")
    }

    /// The unix socket an etcd member also listens on (reachable from outside the lab's
    /// namespaces through the file system). etcd wants `unix://host:port` and makes the
    /// socket `host:port` in its working directory, the state directory.
    pub fn etcd_socket(&self, member: &str) -> PathBuf {
        self.state_dir.join(format!("{member}:2379"))
    }

    /// The store as the lab's own processes (in node namespaces) reach it.
    pub fn node_store_url(&self) -> String {
        self.etcd_url()
            .unwrap_or_else(|| self.store_path().display().to_string())
    }

    /// The store as `podnet` on the machine (outside the lab's namespaces) reaches it.
    pub fn client_store_url(&self) -> String {
        let sockets: Vec<String> = self
            .hosts
            .iter()
            .filter(|h| h.role == Role::Etcd)
            .map(|h| self.etcd_socket(&h.name).display().to_string())
            .collect();
        if sockets.is_empty() {
            self.store_path().display().to_string()
        } else {
            format!("etcd+unix://{}", sockets.join(","))
        }
    }
}

/// The namespace prefix of a lab.
pub fn prefix_of(lab: &str) -> String {
    format!("pn-{lab}-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_lab_plan() {
        let plan = LabPlan::new(&Lab::default());
        let names: Vec<_> = plan
            .hosts
            .iter()
            .map(|h| (h.name.as_str(), h.ip.to_string()))
            .collect();
        assert_eq!(
            names,
            [
                ("router", "172.18.0.1".to_string()),
                ("node-1", "172.18.0.2".into()),
                ("node-2", "172.18.0.3".into()),
                ("node-3", "172.18.0.4".into()),
                ("external", "172.18.0.100".into()),
                ("internet", "203.0.113.10".into()),
            ]
        );
        assert_eq!(plan.switch_netns, "pn-podnet-switch");
        assert_eq!(plan.host("node-2").unwrap().netns, "pn-podnet-node-2");
        assert_eq!(
            plan.host("node-2").unwrap().switch_port.as_deref(),
            Some("port2")
        );
        assert!(plan.host("internet").unwrap().switch_port.is_none());
        assert_eq!(plan.state_dir, PathBuf::from("/run/podnet/labs/podnet"));
        assert_eq!(plan.etcd_url(), None);
        assert_eq!(
            plan.pod_netns("1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
            "pn-podnet-pod-1b4e28ba2fa1"
        );
    }

    #[test]
    fn etcd_members_and_no_extra_hosts() {
        let lab = Lab::parse(
            "apiVersion: podnet.io/v1alpha1\nkind: Lab\nmetadata: {name: e}\nspec:\n  nodes: 1\n  store: etcd\n  hosts: {external: false, internet: false}\n",
            "t",
        )
        .unwrap();
        let plan = LabPlan::new(&lab);
        assert_eq!(plan.hosts.len(), 4);
        assert_eq!(
            plan.etcd_url().unwrap(),
            "etcd://172.18.0.201:2379,172.18.0.202:2379,172.18.0.203:2379"
        );
        assert_eq!(plan.gateway(), None);
        assert_eq!(
            plan.client_store_url(),
            "etcd+unix:///run/podnet/labs/e/etcd-1:2379,/run/podnet/labs/e/etcd-2:2379,/run/podnet/labs/e/etcd-3:2379"
        );
        assert_eq!(plan.node_store_url(), plan.etcd_url().unwrap());
        for p in plan.hosts.iter().filter_map(|h| h.switch_port.as_ref()) {
            assert!(p.len() <= 15);
        }
    }
}
