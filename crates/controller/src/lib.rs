//! The `podnet controller` process: one active instance (leader election through a
//! store lease) allocates node pod CIDRs, Service ClusterIPs, NodePorts and
//! LoadBalancer addresses, maintains EndpointSlices and schedules pods.
//!
//! Layout: [`plan`] holds the pure planners (cache in, desired objects and allocation
//! keys out), [`cache`] the in-memory view and work queue, [`edge`] everything that
//! talks to the store (informers, leader election, batched compare-and-swap
//! transactions). See `docs/controller.md`.
#![forbid(unsafe_code)]

pub mod alloc;
pub mod cache;
mod controller;
pub mod edge;
mod hash;
mod oneshot;
pub mod options;
pub mod plan;
pub mod progress;
pub mod small;

pub use controller::run;
pub use edge::leader::LEADER_KEY;
pub use oneshot::reconcile_once;
pub use options::{default_identity, ControllerError, ControllerOptions};
pub use progress::{progress, Progress};
