//! API-server-style validation of every field podnet uses.

use crate::config::ClusterConfigSpec;
use crate::manifest::FieldError;
use crate::object::Object;

/// Validates one object against the cluster's configuration; returns every problem.
pub fn validate(_obj: &Object, _cfg: &ClusterConfigSpec) -> Vec<FieldError> {
    Vec::new()
}
