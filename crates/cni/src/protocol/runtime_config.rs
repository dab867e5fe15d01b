//! `runtimeConfig`: the capability arguments a runtime inserts for the capabilities a
//! plugin declares (CNI CONVENTIONS.md, "Well-known Capabilities"). The well-known ones
//! are typed and strict (unknown keys inside them are errors); any other capability is
//! kept raw.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Protocol of a port mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortProtocol {
    /// TCP (the default).
    #[default]
    #[serde(alias = "TCP")]
    Tcp,
    /// UDP.
    #[serde(alias = "UDP")]
    Udp,
    /// SCTP.
    #[serde(alias = "SCTP")]
    Sctp,
}

/// One `portMappings` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortMapping {
    /// Port on the host.
    #[serde(rename = "hostPort")]
    pub host_port: u16,
    /// Port in the container.
    #[serde(rename = "containerPort")]
    pub container_port: u16,
    /// Protocol; TCP when absent.
    #[serde(default)]
    pub protocol: PortProtocol,
    /// Host address to bind; absent or "" means every address.
    #[serde(
        rename = "hostIP",
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub host_ip: Option<IpAddr>,
}

fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// The `bandwidth` capability: rates in bits per second, bursts in bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bandwidth {
    /// Ingress rate.
    #[serde(
        rename = "ingressRate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ingress_rate: Option<u64>,
    /// Ingress burst.
    #[serde(
        rename = "ingressBurst",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ingress_burst: Option<u64>,
    /// Egress rate.
    #[serde(
        rename = "egressRate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub egress_rate: Option<u64>,
    /// Egress burst.
    #[serde(
        rename = "egressBurst",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub egress_burst: Option<u64>,
}

/// The `dns` capability (note: different keys from the well-known `dns` dictionary).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeDns {
    /// Nameserver addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub searches: Vec<String>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// An `ips` capability entry: an address with an optional prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRequest {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length, if given.
    pub prefix: Option<u8>,
}

impl FromStr for IpRequest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(IpRequest {
                addr: net.addr(),
                prefix: Some(net.prefix_len()),
            });
        }
        s.parse::<IpAddr>()
            .map(|addr| IpRequest { addr, prefix: None })
            .map_err(|_| format!("expected an IP address with optional /prefix, found {s:?}"))
    }
}

impl fmt::Display for IpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix {
            Some(p) => write!(f, "{}/{p}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

impl Serialize for IpRequest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// `runtimeConfig`: the capability arguments the runtime inserted. The well-known
/// capabilities are typed; any other capability is kept raw in `other`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RuntimeConfig {
    /// `portMappings`.
    #[serde(
        rename = "portMappings",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub port_mappings: Option<Vec<PortMapping>>,
    /// `ips`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ips: Option<Vec<IpRequest>>,
    /// `mac`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// `dns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<RuntimeDns>,
    /// `bandwidth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
    /// Every other capability (ipRanges, deviceID, aliases, cgroupPath, ...).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}
