//! The plugin's errors and the CNI error code each maps to.

use codes::*;

use crate::protocol::{ConfigError, EnvError, ErrorCode, HasErrorCode};

/// podnet's own error codes (100 and up, as the spec reserves 0-99).
pub mod codes {
    /// A kernel (netlink, namespace) operation failed.
    pub const KERNEL: u32 = 100;
    /// The node is missing from the store or has no `spec.podCIDR`.
    pub const NODE: u32 = 101;
    /// A requested IP is outside the pod CIDR, reserved, or taken.
    pub const REQUESTED_IP: u32 = 102;
    /// Every address of the node's pod CIDR is allocated.
    pub const EXHAUSTED: u32 = 103;
    /// CHECK found the attachment differs from what ADD made.
    pub const CHECK: u32 = 104;
    /// The store holds data the plugin cannot read, or a transaction kept conflicting.
    pub const STORE_DATA: u32 = 105;
}

/// Everything the plugin can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The command does not exist in the configuration's `cniVersion`.
    #[error("{0}")]
    Version(String),
    /// Reading stdin or writing stdout failed.
    #[error("{0}")]
    Io(String),
    /// CNI_NETNS names a path that does not exist.
    #[error("network namespace {path} does not exist")]
    NetnsMissing { path: String },
    /// CNI_NETNS names something that is not a network namespace.
    #[error("invalid environment variable CNI_NETNS: {0}")]
    NetnsInvalid(String),
    /// The store could not be opened or did not answer.
    #[error("store unavailable: {0}")]
    StoreUnavailable(String),
    #[error("{0}")]
    StoreData(String),
    #[error("{0}")]
    Node(String),
    #[error("{0}")]
    RequestedIp(String),
    #[error("{0}")]
    Exhausted(String),
    #[error("{0}")]
    Kernel(String),
    #[error("check failed: {0}")]
    Check(String),
    /// STATUS: the plugin cannot serve ADD.
    #[error("{0}")]
    NotAvailable(String),
    /// STATUS: cannot serve ADD, and existing pods may have limited connectivity.
    #[error("{0}")]
    NotAvailableLimited(String),
}

impl HasErrorCode for PluginError {
    fn error_code(&self) -> ErrorCode {
        match self {
            PluginError::Env(e) => e.error_code(),
            PluginError::Config(e) => e.error_code(),
            PluginError::Io(_) => ErrorCode::IoFailure,
            PluginError::Version(_) => ErrorCode::IncompatibleVersion,
            PluginError::NetnsMissing { .. } => ErrorCode::ContainerUnknown,
            PluginError::NetnsInvalid(_) => ErrorCode::InvalidEnvironment,
            PluginError::StoreUnavailable(_) => ErrorCode::TryAgainLater,
            PluginError::StoreData(_) => ErrorCode::Plugin(STORE_DATA),
            PluginError::Node(_) => ErrorCode::Plugin(NODE),
            PluginError::RequestedIp(_) => ErrorCode::Plugin(REQUESTED_IP),
            PluginError::Exhausted(_) => ErrorCode::Plugin(EXHAUSTED),
            PluginError::Kernel(_) => ErrorCode::Plugin(KERNEL),
            PluginError::Check(_) => ErrorCode::Plugin(CHECK),
            PluginError::NotAvailable(_) => ErrorCode::PluginNotAvailable,
            PluginError::NotAvailableLimited(_) => ErrorCode::PluginNotAvailableLimitedConnectivity,
        }
    }
}

impl From<podnet_store::StoreError> for PluginError {
    fn from(e: podnet_store::StoreError) -> Self {
        use podnet_store::StoreError as S;
        match e {
            S::Unavailable { .. } | S::Backend(_) => PluginError::StoreUnavailable(e.to_string()),
            other => PluginError::StoreData(format!("store: {other}")),
        }
    }
}

impl From<podnet_linux::NetlinkError> for PluginError {
    fn from(e: podnet_linux::NetlinkError) -> Self {
        PluginError::Kernel(e.to_string())
    }
}

impl From<podnet_linux::NetnsError> for PluginError {
    fn from(e: podnet_linux::NetnsError) -> Self {
        PluginError::Kernel(e.to_string())
    }
}
