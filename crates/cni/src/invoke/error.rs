//! Errors of the runtime side.

use std::path::PathBuf;
use std::time::Duration;

use crate::protocol::{
    CniError, Command, ConfigError, EnvError, ErrorCode, HasErrorCode, ResultError, VersionError,
};

/// Why running a plugin or a configuration list failed.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// No executable named after the plugin type in any plugin directory.
    #[error(
        "plugin {plugin:?} not found: expected an executable file in [{}], found none",
        display_dirs(dirs)
    )]
    NotFound {
        /// The plugin type.
        plugin: String,
        /// The directories searched.
        dirs: Vec<PathBuf>,
    },
    /// The attachment parameters break the spec's rules.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No usable protocol version.
    #[error(transparent)]
    Version(#[from] VersionError),
    /// A plugin's result could not be read.
    #[error("plugin {plugin} {command}: {source}")]
    Result {
        /// The plugin type.
        plugin: String,
        /// The command.
        command: Command,
        /// The cause.
        #[source]
        source: ResultError,
    },
    /// The plugin (or the exec prefix) could not be started.
    #[error("failed to start plugin {}: {source}", path.display())]
    Spawn {
        /// What was executed.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Talking to or waiting for the plugin process failed.
    #[error("i/o with plugin {plugin} {command}: {source}")]
    Io {
        /// The plugin type.
        plugin: String,
        /// The command.
        command: Command,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The plugin did not finish in time and was killed.
    #[error(
        "plugin {plugin} {command} timed out: expected it to finish within {timeout:?}, killed it"
    )]
    Timeout {
        /// The plugin type.
        plugin: String,
        /// The command.
        command: Command,
        /// The limit.
        timeout: Duration,
    },
    /// The plugin exited non-zero and printed a CNI error object.
    #[error("plugin {plugin} {command} failed: {error}")]
    Plugin {
        /// The plugin type.
        plugin: String,
        /// The command.
        command: Command,
        /// The error object.
        error: CniError,
        /// What the plugin wrote to stderr.
        stderr: String,
    },
    /// The plugin exited non-zero without a readable error object.
    #[error("plugin {plugin} {command} failed: expected exit status 0 or an error object on stdout, found {status} with stdout {stdout:?} and stderr {stderr:?}")]
    Failed {
        /// The plugin type.
        plugin: String,
        /// The command.
        command: Command,
        /// The exit status.
        status: String,
        /// What the plugin wrote to stdout.
        stdout: String,
        /// What the plugin wrote to stderr.
        stderr: String,
    },
    /// The plugin succeeded but printed something other than JSON.
    #[error("plugin {plugin} {command} printed undecodable output: expected JSON, found {stdout:?}: {source}")]
    Decode {
        /// The plugin type.
        plugin: String,
        /// The command.
        command: Command,
        /// What was printed.
        stdout: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// ADD or VERSION succeeded but printed nothing.
    #[error("plugin {plugin} {command} printed nothing: expected a result on stdout")]
    MissingOutput {
        /// The plugin type.
        plugin: String,
        /// The command.
        command: Command,
    },
    /// CHECK without a cached ADD result.
    #[error("no cached ADD result for network {network}, container {container_id}, interface {ifname}: CHECK expected one, found none")]
    NoCachedResult {
        /// The network name.
        network: String,
        /// The container ID.
        container_id: String,
        /// The interface name.
        ifname: String,
    },
    /// CHECK of a configuration whose version predates it.
    #[error("CHECK of network {network}: expected cniVersion 0.4.0 or later, found {version}")]
    CheckUnsupported {
        /// The network name.
        network: String,
        /// The negotiated version.
        version: String,
    },
    /// Reading or writing the result cache failed.
    #[error("result cache {}: {source}", path.display())]
    Cache {
        /// The cache file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A cache file holds something else than a podnet cache record.
    #[error("result cache {}: expected a podnet cache record, found undecodable content: {source}", path.display())]
    CacheDecode {
        /// The cache file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The configuration directory has no configuration file.
    #[error("no network configuration in {}: expected a *.conflist, *.conf or *.json file, found none", dir.display())]
    NoConfig {
        /// The directory.
        dir: PathBuf,
    },
    /// Reading a configuration file or directory failed.
    #[error("reading network configuration {}: {source}", path.display())]
    ReadConfig {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// GC ran every plugin; these failed.
    #[error("GC of network {network}: {} failure(s): {}", errors.len(), join_errors(errors))]
    Gc {
        /// The network name.
        network: String,
        /// Every failure, in plugin order.
        errors: Vec<InvokeError>,
    },
}

fn display_dirs(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn join_errors(errors: &[InvokeError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl InvokeError {
    /// The plugin's own error object, when the plugin reported one.
    pub fn cni_error(&self) -> Option<&CniError> {
        match self {
            InvokeError::Plugin { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl HasErrorCode for InvokeError {
    /// A plugin's own code is kept, so a plugin that delegates (e.g. to IPAM) can pass the
    /// delegate's error on unchanged.
    fn error_code(&self) -> ErrorCode {
        match self {
            InvokeError::Plugin { error, .. } => error.code,
            InvokeError::Env(e) => e.error_code(),
            InvokeError::Config(e) => e.error_code(),
            InvokeError::Version(e) => e.error_code(),
            InvokeError::Result { source, .. } => source.error_code(),
            InvokeError::CheckUnsupported { .. } => ErrorCode::IncompatibleVersion,
            InvokeError::Decode { .. } | InvokeError::CacheDecode { .. } => {
                ErrorCode::DecodeFailure
            }
            InvokeError::Timeout { .. } => ErrorCode::TryAgainLater,
            InvokeError::NoConfig { .. } => ErrorCode::InvalidNetworkConfig,
            InvokeError::Gc { errors, .. } => errors
                .first()
                .map(|e| e.error_code())
                .unwrap_or(ErrorCode::IoFailure),
            InvokeError::NotFound { .. }
            | InvokeError::Spawn { .. }
            | InvokeError::Io { .. }
            | InvokeError::Failed { .. }
            | InvokeError::MissingOutput { .. }
            | InvokeError::NoCachedResult { .. }
            | InvokeError::Cache { .. }
            | InvokeError::ReadConfig { .. } => ErrorCode::IoFailure,
        }
    }
}
