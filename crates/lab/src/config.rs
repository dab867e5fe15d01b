//! The lab file: `podnet.io/v1alpha1 Lab`.
//!
//! ```yaml
//! apiVersion: podnet.io/v1alpha1
//! kind: Lab
//! metadata: {name: quickstart}
//! spec:
//!   nodes: 3                 # or a list: [{name: cp, labels: {...}}, {name: w1}]
//!   store: embedded          # or etcd (a 3-member etcd cluster on the underlay)
//!   cni: podnet              # podnet's own plugin; or reference (Debian's bridge + host-local)
//!   hosts: {external: true, internet: true}
//!   cluster: {overlay: {mode: host-gw}}   # a ClusterConfig spec; defaults otherwise
//! ```

use std::collections::BTreeMap;

use podnet_model::config::ClusterConfigSpec;
use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "podnet.io/v1alpha1";
pub const KIND: &str = "Lab";
pub const DEFAULT_NAME: &str = "podnet";
pub const DEFAULT_NODES: usize = 3;
/// Nodes get 172.18.0.2 upwards; .100 and above belong to other hosts.
pub const MAX_NODES: usize = 90;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lab {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: LabMeta,
    #[serde(default)]
    pub spec: LabSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LabMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LabSpec {
    pub nodes: Nodes,
    pub store: StoreKind,
    pub cni: CniKind,
    pub hosts: Hosts,
    pub cluster: ClusterConfigSpec,
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            nodes: Nodes::Count(DEFAULT_NODES),
            store: StoreKind::Embedded,
            cni: CniKind::default(),
            hosts: Hosts::default(),
            cluster: ClusterConfigSpec::default(),
        }
    }
}

/// A number of nodes (named `node-1`...) or a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Nodes {
    Count(usize),
    List(Vec<NodeSpec>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    #[default]
    Embedded,
    Etcd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CniKind {
    /// podnet's own plugin (the `podnet` executable acts as it), IPAM in the store.
    #[default]
    Podnet,
    /// Debian's reference `bridge` + `host-local` plugins.
    Reference,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Hosts {
    /// A client outside the cluster, on the node network.
    pub external: bool,
    /// A host behind a router (TEST-NET-3, 203.0.113.0/24) for egress.
    pub internet: bool,
}

impl Default for Hosts {
    fn default() -> Self {
        Hosts {
            external: true,
            internet: true,
        }
    }
}

impl Default for Lab {
    fn default() -> Self {
        Lab {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            metadata: LabMeta::default(),
            spec: LabSpec::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LabConfigError {
    #[error("lab file {file}: {message}")]
    Decode { file: String, message: String },
    #[error("Lab {lab}: {field}: expected {expected}, found {found}")]
    Invalid {
        lab: String,
        field: String,
        expected: String,
        found: String,
    },
}

impl Lab {
    /// Parses a lab file (YAML or JSON).
    pub fn parse(text: &str, file: &str) -> Result<Lab, LabConfigError> {
        let lab: Lab = serde_yaml_ng::from_str(text).map_err(|e| LabConfigError::Decode {
            file: file.into(),
            message: e.to_string(),
        })?;
        lab.validate()?;
        Ok(lab)
    }

    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or(DEFAULT_NAME)
    }

    /// The node specs, with default names for a count.
    pub fn nodes(&self) -> Vec<NodeSpec> {
        match &self.spec.nodes {
            Nodes::Count(n) => (1..=*n)
                .map(|i| NodeSpec {
                    name: format!("node-{i}"),
                    labels: BTreeMap::new(),
                })
                .collect(),
            Nodes::List(l) => l.clone(),
        }
    }

    pub fn validate(&self) -> Result<(), LabConfigError> {
        let bad = |field: &str, expected: &str, found: String| LabConfigError::Invalid {
            lab: self.name().into(),
            field: field.into(),
            expected: expected.into(),
            found,
        };
        if self.api_version != API_VERSION || self.kind != KIND {
            return Err(bad(
                "apiVersion/kind",
                "podnet.io/v1alpha1 Lab",
                format!("{} {}", self.api_version, self.kind),
            ));
        }
        let name = self.name();
        let label_ok = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !s.starts_with('-')
                && !s.ends_with('-')
        };
        if !label_ok(name, 20) {
            return Err(bad(
                "metadata.name",
                "at most 20 lower-case letters, digits or '-'",
                format!("{name:?}"),
            ));
        }
        let nodes = self.nodes();
        if nodes.is_empty() || nodes.len() > MAX_NODES {
            return Err(bad(
                "spec.nodes",
                &format!("between 1 and {MAX_NODES} nodes"),
                nodes.len().to_string(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, n) in nodes.iter().enumerate() {
            if !label_ok(&n.name, 40) {
                return Err(bad(
                    &format!("spec.nodes[{i}].name"),
                    "a DNS label of at most 40 characters",
                    format!("{:?}", n.name),
                ));
            }
            if !seen.insert(&n.name) {
                return Err(bad(
                    &format!("spec.nodes[{i}].name"),
                    "unique node names",
                    format!("{:?} twice", n.name),
                ));
            }
        }
        let cfg = podnet_model::ClusterConfig {
            spec: self.spec.cluster.clone(),
            ..Default::default()
        };
        if let Some(e) = podnet_model::validate(
            &podnet_model::Object::ClusterConfig(cfg),
            &self.spec.cluster,
        )
        .into_iter()
        .next()
        {
            return Err(bad(
                &format!("spec.cluster.{}", e.field.trim_start_matches("spec.")),
                &e.expected,
                e.found,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_lists() {
        let lab = Lab::parse("apiVersion: podnet.io/v1alpha1\nkind: Lab\n", "t").unwrap();
        assert_eq!(lab.name(), "podnet");
        assert_eq!(lab.nodes().len(), 3);
        assert_eq!(lab.nodes()[2].name, "node-3");
        let lab = Lab::parse(
            "apiVersion: podnet.io/v1alpha1\nkind: Lab\nmetadata: {name: q}\nspec:\n  nodes: [{name: cp}, {name: w1, labels: {zone: a}}]\n  cni: reference\n  cluster: {overlay: {mode: host-gw}}\n",
            "t",
        )
        .unwrap();
        assert_eq!(lab.nodes()[1].labels["zone"], "a");
        assert_eq!(lab.spec.cni, CniKind::Reference);
        assert_eq!(
            lab.spec.cluster.overlay.mode,
            podnet_model::OverlayMode::HostGw
        );
    }

    #[test]
    fn bad_labs_are_named() {
        let e = Lab::parse(
            "apiVersion: podnet.io/v1alpha1\nkind: Lab\nspec: {nodes: 0}\n",
            "t",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("spec.nodes: expected between 1"),
            "{e}"
        );
        let e = Lab::parse(
            "apiVersion: podnet.io/v1alpha1\nkind: Lab\nspec: {nodes: [{name: a}, {name: a}]}\n",
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("spec.nodes[1].name"), "{e}");
        let e = Lab::parse(
            "apiVersion: podnet.io/v1alpha1\nkind: Lab\nmetadata: {name: Big_Lab}\n",
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("metadata.name"), "{e}");
        let e = Lab::parse(
            "apiVersion: podnet.io/v1alpha1\nkind: Lab\nspec: {nodez: 3}\n",
            "lab.yaml",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("lab.yaml") && e.to_string().contains("nodez"),
            "{e}"
        );
    }
}
