//! The ADD success result (spec section 5) and its conversion between spec versions.
//!
//! One version-neutral type, [`CniResult`], holds every field any supported version
//! defines. It is read from and written in the shape of its `cni_version`:
//! - 1.1.0: interfaces may carry `mtu`, `socketPath`, `pciID`; routes may carry `mtu`,
//!   `advmss`, `priority`, `table`, `scope`.
//! - 1.0.0: as 1.1.0 without those additions.
//! - 0.3.0, 0.3.1, 0.4.0: as 1.0.0, and every IP carries `"version": "4"` or `"6"`.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::config::Dns;
use super::error::{ErrorCode, HasErrorCode};
use super::version::{check_supported, SpecVersion, VersionError};

/// An interface created or configured by an attachment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Interface {
    /// The interface name.
    pub name: String,
    /// Hardware address, where meaningful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// MTU (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The isolation domain (netns path) for container interfaces; empty on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// Absolute path of a socket file for this interface (1.1.0).
    #[serde(
        rename = "socketPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub socket_path: Option<String>,
    /// Platform identifier of the PCI device (1.1.0).
    #[serde(rename = "pciID", default, skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
}

impl Interface {
    /// Whether the interface lives in a container (non-empty `sandbox`).
    pub fn in_sandbox(&self) -> bool {
        self.sandbox.as_deref().is_some_and(|s| !s.is_empty())
    }
}

/// An address assigned by an attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    /// The address with its prefix length, e.g. 10.1.0.5/16 (host bits kept).
    pub address: IpNet,
    /// The default gateway for this subnet, if any.
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`; absent in IPAM plugins' abbreviated results.
    pub interface: Option<u32>,
}

/// A route created by an attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination, in CIDR notation.
    pub dst: IpNet,
    /// Next hop; if unset, a `gateway` of the `ips` may be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    /// Path MTU (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// TCP MSS to advertise (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    /// Route priority, lower is preferred (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Routing table (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// Scope: global 0, link 253, host 254 (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u32>,
}

impl Route {
    /// A route to `dst` with no other attributes.
    pub fn to(dst: IpNet) -> Route {
        Route {
            dst,
            gw: None,
            mtu: None,
            advmss: None,
            priority: None,
            table: None,
            scope: None,
        }
    }
}

/// The result of ADD (and of delegated IPAM plugins, which omit `interfaces`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniResult {
    /// The spec version whose shape this result is read and written in.
    pub cni_version: SpecVersion,
    /// Interfaces created by the attachment, host ones included.
    pub interfaces: Vec<Interface>,
    /// Addresses assigned.
    pub ips: Vec<IpConfig>,
    /// Routes created.
    pub routes: Vec<Route>,
    /// DNS information.
    pub dns: Dns,
}

/// A result that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// The result's version is malformed or unsupported (code 1).
    #[error(transparent)]
    Version(#[from] VersionError),
    /// Not JSON, not an object, or fields of the wrong type (code 6).
    #[error("failed to decode cni result: {0}")]
    Decode(#[source] serde_json::Error),
    /// Well-typed JSON that breaks the result's rules (code 6).
    #[error("invalid cni result: expected {expected}, found {found}")]
    Invalid {
        /// What the rule requires.
        expected: String,
        /// What was found.
        found: String,
    },
}

impl HasErrorCode for ResultError {
    fn error_code(&self) -> ErrorCode {
        match self {
            ResultError::Version(_) => ErrorCode::IncompatibleVersion,
            ResultError::Decode(_) | ResultError::Invalid { .. } => ErrorCode::DecodeFailure,
        }
    }
}

#[derive(Deserialize, Serialize)]
struct WireIp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interface: Option<u32>,
    address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway: Option<IpAddr>,
}

#[derive(Deserialize, Serialize)]
struct WireResult {
    #[serde(
        rename = "cniVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    cni_version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ips: Vec<WireIp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    dns: Dns,
}

fn family(address: &IpNet) -> &'static str {
    match address {
        IpNet::V4(_) => "4",
        IpNet::V6(_) => "6",
    }
}

impl CniResult {
    /// An empty result of the given version.
    pub fn empty(cni_version: SpecVersion) -> CniResult {
        CniResult {
            cni_version,
            interfaces: Vec::new(),
            ips: Vec::new(),
            routes: Vec::new(),
            dns: Dns::default(),
        }
    }

    /// Reads a result from JSON text. See [`CniResult::from_value`].
    pub fn from_json(text: &[u8], default_version: Option<&str>) -> Result<CniResult, ResultError> {
        let value: Value = serde_json::from_slice(text).map_err(ResultError::Decode)?;
        CniResult::from_value(&value, default_version)
    }

    /// Reads a result in the shape of its `cniVersion`. A result without `cniVersion`
    /// (such as a `prevResult` inside a request) takes `default_version`, normally the
    /// request's own `cniVersion`.
    pub fn from_value(
        value: &Value,
        default_version: Option<&str>,
    ) -> Result<CniResult, ResultError> {
        let wire = WireResult::deserialize(value).map_err(ResultError::Decode)?;
        let version_text = wire
            .cni_version
            .as_deref()
            .or(default_version)
            .ok_or_else(|| ResultError::Invalid {
                expected: "a cniVersion".to_string(),
                found: "none".to_string(),
            })?;
        let cni_version = check_supported(version_text)?;
        let mut ips = Vec::with_capacity(wire.ips.len());
        for ip in wire.ips {
            if cni_version.result_ips_have_version() {
                let want = family(&ip.address);
                if ip.version.as_deref() != Some(want) {
                    return Err(ResultError::Invalid {
                        expected: format!(
                            "\"version\": \"{want}\" for {} in a {cni_version} result",
                            ip.address
                        ),
                        found: format!("{:?}", ip.version),
                    });
                }
            }
            if let Some(index) = ip.interface {
                if index as usize >= wire.interfaces.len() {
                    return Err(ResultError::Invalid {
                        expected: format!(
                            "an interface index below {} for {}",
                            wire.interfaces.len(),
                            ip.address
                        ),
                        found: index.to_string(),
                    });
                }
            }
            ips.push(IpConfig {
                address: ip.address,
                gateway: ip.gateway,
                interface: ip.interface,
            });
        }
        Ok(CniResult {
            cni_version,
            interfaces: wire.interfaces,
            ips,
            routes: wire.routes,
            dns: wire.dns,
        })
    }

    /// The result in the shape of `version`. Converting down drops what the older
    /// version cannot express (1.1.0's interface `mtu`/`socketPath`/`pciID` and route
    /// `mtu`/`advmss`/`priority`/`table`/`scope`); converting up loses nothing. The IP
    /// `version` field of 0.x results is derived from the address when written.
    pub fn to_version(&self, version: &str) -> Result<CniResult, VersionError> {
        let target = check_supported(version)?;
        let mut out = self.clone();
        out.cni_version = target;
        if target < SpecVersion::V1_1_0 {
            for iface in &mut out.interfaces {
                iface.mtu = None;
                iface.socket_path = None;
                iface.pci_id = None;
            }
            for route in &mut out.routes {
                route.mtu = None;
                route.advmss = None;
                route.priority = None;
                route.table = None;
                route.scope = None;
            }
        }
        Ok(out)
    }

    /// The result as JSON in the shape of its `cni_version`.
    pub fn to_value(&self) -> Value {
        let with_version = self.cni_version.result_ips_have_version();
        let wire = WireResult {
            cni_version: Some(self.cni_version.to_string()),
            interfaces: self.interfaces.clone(),
            ips: self
                .ips
                .iter()
                .map(|ip| WireIp {
                    version: with_version.then(|| family(&ip.address).to_string()),
                    interface: ip.interface,
                    address: ip.address,
                    gateway: ip.gateway,
                })
                .collect(),
            routes: self.routes.clone(),
            dns: self.dns.clone(),
        };
        serde_json::to_value(wire).unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// The result as compact JSON text.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    /// The interfaces inside the sandbox, with their indexes.
    pub fn sandbox_interfaces(&self) -> impl Iterator<Item = (usize, &Interface)> {
        self.interfaces
            .iter()
            .enumerate()
            .filter(|(_, i)| i.in_sandbox())
    }

    /// The addresses assigned to the interface at `index`.
    pub fn ips_of(&self, index: usize) -> impl Iterator<Item = &IpConfig> {
        self.ips
            .iter()
            .filter(move |ip| ip.interface.map(|i| i as usize) == Some(index))
    }
}

impl Serialize for CniResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for CniResult {
    /// Requires `cniVersion` in the JSON; use [`CniResult::from_value`] to supply a default.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        CniResult::from_value(&value, None).map_err(serde::de::Error::custom)
    }
}
