//! The CNI error object (spec section 5, "Error") and the well-known error codes.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A CNI error code. Codes 0-99 are reserved for the spec; 100 and up are plugin-specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 1: incompatible CNI version.
    IncompatibleVersion,
    /// 2: unsupported field in network configuration; the message names key and value.
    UnsupportedField,
    /// 3: container unknown or does not exist; the runtime need not clean up (no DEL).
    ContainerUnknown,
    /// 4: invalid necessary environment variables; the message names them.
    InvalidEnvironment,
    /// 5: I/O failure, e.g. reading the configuration from stdin.
    IoFailure,
    /// 6: failed to decode content, e.g. unmarshalling the configuration or a version.
    DecodeFailure,
    /// 7: invalid network configuration.
    InvalidNetworkConfig,
    /// 11: try again later; a transient condition the runtime may retry after.
    TryAgainLater,
    /// 50 (STATUS): the plugin is not available, i.e. cannot service ADD requests.
    PluginNotAvailable,
    /// 51 (STATUS): the plugin is not available, and existing containers in the network
    /// may have limited connectivity.
    PluginNotAvailableLimitedConnectivity,
    /// Another code below 100, reserved by the spec but not assigned a meaning.
    Reserved(u32),
    /// A plugin-specific code, 100 or more (podnet's own plugin uses this range).
    Plugin(u32),
}

/// The first code a plugin may use for its own errors.
pub const FIRST_PLUGIN_CODE: u32 = 100;

impl ErrorCode {
    /// The numeric code.
    pub fn as_u32(self) -> u32 {
        match self {
            ErrorCode::IncompatibleVersion => 1,
            ErrorCode::UnsupportedField => 2,
            ErrorCode::ContainerUnknown => 3,
            ErrorCode::InvalidEnvironment => 4,
            ErrorCode::IoFailure => 5,
            ErrorCode::DecodeFailure => 6,
            ErrorCode::InvalidNetworkConfig => 7,
            ErrorCode::TryAgainLater => 11,
            ErrorCode::PluginNotAvailable => 50,
            ErrorCode::PluginNotAvailableLimitedConnectivity => 51,
            ErrorCode::Reserved(n) | ErrorCode::Plugin(n) => n,
        }
    }

    /// The code for a number; every number maps to exactly one code.
    pub fn from_u32(n: u32) -> ErrorCode {
        match n {
            1 => ErrorCode::IncompatibleVersion,
            2 => ErrorCode::UnsupportedField,
            3 => ErrorCode::ContainerUnknown,
            4 => ErrorCode::InvalidEnvironment,
            5 => ErrorCode::IoFailure,
            6 => ErrorCode::DecodeFailure,
            7 => ErrorCode::InvalidNetworkConfig,
            11 => ErrorCode::TryAgainLater,
            50 => ErrorCode::PluginNotAvailable,
            51 => ErrorCode::PluginNotAvailableLimitedConnectivity,
            n if n >= FIRST_PLUGIN_CODE => ErrorCode::Plugin(n),
            n => ErrorCode::Reserved(n),
        }
    }

    /// The spec's short description of a well-known code.
    pub fn description(self) -> &'static str {
        match self {
            ErrorCode::IncompatibleVersion => "incompatible cni version",
            ErrorCode::UnsupportedField => "unsupported field in network configuration",
            ErrorCode::ContainerUnknown => "container unknown or does not exist",
            ErrorCode::InvalidEnvironment => "invalid necessary environment variables",
            ErrorCode::IoFailure => "i/o failure",
            ErrorCode::DecodeFailure => "failed to decode content",
            ErrorCode::InvalidNetworkConfig => "invalid network config",
            ErrorCode::TryAgainLater => "try again later",
            ErrorCode::PluginNotAvailable => "plugin not available",
            ErrorCode::PluginNotAvailableLimitedConnectivity => {
                "plugin not available, existing containers may have limited connectivity"
            }
            ErrorCode::Reserved(_) => "reserved error code",
            ErrorCode::Plugin(_) => "plugin-specific error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u32())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.as_u32())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u32::deserialize(d).map(ErrorCode::from_u32)
    }
}

/// The error object a plugin prints on stdout when it fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniError {
    /// The protocol version in use. Older plugins may omit it; it is then empty.
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    /// The error code.
    pub code: ErrorCode,
    /// A short message characterising the error.
    pub msg: String,
    /// A longer message describing the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

impl CniError {
    /// An error object without details.
    pub fn new(cni_version: impl Into<String>, code: ErrorCode, msg: impl Into<String>) -> Self {
        CniError {
            cni_version: cni_version.into(),
            code,
            msg: msg.into(),
            details: None,
        }
    }

    /// The same error with `details` set.
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// The JSON a plugin prints.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            // Serialising plain strings and a number cannot fail; keep a safe fallback.
            format!("{{\"code\":{},\"msg\":\"error\"}}", self.code.as_u32())
        })
    }
}

impl fmt::Display for CniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cni error {}: {}", self.code.as_u32(), self.msg)?;
        if let Some(details) = &self.details {
            if !details.is_empty() {
                write!(f, " ({details})")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for CniError {}

/// Errors that map to a CNI error code, so a plugin can report them as an error object.
pub trait HasErrorCode: fmt::Display {
    /// The well-known code for this error.
    fn error_code(&self) -> ErrorCode;

    /// This error as a CNI error object for the given protocol version.
    fn to_cni_error(&self, cni_version: &str) -> CniError {
        CniError::new(cni_version, self.error_code(), self.to_string())
    }
}
