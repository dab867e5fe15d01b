//! Errors of the lab.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Config(#[from] crate::config::LabConfigError),
    #[error(transparent)]
    Netns(#[from] podnet_linux::NetnsError),
    #[error(transparent)]
    Netlink(#[from] podnet_linux::NetlinkError),
    #[error(transparent)]
    Sysctl(#[from] podnet_linux::SysctlError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting {what}: {source}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("lab {lab} is not running (no state in {dir})")]
    NotRunning { lab: String, dir: PathBuf },
    #[error("host {host:?} is not part of lab {lab}: expected one of {known}")]
    NoSuchHost {
        lab: String,
        host: String,
        known: String,
    },
    #[error("{0}")]
    Failed(String),
}

impl LabError {
    pub fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> LabError {
        let path = path.into();
        move |source| LabError::Io { what, path, source }
    }
}
