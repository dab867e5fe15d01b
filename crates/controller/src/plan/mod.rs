//! Pure planners: cache in, desired state out. No I/O, no clocks (the time is an
//! input), randomness only through the `Rng` passed in.

mod claimer;
pub mod cluster_ip;
pub mod conditions;
pub mod gc;
pub mod lb;
pub mod node_ports;
pub mod pod_cidr;
pub mod schedule;
pub mod service;
pub mod slices;

pub use conditions::Problem;
pub use service::{plan_service, AllocPlan, Ctx, Planned, ServicePlan};

#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests_other;
#[cfg(test)]
mod tests_service;
