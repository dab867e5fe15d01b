//! The lab's node runtime: the kubelet and container-runtime role for one node.
//!
//! [`run`] follows the pods bound to its node and, for each, runs a worker that
//! - makes the sandbox: a network namespace (`<prefix>pod-<uid12>`) attached by the
//!   node's CNI network, with `/etc/netns/<podns>/{resolv.conf,hosts}` for its processes;
//! - starts the containers as detached processes in that namespace (init containers
//!   first, one by one), restarts them by the restart policy with back-off, and runs
//!   startup, readiness and liveness probes;
//! - writes the pod status back (compare-and-swap, only when it changed);
//! - on deletion stops everything (SIGTERM, grace period, SIGKILL), releases the
//!   network, removes the namespace and files, and deletes the pod from the store.
//!
//! Containers outlive the runtime: a restarted runtime adopts them from the process
//! records in the pod directories. It runs inside the node's network namespace, so
//! CNI's host-side changes and the probes happen there. See `docs/runtime.md`.
#![forbid(unsafe_code)]

mod cleanup;
pub mod cni;
pub mod config;
pub mod container;
pub mod dns;
pub mod env;
pub mod error;
pub mod launch;
mod manager;
pub mod names;
pub mod probe;
pub mod process;
pub mod procfs;
pub mod sandbox;
pub mod status;
mod worker;
mod writeback;
mod writefile;

pub use cleanup::teardown_all;
pub use config::{Backoff, DnsSettings, RuntimeConfig};
pub use error::RuntimeError;
pub use manager::run;
pub use names::{log_path, pod_netns_name};
