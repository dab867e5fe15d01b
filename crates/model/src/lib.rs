//! podnet's object model: the Kubernetes objects podnet uses (as `k8s-openapi` types),
//! podnet's own `ClusterConfig`, manifest loading and API-server-style validation.
//! Pure: no I/O except reading manifest files.
#![forbid(unsafe_code)]

pub mod config;
pub mod kind;
pub mod labels;
pub mod manifest;
pub mod object;
pub mod service;
pub mod validate;

pub use config::{ClusterConfig, ClusterConfigSpec, OverlayMode};
pub use k8s_openapi;
pub use kind::Kind;
pub use labels::Selector;
pub use manifest::{FieldError, Manifest, ManifestError, Source};
pub use object::{Object, ObjectRef};
pub use validate::{validate, validate_all, Validated};
