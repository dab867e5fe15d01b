//! Errors of the node runtime.

use std::path::PathBuf;

use podnet_cni::InvokeError;
use podnet_linux::{NetlinkError, NetnsError};
use podnet_store::typed::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("store: {0}")]
    Api(#[from] ApiError),
    #[error("cni: {0}")]
    Cni(#[from] InvokeError),
    #[error("network namespace: {0}")]
    Netns(#[from] NetnsError),
    #[error("netlink: {0}")]
    Netlink(#[from] NetlinkError),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting {argv:?}: {source}")]
    Spawn {
        argv: String,
        #[source]
        source: std::io::Error,
    },
    #[error("expected the program {tool:?} in PATH or the default PATH, found none")]
    MissingTool { tool: String },
    #[error("cni ADD returned no IP address: expected at least one in the result, found {found}")]
    NoPodIp { found: String },
    #[error("a blocking task failed: {0}")]
    Join(String),
    #[error("teardown: {} step(s) failed: {}", .0.len(), join(.0))]
    Teardown(Vec<String>),
}

fn join(errors: &[String]) -> String {
    errors.join("; ")
}

impl RuntimeError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> RuntimeError {
        let path = path.into();
        move |source| RuntimeError::Io { op, path, source }
    }
}
