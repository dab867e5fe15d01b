//! How a controller runs, and what can stop it.

use std::time::Duration;

/// Settings of one controller instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerOptions {
    /// Identity written to the leader key; default `<hostname>-<pid>`.
    pub identity: Option<String>,
    /// Lease TTL of the leader key (default 5 s, at least 1 s). A standby takes over
    /// within this time of the leader's death.
    pub lease_ttl: Duration,
    /// Dirty keys of each class taken per batch (default 512).
    pub batch_size: usize,
    /// Endpoints per EndpointSlice (default 100, as kube).
    pub max_endpoints_per_slice: usize,
    /// Every this often the leader reconciles everything, releasing leaked
    /// allocations and repairing slices (default 60 s).
    pub resync_interval: Duration,
    /// Pause before retrying keys whose write conflicted (default 100 ms).
    pub retry_delay: Duration,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            identity: None,
            lease_ttl: Duration::from_secs(5),
            batch_size: 512,
            max_endpoints_per_slice: crate::plan::slices::MAX_ENDPOINTS_PER_SLICE,
            resync_interval: Duration::from_secs(60),
            retry_delay: Duration::from_millis(100),
        }
    }
}

impl ControllerOptions {
    /// The identity to campaign with.
    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(default_identity)
    }

    pub fn validate(&self) -> Result<(), ControllerError> {
        if self.identity.as_deref() == Some("") {
            return Err(ControllerError::Options(
                "expected a non-empty identity, found \"\"".into(),
            ));
        }
        if self.lease_ttl < Duration::from_secs(1) {
            return Err(ControllerError::Options(format!(
                "expected a lease ttl of at least 1s, found {:?}",
                self.lease_ttl
            )));
        }
        if self.batch_size == 0 || self.max_endpoints_per_slice == 0 {
            return Err(ControllerError::Options(format!(
                "expected batch size and endpoints per slice above 0, found {} and {}",
                self.batch_size, self.max_endpoints_per_slice
            )));
        }
        Ok(())
    }
}

/// `<hostname>-<pid>`.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}-{}", std::process::id())
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("controller options: {0}")]
    Options(String),
    #[error("controller failed: {0}")]
    Internal(String),
    #[error(transparent)]
    Api(#[from] podnet_store::typed::ApiError),
    #[error(transparent)]
    Store(#[from] podnet_store::StoreError),
}
