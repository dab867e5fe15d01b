//! A single plugin's request configuration: what a plugin reads on stdin.
//!
//! Unknown keys are kept, never rejected: the spec lets runtimes and plugins add fields,
//! and plugin-specific options live beside the well-known ones. Read them with
//! [`NetworkConfig::plugin_options`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::{ErrorCode, HasErrorCode};
use super::result::{CniResult, ResultError};
use super::runtime_config::RuntimeConfig;
use super::version::{check_supported, SpecVersion, VersionError};

/// A configuration that could not be read or breaks the spec's rules.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON, not an object, or a field of the wrong type (code 6).
    #[error("failed to decode network config: {0}")]
    Decode(#[source] serde_json::Error),
    /// A required key is absent (code 7).
    #[error("invalid network config: expected key {key:?} ({expected}), found it missing")]
    Missing {
        /// The key (a path such as `plugins[1].type` inside lists).
        key: String,
        /// What it should hold.
        expected: &'static str,
    },
    /// A key holds a value that breaks the spec's rules (code 7).
    #[error("invalid network config: {key:?} expected {expected}, found {found:?}")]
    Invalid {
        /// The key.
        key: String,
        /// What it should hold.
        expected: String,
        /// The value found.
        found: String,
    },
    /// A field the plugin does not support; names key and value as the spec asks (code 2).
    #[error("unsupported field in network config: {key} = {value}")]
    Unsupported {
        /// The key.
        key: String,
        /// The value, as JSON.
        value: String,
    },
    /// The configuration's version is malformed or unsupported (code 1).
    #[error(transparent)]
    Version(#[from] VersionError),
    /// `prevResult` could not be read (its own code).
    #[error("invalid prevResult: {0}")]
    PrevResult(#[from] ResultError),
}

impl HasErrorCode for ConfigError {
    fn error_code(&self) -> ErrorCode {
        match self {
            ConfigError::Decode(_) => ErrorCode::DecodeFailure,
            ConfigError::Missing { .. } | ConfigError::Invalid { .. } => {
                ErrorCode::InvalidNetworkConfig
            }
            ConfigError::Unsupported { .. } => ErrorCode::UnsupportedField,
            ConfigError::Version(_) => ErrorCode::IncompatibleVersion,
            ConfigError::PrevResult(e) => e.error_code(),
        }
    }
}

/// Checks a network name: an alphanumeric character, then alphanumerics, '_', '.', '-'.
pub fn validate_network_name(name: &str) -> Result<(), ConfigError> {
    let mut bytes = name.bytes();
    let ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key: "name".to_string(),
            expected: "an alphanumeric character followed by alphanumerics, '_', '.' or '-'"
                .to_string(),
            found: name.to_string(),
        })
    }
}

/// Checks a plugin `type` (a binary name): non-empty, no path separators, not '.' or '..'.
pub fn validate_plugin_type(key: &str, plugin_type: &str) -> Result<(), ConfigError> {
    let ok = !plugin_type.is_empty()
        && plugin_type != "."
        && plugin_type != ".."
        && !plugin_type.contains(['/', '\\', '\0']);
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key: key.to_string(),
            expected: "a plugin binary name without '/' or '\\'".to_string(),
            found: plugin_type.to_string(),
        })
    }
}

/// The well-known `dns` dictionary (also the `dns` of results).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Dns {
    /// Priority-ordered nameserver addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Local domain for short hostname lookups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Priority-ordered search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_none()
            && self.search.is_empty()
            && self.options.is_empty()
    }
}

/// The `ipam` dictionary: its `type` plus the IPAM plugin's own keys, kept raw.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct IpamConfig {
    /// The IPAM plugin binary (e.g. "host-local").
    #[serde(rename = "type")]
    pub plugin_type: String,
    /// Every other key of the `ipam` object.
    #[serde(flatten)]
    pub options: Map<String, Value>,
}

/// One `(containerID, ifname)` pair in GC's list of still-valid attachments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcAttachment {
    /// `CNI_CONTAINERID` given at ADD.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// `CNI_IFNAME` given at ADD.
    pub ifname: String,
}

/// A plugin's request configuration, as received on stdin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// The protocol version selected by the runtime.
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// The network name.
    pub name: String,
    /// The plugin binary name.
    #[serde(rename = "type")]
    pub plugin_type: String,
    /// Optional runtime-supplied metadata (conventions: `args.cni.labels`, `args.cni.ips`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Map<String, Value>>,
    /// Well-known: set up IP masquerade on the host.
    #[serde(rename = "ipMasq", default, skip_serializing_if = "Option::is_none")]
    pub ip_masq: Option<bool>,
    /// Well-known: IPAM delegation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<IpamConfig>,
    /// Well-known: DNS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// The previous result in the chain, raw; read it with [`NetworkConfig::prev_result`].
    #[serde(
        rename = "prevResult",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub prev_result: Option<Value>,
    /// Capability arguments.
    #[serde(
        rename = "runtimeConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub runtime_config: Option<RuntimeConfig>,
    /// GC: attachments still valid (spec 1.1.0 release).
    #[serde(
        rename = "cni.dev/valid-attachments",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub valid_attachments: Option<Vec<GcAttachment>>,
    /// GC: the same list under the key of the spec-v1.1.0 tag (legacy).
    #[serde(
        rename = "cni.dev/attachments",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub legacy_attachments: Option<Vec<GcAttachment>>,
    /// Every other key, e.g. plugin-specific options.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

const REQUIRED: [(&str, &str); 3] = [
    ("cniVersion", "the protocol version, e.g. \"1.1.0\""),
    ("name", "the network name"),
    ("type", "the plugin binary name"),
];

impl NetworkConfig {
    /// Reads and validates a request configuration from stdin bytes.
    pub fn parse(bytes: &[u8]) -> Result<NetworkConfig, ConfigError> {
        let value: Value = serde_json::from_slice(bytes).map_err(ConfigError::Decode)?;
        NetworkConfig::from_value(value)
    }

    /// Reads and validates a request configuration. Errors: malformed or wrongly typed
    /// JSON → 6; a missing `cniVersion`, `name` or `type` → 7; an unsupported
    /// `cniVersion` → 1; a bad name, type or `prevResult` → 7 / its own code.
    pub fn from_value(value: Value) -> Result<NetworkConfig, ConfigError> {
        if let Value::Object(map) = &value {
            for (key, expected) in REQUIRED {
                if !map.contains_key(key) {
                    return Err(ConfigError::Missing {
                        key: key.to_string(),
                        expected,
                    });
                }
            }
        }
        let config = NetworkConfig::deserialize(value).map_err(ConfigError::Decode)?;
        check_supported(&config.cni_version)?;
        validate_network_name(&config.name)?;
        validate_plugin_type("type", &config.plugin_type)?;
        if let Some(ipam) = &config.ipam {
            validate_plugin_type("ipam.type", &ipam.plugin_type)?;
        }
        config.prev_result()?;
        Ok(config)
    }

    /// Reads only `cniVersion` from stdin bytes, e.g. for VERSION or for the version of
    /// an error object when the rest is broken. `Ok(None)` when absent.
    pub fn peek_version(bytes: &[u8]) -> Result<Option<String>, ConfigError> {
        #[derive(Deserialize)]
        struct Peek {
            #[serde(rename = "cniVersion", default)]
            cni_version: Option<String>,
        }
        let peek: Peek = serde_json::from_slice(bytes).map_err(ConfigError::Decode)?;
        Ok(peek.cni_version)
    }

    /// The validated spec version.
    pub fn spec_version(&self) -> Result<SpecVersion, VersionError> {
        check_supported(&self.cni_version)
    }

    /// The typed previous result; one without `cniVersion` takes the request's version.
    pub fn prev_result(&self) -> Result<Option<CniResult>, ResultError> {
        self.prev_result
            .as_ref()
            .map(|v| CniResult::from_value(v, Some(&self.cni_version)))
            .transpose()
    }

    /// GC's still-valid attachments: `cni.dev/valid-attachments`, else the legacy key.
    pub fn gc_attachments(&self) -> Option<&[GcAttachment]> {
        self.valid_attachments
            .as_deref()
            .or(self.legacy_attachments.as_deref())
    }

    /// The whole configuration read as a plugin's own options type (unknown keys are
    /// the options type's business).
    pub fn plugin_options<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        T::deserialize(self.to_value()).map_err(ConfigError::Decode)
    }

    /// The configuration as JSON (unknown keys included), e.g. to delegate to IPAM.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}
