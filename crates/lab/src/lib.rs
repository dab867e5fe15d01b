//! The lab: a real multi-node Kubernetes network built from network namespaces on one
//! machine. `config` is the `podnet.io/v1alpha1 Lab` file, `plan` turns it into the
//! namespaces, links and addresses to create (pure, tested without root).
#![forbid(unsafe_code)]

pub mod config;
pub mod plan;

pub use config::Lab;
pub use plan::LabPlan;
