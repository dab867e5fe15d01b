//! The node's CNI configuration, written once the node has its pod CIDR (as flannel
//! writes its subnet file): a conflist for the configured plugin chain.

use std::path::Path;

use ipnet::IpNet;

/// Which plugins the node's pods get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CniChain {
    /// Debian's reference `bridge` + `host-local`, the baseline.
    Reference,
    /// podnet's own plugin, with IPAM in the store.
    Podnet { store: String, node: String },
}

/// The conflist for `pod_cidr` (pure). `mtu` is the pods' MTU
/// (`ClusterConfigSpec::pod_mtu`: the underlay MTU, less 50 in vxlan mode), given to
/// both chains so that pods, veths and the bridge match the overlay.
pub fn conflist(chain: &CniChain, pod_cidr: IpNet, mtu: u32, data_dir: &Path) -> serde_json::Value {
    let gateway = first_host(pod_cidr);
    match chain {
        CniChain::Podnet { store, node } => serde_json::json!({
            "cniVersion": "1.1.0",
            "name": "podnet",
            "plugins": [
                {"type": "podnet", "store": store, "node": node, "bridge": "cni0", "hairpin": true, "mtu": mtu}
            ]
        }),
        CniChain::Reference => serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "podnet",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": true,
                    "ipMasq": false,
                    "hairpinMode": true,
                    "mtu": mtu,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": data_dir.display().to_string(),
                        "ranges": [[{"subnet": pod_cidr.to_string(), "gateway": gateway}]],
                        "routes": [{"dst": "0.0.0.0/0"}]
                    }
                }
            ]
        }),
    }
}

fn first_host(net: IpNet) -> String {
    match net {
        IpNet::V4(v4) => std::net::Ipv4Addr::from(u32::from(v4.network()) + 1).to_string(),
        IpNet::V6(v6) => std::net::Ipv6Addr::from(u128::from(v6.network()) + 1).to_string(),
    }
}

/// Writes the conflist atomically (temp file + rename) as `10-podnet.conflist`.
pub fn write(dir: &Path, conflist: &serde_json::Value) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(".10-podnet.conflist.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(conflist).unwrap_or_default(),
    )?;
    std::fs::rename(tmp, dir.join("10-podnet.conflist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_chain_for_the_node_cidr() {
        let c = conflist(
            &CniChain::Reference,
            "10.244.2.0/24".parse().unwrap(),
            1500,
            Path::new("/x"),
        );
        assert_eq!(
            c["plugins"][0]["ipam"]["ranges"][0][0]["gateway"],
            "10.244.2.1"
        );
        assert_eq!(c["plugins"][0]["bridge"], "cni0");
        assert_eq!(c["plugins"][0]["mtu"], 1500);
    }

    #[test]
    fn mtu_follows_the_cluster_config() {
        use podnet_model::config::{ClusterConfigSpec, OverlayMode};
        let mut cfg = ClusterConfigSpec::default();
        let cidr = "10.244.2.0/24".parse().unwrap();
        for chain in [
            CniChain::Reference,
            CniChain::Podnet {
                store: "/s".into(),
                node: "n".into(),
            },
        ] {
            let c = conflist(&chain, cidr, cfg.pod_mtu(), Path::new("/x"));
            assert_eq!(c["plugins"][0]["mtu"], 1450, "vxlan: underlay - 50");
        }
        cfg.overlay.mode = OverlayMode::HostGw;
        cfg.mtu = 9000;
        let c = conflist(&CniChain::Reference, cidr, cfg.pod_mtu(), Path::new("/x"));
        assert_eq!(c["plugins"][0]["mtu"], 9000);
    }
}
