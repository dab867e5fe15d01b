//! podnet's own configuration object, `podnet.io/v1alpha1 ClusterConfig`.
//!
//! One per cluster, named `default` (cluster-scoped). Every field has the default of
//! DESIGN.md, so an empty `spec: {}` describes the standard lab cluster.

use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "podnet.io/v1alpha1";
pub const KIND: &str = "ClusterConfig";
/// The name of the ClusterConfig every component reads.
pub const DEFAULT_NAME: &str = "default";

/// `podnet.io/v1alpha1 ClusterConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterConfig {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ClusterConfigSpec,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            api_version: API_VERSION.to_string(),
            kind: KIND.to_string(),
            metadata: ObjectMeta {
                name: Some(DEFAULT_NAME.to_string()),
                ..ObjectMeta::default()
            },
            spec: ClusterConfigSpec::default(),
        }
    }
}

/// Overlay (cross-node routing) mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum OverlayMode {
    /// Flannel-style VXLAN: static neighbour + FDB entries per remote node, no learning.
    #[default]
    #[serde(rename = "vxlan")]
    Vxlan,
    /// Route each remote pod CIDR via the remote node IP (nodes share one L2 network).
    #[serde(rename = "host-gw")]
    HostGw,
}

/// Cross-node routing settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct OverlayConfig {
    pub mode: OverlayMode,
    /// VXLAN network identifier (1..=16777215).
    pub vni: u32,
    /// VXLAN UDP destination port.
    pub port: u16,
}

impl Default for OverlayConfig {
    fn default() -> Self {
        OverlayConfig {
            mode: OverlayMode::Vxlan,
            vni: 1,
            port: 8472,
        }
    }
}

/// A named pool of LoadBalancer addresses: CIDRs (`172.18.255.0/28`) or inclusive
/// ranges (`172.18.255.200-172.18.255.250`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressPool {
    pub name: String,
    pub addresses: Vec<String>,
    /// When false, only services that ask for this pool by annotation get its addresses.
    #[serde(default = "default_true")]
    pub auto_assign: bool,
}

fn default_true() -> bool {
    true
}

/// The cluster-wide network settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ClusterConfigSpec {
    /// Pod addresses of the whole cluster; each node gets a slice of it.
    #[serde(rename = "clusterCIDR")]
    pub cluster_cidr: IpNet,
    /// Prefix length of each node's pod CIDR.
    #[serde(rename = "nodeCIDRMaskSize")]
    pub node_cidr_mask_size: u8,
    /// Virtual IPs of Services.
    #[serde(rename = "serviceCIDR")]
    pub service_cidr: IpNet,
    /// Inclusive NodePort range, `first-last`.
    pub node_port_range: String,
    pub cluster_domain: String,
    pub overlay: OverlayConfig,
    /// MTU of the node underlay; pods and the VXLAN device get 50 less in vxlan mode.
    pub mtu: u32,
    /// Destinations that egress traffic reaches without masquerade (the cluster CIDR
    /// never is masqueraded, whether listed or not).
    #[serde(rename = "nonMasqueradeCIDRs")]
    pub non_masquerade_cidrs: Vec<IpNet>,
    pub load_balancer_pools: Vec<AddressPool>,
}

impl Default for ClusterConfigSpec {
    fn default() -> Self {
        ClusterConfigSpec {
            cluster_cidr: "10.244.0.0/16".parse().expect("valid literal"),
            node_cidr_mask_size: 24,
            service_cidr: "10.96.0.0/12".parse().expect("valid literal"),
            node_port_range: "30000-32767".to_string(),
            cluster_domain: "cluster.local".to_string(),
            overlay: OverlayConfig::default(),
            mtu: 1500,
            non_masquerade_cidrs: Vec::new(),
            load_balancer_pools: vec![AddressPool {
                name: "default".to_string(),
                addresses: vec!["172.18.255.200-172.18.255.250".to_string()],
                auto_assign: true,
            }],
        }
    }
}

impl ClusterConfigSpec {
    /// The address of the cluster DNS Service (`kube-system/kube-dns`): the tenth
    /// address of the service CIDR, as kubeadm does (10.96.0.10 by default).
    pub fn dns_service_ip(&self) -> IpAddr {
        nth_address(self.service_cidr, 10).unwrap_or(self.service_cidr.network())
    }

    /// MTU for pods and the overlay device.
    pub fn pod_mtu(&self) -> u32 {
        match self.overlay.mode {
            OverlayMode::Vxlan => self.mtu.saturating_sub(50),
            OverlayMode::HostGw => self.mtu,
        }
    }

    /// The NodePort range as (first, last), when well-formed.
    pub fn node_ports(&self) -> Option<(u16, u16)> {
        let (a, b) = self.node_port_range.split_once('-')?;
        let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        (a <= b && a > 0).then_some((a, b))
    }
}

/// The `n`th address of `net` counting the network address as 0, if inside it.
pub fn nth_address(net: IpNet, n: u128) -> Option<IpAddr> {
    match net {
        IpNet::V4(v4) => {
            let base = u32::from(v4.network()) as u128;
            let size = 1u128 << (32 - v4.prefix_len());
            (n < size).then(|| IpAddr::V4(((base + n) as u32).into()))
        }
        IpNet::V6(v6) => {
            let base = u128::from(v6.network());
            let bits = 128 - v6.prefix_len() as u32;
            (bits == 128 || n < (1u128 << bits)).then(|| IpAddr::V6((base + n).into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_design() {
        let c = ClusterConfigSpec::default();
        assert_eq!(c.dns_service_ip().to_string(), "10.96.0.10");
        assert_eq!(c.pod_mtu(), 1450);
        assert_eq!(c.node_ports(), Some((30000, 32767)));
        assert_eq!(c.overlay.port, 8472);
    }

    #[test]
    fn empty_spec_gets_defaults_and_unknown_fields_are_refused() {
        let c: ClusterConfig = serde_yaml_ng::from_str(
            "apiVersion: podnet.io/v1alpha1\nkind: ClusterConfig\nmetadata: {name: default}\nspec:\n  overlay: {mode: host-gw}\n",
        )
        .unwrap();
        assert_eq!(c.spec.overlay.mode, OverlayMode::HostGw);
        assert_eq!(c.spec.overlay.vni, 1);
        assert_eq!(c.spec.cluster_cidr.to_string(), "10.244.0.0/16");
        let err = serde_yaml_ng::from_str::<ClusterConfig>(
            "apiVersion: podnet.io/v1alpha1\nkind: ClusterConfig\nspec: {clusterCidr: 10.0.0.0/8}\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("clusterCidr"), "{err}");
    }
}
