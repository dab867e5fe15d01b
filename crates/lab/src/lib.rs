//! The lab: a real multi-node Kubernetes network built from network namespaces on one
//! machine. `config` is the `podnet.io/v1alpha1 Lab` file, `plan` turns it into the
//! namespaces, links and addresses to create (pure, tested without root).
#![forbid(unsafe_code)]

pub mod check;
pub mod config;
pub mod down;
pub mod error;
pub mod etcd;
pub mod plan;
pub mod procs;
pub mod underlay;
pub mod up;

pub use config::Lab;
pub use error::LabError;
pub use plan::LabPlan;
