//! The Node annotations the agent publishes for its peers, flannel-style.
//!
//! flannel writes `flannel.alpha.coreos.com/backend-type`, `.../backend-data`
//! (`{"VNI":1,"VtepMAC":"..."}`) and `.../public-ip`; podnet uses its own names, one
//! value per key so that nothing needs parsing twice:
//!
//! | annotation | value | used for |
//! |---|---|---|
//! | `podnet.io/backend-type` | `vxlan` or `host-gw` | information |
//! | `podnet.io/public-ip` | the IP other nodes send to (the node IP) | VXLAN FDB `dst` |
//! | `podnet.io/vtep-mac` | the MAC of the node's VXLAN device (vxlan mode only) | neighbour + FDB entries |

use std::collections::BTreeMap;
use std::net::IpAddr;

use podnet_linux::model::Mac;
use podnet_model::config::OverlayMode;

pub const BACKEND_TYPE: &str = "podnet.io/backend-type";
pub const PUBLIC_IP: &str = "podnet.io/public-ip";
pub const VTEP_MAC: &str = "podnet.io/vtep-mac";

/// The MAC of this node's VXLAN device: derived from the node IP, so that a restarted
/// agent (or a recreated device) keeps the MAC its peers already know. `0e:50:` +
/// the IPv4 address; locally administered, unicast. An IPv6 node IP is folded into
/// four bytes (FNV-1a).
pub fn vtep_mac(node_ip: IpAddr) -> Mac {
    let tail: [u8; 4] = match node_ip {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => {
            let mut h: u32 = 0x811c_9dc5;
            for b in v6.octets() {
                h ^= u32::from(b);
                h = h.wrapping_mul(0x0100_0193);
            }
            h.to_be_bytes()
        }
    };
    Mac([0x0e, 0x50, tail[0], tail[1], tail[2], tail[3]])
}

/// The annotations this node publishes (pure).
pub fn published(mode: OverlayMode, node_ip: IpAddr) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    out.insert(PUBLIC_IP.to_string(), node_ip.to_string());
    match mode {
        OverlayMode::Vxlan => {
            out.insert(BACKEND_TYPE.to_string(), "vxlan".to_string());
            out.insert(VTEP_MAC.to_string(), vtep_mac(node_ip).to_string());
        }
        OverlayMode::HostGw => {
            out.insert(BACKEND_TYPE.to_string(), "host-gw".to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_from_node_ip_is_local_unicast() {
        let m = vtep_mac("172.18.0.3".parse().unwrap());
        assert_eq!(m.to_string(), "0e:50:ac:12:00:03");
        assert_eq!(m.0[0] & 1, 0, "unicast");
        assert_eq!(m.0[0] & 2, 2, "locally administered");
        let a = published(OverlayMode::Vxlan, "172.18.0.3".parse().unwrap());
        assert_eq!(a[VTEP_MAC], "0e:50:ac:12:00:03");
        assert_eq!(a[PUBLIC_IP], "172.18.0.3");
        let h = published(OverlayMode::HostGw, "172.18.0.3".parse().unwrap());
        assert!(!h.contains_key(VTEP_MAC));
    }
}
