//! API-server-style validation of every field podnet uses.
//!
//! [`validate`] checks one object against the cluster's configuration and returns every
//! problem (never only the first), each as a [`FieldError`] with the path from the
//! object root (`spec.ports[1].targetPort`), what was expected and what was found
//! (strings quoted, numbers bare, `nothing` for a missing field).
//! [`validate_all`] checks one apply's worth of manifests, adding the checks that need
//! more than one object: duplicates, and a `ClusterConfig` in the same apply.
//!
//! The rules re-implement Kubernetes' own (`pkg/apis/core/validation`,
//! `pkg/apis/networking/validation`, `pkg/apis/discovery/validation`,
//! `apimachinery/pkg/util/validation`), plus podnet's: addresses inside the configured
//! CIDRs, node ports inside the configured range. `docs/validation.md` lists them all.
//!
//! One file per concern: the shared vocabularies ([`names`], [`net`], [`ports`],
//! [`selectors`], `meta`), then one file per kind.

mod batch;
mod clusterconfig;
mod container;
mod data;
mod endpointslice;
mod ingress;
mod meta;
pub mod names;
mod namespace;
pub mod net;
mod networkpolicy;
mod node;
mod pod;
pub mod ports;
mod report;
pub mod selectors;
mod service;
mod service_ips;

pub use batch::{validate_all, Validated};
pub use report::{quote, Mismatch};

use crate::config::ClusterConfigSpec;
use crate::manifest::FieldError;
use crate::object::Object;
use report::Report;

/// Validates one object against the cluster's configuration; returns every problem.
pub fn validate(obj: &Object, cfg: &ClusterConfigSpec) -> Vec<FieldError> {
    let mut r = Report::new();
    meta::check_meta(&mut r, obj.kind(), obj.meta());
    match obj {
        Object::Namespace(o) => namespace::check(&mut r, o),
        Object::Node(o) => node::check(&mut r, o, cfg),
        Object::Pod(o) => pod::check(&mut r, o),
        Object::Service(o) => {
            service::check(&mut r, o, cfg);
            service_ips::check(&mut r, o, cfg);
        }
        Object::Secret(o) => data::check_secret(&mut r, o),
        Object::ConfigMap(o) => data::check_config_map(&mut r, o),
        Object::EndpointSlice(o) => endpointslice::check(&mut r, o),
        Object::NetworkPolicy(o) => networkpolicy::check(&mut r, o),
        Object::Ingress(o) => ingress::check(&mut r, o),
        Object::ClusterConfig(o) => clusterconfig::check(&mut r, o),
    }
    r.into_errors()
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the per-kind tests: decode YAML, validate, show the errors.

    use super::*;

    /// Decodes one object from YAML (panicking on decode errors: tests write valid YAML).
    pub fn object(yaml: &str) -> Object {
        let value: serde_json::Value = serde_yaml_ng::from_str(yaml).expect("test YAML");
        Object::from_value(value).expect("test object decodes")
    }

    /// Every error of the object as `field: expected ..., found ...`.
    pub fn errors_with(yaml: &str, cfg: &ClusterConfigSpec) -> Vec<String> {
        validate(&object(yaml), cfg)
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    pub fn errors(yaml: &str) -> Vec<String> {
        errors_with(yaml, &ClusterConfigSpec::default())
    }

    /// Asserts that `yaml` is valid.
    pub fn assert_valid(yaml: &str) {
        let errs = errors(yaml);
        assert!(
            errs.is_empty(),
            "expected no errors for\n{yaml}\ngot {errs:#?}"
        );
    }

    /// Asserts that `yaml` has exactly one error and that it starts with `want`.
    pub fn assert_one(yaml: &str, want: &str) {
        let errs = errors(yaml);
        assert_eq!(
            errs.len(),
            1,
            "expected one error for\n{yaml}\ngot {errs:#?}"
        );
        assert!(
            errs[0].starts_with(want),
            "for\n{yaml}\nexpected an error starting with\n  {want}\ngot\n  {}",
            errs[0]
        );
    }
}
