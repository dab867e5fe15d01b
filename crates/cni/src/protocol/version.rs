//! Spec versions: which ones podnet speaks, parsing, negotiation and the VERSION result.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::{ErrorCode, HasErrorCode};

/// The spec versions podnet reads and writes, oldest first.
pub const SUPPORTED_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The spec version this crate implements.
pub const CURRENT_VERSION: &str = "1.1.0";

/// A spec version, `MAJOR.MINOR.PATCH` (Semantic Versioning 2.0 without pre-release or
/// build suffixes, as every CNI spec release is spelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpecVersion {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

impl SpecVersion {
    /// 0.3.0: rich results and plugin chaining.
    pub const V0_3_0: SpecVersion = SpecVersion::new(0, 3, 0);
    /// 0.3.1: typo fixes only.
    pub const V0_3_1: SpecVersion = SpecVersion::new(0, 3, 1);
    /// 0.4.0: CHECK, and prevResult on DEL.
    pub const V0_4_0: SpecVersion = SpecVersion::new(0, 4, 0);
    /// 1.0.0: no `version` in result IPs.
    pub const V1_0_0: SpecVersion = SpecVersion::new(1, 0, 0);
    /// 1.1.0: STATUS, GC, `cniVersions`, and richer interfaces and routes in results.
    pub const V1_1_0: SpecVersion = SpecVersion::new(1, 1, 0);

    /// A version from its parts.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        SpecVersion {
            major,
            minor,
            patch,
        }
    }

    /// Whether podnet speaks this version.
    pub fn is_supported(self) -> bool {
        SUPPORTED_VERSIONS
            .iter()
            .any(|v| v.parse::<SpecVersion>().ok() == Some(self))
    }

    /// Whether the CHECK command exists in this version (0.4.0 and later).
    pub fn has_check(self) -> bool {
        self >= Self::V0_4_0
    }

    /// Whether DEL carries the ADD result as `prevResult` (0.4.0 and later).
    pub fn has_prev_result_on_del(self) -> bool {
        self >= Self::V0_4_0
    }

    /// Whether the STATUS and GC commands exist in this version (1.1.0 and later).
    pub fn has_status_and_gc(self) -> bool {
        self >= Self::V1_1_0
    }

    /// Whether result IPs carry a `"version": "4"|"6"` field (0.3.x and 0.4.0).
    pub fn result_ips_have_version(self) -> bool {
        self < Self::V1_0_0
    }
}

impl fmt::Display for SpecVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Errors about versions; all are code 1 (incompatible CNI version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// Not `MAJOR.MINOR.PATCH`.
    #[error("malformed cni version: expected MAJOR.MINOR.PATCH such as 1.1.0, found {found:?}")]
    Malformed {
        /// The text found.
        found: String,
    },
    /// A well-formed version podnet does not speak.
    #[error("incompatible cni version: expected one of {}, found {found}", SUPPORTED_VERSIONS.join(", "))]
    Unsupported {
        /// The version found.
        found: String,
    },
    /// No version is offered by the configuration, podnet and every plugin alike.
    #[error(
        "incompatible cni version: expected a version common to the configuration [{}], podnet [{}]{}, found none",
        offered.join(", "),
        SUPPORTED_VERSIONS.join(", "),
        plugin_note(plugins)
    )]
    NoCommonVersion {
        /// The versions the configuration offered.
        offered: Vec<String>,
        /// The versions each plugin reported, by plugin type.
        plugins: Vec<(String, Vec<String>)>,
    },
}

fn plugin_note(plugins: &[(String, Vec<String>)]) -> String {
    plugins
        .iter()
        .map(|(name, versions)| format!(" and plugin {name} [{}]", versions.join(", ")))
        .collect()
}

impl HasErrorCode for VersionError {
    fn error_code(&self) -> ErrorCode {
        ErrorCode::IncompatibleVersion
    }
}

impl FromStr for SpecVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || VersionError::Malformed {
            found: s.to_string(),
        };
        let mut parts = s.split('.');
        let mut next = || -> Result<u32, VersionError> {
            let part = parts.next().ok_or_else(malformed)?;
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            part.parse().map_err(|_| malformed())
        };
        let version = SpecVersion::new(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(malformed());
        }
        Ok(version)
    }
}

/// Parses a version and requires podnet to support it.
pub fn check_supported(version: &str) -> Result<SpecVersion, VersionError> {
    let parsed: SpecVersion = version.parse()?;
    if parsed.is_supported() {
        Ok(parsed)
    } else {
        Err(VersionError::Unsupported {
            found: version.to_string(),
        })
    }
}

/// Picks the version to run a configuration with: the highest version that the
/// configuration offers (its `cniVersion` plus `cniVersions`), that podnet supports and
/// that every plugin reported in `plugins` (type, `supportedVersions`) supports.
///
/// Malformed offered versions are an error; well-formed but unknown ones (e.g. a future
/// "2.0.0") are skipped, as the spec lets configurations list versions a runtime lacks.
pub fn negotiate(
    offered: &[String],
    plugins: &[(String, Vec<String>)],
) -> Result<SpecVersion, VersionError> {
    let mut best: Option<SpecVersion> = None;
    for text in offered {
        let version: SpecVersion = text.parse()?;
        let plugins_ok = plugins
            .iter()
            .all(|(_, supported)| supported.iter().any(|s| s.parse().ok() == Some(version)));
        if version.is_supported() && plugins_ok && best.is_none_or(|b| version > b) {
            best = Some(version);
        }
    }
    best.ok_or_else(|| VersionError::NoCommonVersion {
        offered: offered.to_vec(),
        plugins: plugins.to_vec(),
    })
}

/// The VERSION result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The `cniVersion` given on input (or the current version when none was given).
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// Every spec version the plugin supports.
    #[serde(rename = "supportedVersions")]
    pub supported_versions: Vec<String>,
}

impl VersionInfo {
    /// podnet's own VERSION answer to a request that carried `requested` as `cniVersion`.
    pub fn podnet(requested: Option<&str>) -> Self {
        VersionInfo {
            cni_version: requested.unwrap_or(CURRENT_VERSION).to_string(),
            supported_versions: SUPPORTED_VERSIONS.iter().map(|v| v.to_string()).collect(),
        }
    }

    /// Whether the plugin reported support for `version`.
    pub fn supports(&self, version: SpecVersion) -> bool {
        self.supported_versions
            .iter()
            .any(|v| v.parse().ok() == Some(version))
    }
}
