//! The CNI protocol as data: pure parsing, validation, conversion and derivation. No I/O.
//!
//! Module map, following the spec's sections:
//! - [`command`]: `CNI_COMMAND` values.
//! - [`env`]: the `CNI_*` environment (plugin side: parse and validate; runtime side: render).
//! - [`config`]: a single plugin's request configuration (what a plugin reads on stdin).
//! - [`runtime_config`]: the typed well-known capabilities inside `runtimeConfig`.
//! - [`conflist`]: network configuration lists, as an administrator writes them.
//! - [`derive`]: section 3, turning a list entry into a plugin's request configuration.
//! - [`version`]: supported versions and negotiation.
//! - [`result`]: the ADD success result and its conversion between spec versions.
//! - [`error`]: the error object and the well-known error codes.

pub mod command;
pub mod config;
pub mod conflist;
pub mod derive;
pub mod env;
pub mod error;
pub mod result;
pub mod runtime_config;
pub mod version;

pub use command::Command;
pub use config::{ConfigError, Dns, GcAttachment, IpamConfig, NetworkConfig};
pub use conflist::{NetworkConfigList, PluginConfig};
pub use derive::{derive_request, RequestParams};
pub use env::{
    parse_cni_args, render_cni_args, validate_container_id, validate_ifname, AttachmentEnv,
    EnvError, PluginEnv,
};
pub use error::{CniError, ErrorCode, HasErrorCode};
pub use result::{CniResult, Interface, IpConfig, ResultError, Route};
pub use runtime_config::{
    Bandwidth, IpRequest, PortMapping, PortProtocol, RuntimeConfig, RuntimeDns,
};
pub use version::{
    negotiate, SpecVersion, VersionError, VersionInfo, CURRENT_VERSION, SUPPORTED_VERSIONS,
};
