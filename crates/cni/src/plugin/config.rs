//! The podnet plugin's own configuration keys (`"type": "podnet"`).
//!
//! Unknown keys are ignored, as the CNI spec requires of plugins (a conflist entry also
//! carries keys meant for the runtime or for other plugins), so this struct does not
//! deny unknown fields.

use serde::Deserialize;

use crate::protocol::{validate_ifname, ConfigError, NetworkConfig};

/// The bridge name when the configuration names none.
pub const DEFAULT_BRIDGE: &str = "cni0";

/// The podnet-specific keys of a network configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PodnetConfig {
    /// Store URL: a path to the embedded database, `sqlite:///path` or `etcd://host:port`.
    pub store: String,
    /// The name of the Node object this plugin runs on.
    pub node: String,
    /// The node bridge, the pods' gateway.
    #[serde(default = "default_bridge")]
    pub bridge: String,
    /// MTU of the bridge and the veth pair; from the ClusterConfig when absent.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Hairpin mode on the host side of the veth (a pod reaching itself via a Service).
    #[serde(default = "default_true")]
    pub hairpin: bool,
}

fn default_bridge() -> String {
    DEFAULT_BRIDGE.to_string()
}

fn default_true() -> bool {
    true
}

impl PodnetConfig {
    /// Reads and checks the podnet keys of `config`.
    pub fn from_network_config(config: &NetworkConfig) -> Result<PodnetConfig, ConfigError> {
        for (key, expected) in [
            (
                "store",
                "the store URL, e.g. /var/lib/podnet/state.db or etcd://host:2379",
            ),
            ("node", "the name of this node's Node object"),
        ] {
            if !config.extra.contains_key(key) {
                return Err(ConfigError::Missing {
                    key: key.to_string(),
                    expected,
                });
            }
        }
        let out: PodnetConfig = config.plugin_options()?;
        let invalid = |key: &str, expected: &str, found: String| ConfigError::Invalid {
            key: key.to_string(),
            expected: expected.to_string(),
            found,
        };
        if out.store.is_empty() {
            return Err(invalid("store", "a non-empty store URL", out.store));
        }
        if !valid_node_name(&out.node) {
            return Err(invalid(
                "node",
                "a node name (lower-case alphanumerics, '-' and '.')",
                out.node,
            ));
        }
        if validate_ifname(&out.bridge).is_err() {
            return Err(invalid(
                "bridge",
                "an interface name of at most 15 bytes without '/', ':' or whitespace",
                out.bridge,
            ));
        }
        if let Some(mtu) = out.mtu {
            if !(68..=65535).contains(&mtu) {
                return Err(invalid(
                    "mtu",
                    "an MTU between 68 and 65535",
                    mtu.to_string(),
                ));
            }
        }
        Ok(out)
    }
}

/// A DNS-1123 subdomain, as Kubernetes requires of node names; this also keeps the
/// name safe as one component of a store key.
fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<PodnetConfig, ConfigError> {
        PodnetConfig::from_network_config(&NetworkConfig::parse(json.as_bytes()).unwrap())
    }

    #[test]
    fn defaults_and_unknown_keys() {
        let c = parse(
            r#"{"cniVersion":"1.1.0","name":"podnet","type":"podnet","store":"/x.db","node":"n1","whatever":1}"#,
        )
        .unwrap();
        assert_eq!(c.bridge, "cni0");
        assert!(c.hairpin);
        assert_eq!(c.mtu, None);
    }

    #[test]
    fn refusals() {
        let base = r#""cniVersion":"1.1.0","name":"podnet","type":"podnet""#;
        let e = parse(&format!("{{{base},\"node\":\"n1\"}}")).unwrap_err();
        assert!(e.to_string().contains("store"), "{e}");
        let e = parse(&format!("{{{base},\"store\":\"/x\",\"node\":\"../x\"}}")).unwrap_err();
        assert!(e.to_string().contains("node"), "{e}");
        let e = parse(&format!(
            "{{{base},\"store\":\"/x\",\"node\":\"n\",\"bridge\":\"a-very-long-bridge-name\"}}"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("bridge"), "{e}");
        let e = parse(&format!(
            "{{{base},\"store\":\"/x\",\"node\":\"n\",\"mtu\":10}}"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("mtu"), "{e}");
    }
}
