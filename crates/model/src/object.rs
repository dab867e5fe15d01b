//! One value for any object podnet stores, with its identity and (de)serialisation.

use std::fmt;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::config::ClusterConfig;
use crate::kind::Kind;

/// Any object podnet stores. The Kubernetes kinds are the `k8s-openapi` types, so that
/// objects serialise exactly as Kubernetes writes them.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Namespace(Namespace),
    Node(Node),
    Pod(Pod),
    Service(Service),
    Secret(Secret),
    ConfigMap(ConfigMap),
    EndpointSlice(EndpointSlice),
    NetworkPolicy(NetworkPolicy),
    Ingress(Ingress),
    ClusterConfig(ClusterConfig),
}

/// Applies `$body` to the inner value of every variant.
macro_rules! each {
    ($obj:expr, $v:ident => $body:expr) => {
        match $obj {
            Object::Namespace($v) => $body,
            Object::Node($v) => $body,
            Object::Pod($v) => $body,
            Object::Service($v) => $body,
            Object::Secret($v) => $body,
            Object::ConfigMap($v) => $body,
            Object::EndpointSlice($v) => $body,
            Object::NetworkPolicy($v) => $body,
            Object::Ingress($v) => $body,
            Object::ClusterConfig($v) => $body,
        }
    };
}

/// The identity of an object as messages show it: `Service default/web`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: Kind, namespace: Option<&str>, name: &str) -> Self {
        ObjectRef {
            kind,
            namespace: if kind.namespaced() {
                Some(namespace.unwrap_or("default").to_string())
            } else {
                None
            },
            name: name.to_string(),
        }
    }

    pub fn key(&self) -> String {
        self.kind.key(self.namespace.as_deref(), &self.name)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Decoding an object from its stored or written form failed.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("unsupported apiVersion/kind {api_version}/{kind}: podnet knows v1 Namespace, Node, Pod, Service, Secret, ConfigMap; discovery.k8s.io/v1 EndpointSlice; networking.k8s.io/v1 NetworkPolicy, Ingress; podnet.io/v1alpha1 ClusterConfig")]
    UnknownType { api_version: String, kind: String },
    #[error("{0}")]
    Invalid(#[from] serde_json::Error),
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Namespace(_) => Kind::Namespace,
            Object::Node(_) => Kind::Node,
            Object::Pod(_) => Kind::Pod,
            Object::Service(_) => Kind::Service,
            Object::Secret(_) => Kind::Secret,
            Object::ConfigMap(_) => Kind::ConfigMap,
            Object::EndpointSlice(_) => Kind::EndpointSlice,
            Object::NetworkPolicy(_) => Kind::NetworkPolicy,
            Object::Ingress(_) => Kind::Ingress,
            Object::ClusterConfig(_) => Kind::ClusterConfig,
        }
    }

    pub fn meta(&self) -> &ObjectMeta {
        each!(self, o => &o.metadata)
    }

    pub fn meta_mut(&mut self) -> &mut ObjectMeta {
        each!(self, o => &mut o.metadata)
    }

    pub fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or_default()
    }

    /// The namespace, defaulted to `default` for namespaced kinds; None otherwise.
    pub fn namespace(&self) -> Option<&str> {
        if self.kind().namespaced() {
            Some(self.meta().namespace.as_deref().unwrap_or("default"))
        } else {
            None
        }
    }

    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::new(self.kind(), self.namespace(), self.name())
    }

    pub fn key(&self) -> String {
        self.kind().key(self.namespace(), self.name())
    }

    /// Decodes a JSON value that carries `apiVersion` and `kind`.
    pub fn from_value(value: serde_json::Value) -> Result<Object, DecodeError> {
        let api_version = value
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .ok_or(DecodeError::Missing("apiVersion"))?
            .to_string();
        let kind_name = value
            .get("kind")
            .and_then(|v| v.as_str())
            .ok_or(DecodeError::Missing("kind"))?
            .to_string();
        let kind = Kind::from_type(&api_version, &kind_name).ok_or(DecodeError::UnknownType {
            api_version,
            kind: kind_name,
        })?;
        Ok(match kind {
            Kind::Namespace => Object::Namespace(serde_json::from_value(value)?),
            Kind::Node => Object::Node(serde_json::from_value(value)?),
            Kind::Pod => Object::Pod(serde_json::from_value(value)?),
            Kind::Service => Object::Service(serde_json::from_value(value)?),
            Kind::Secret => Object::Secret(serde_json::from_value(value)?),
            Kind::ConfigMap => Object::ConfigMap(serde_json::from_value(value)?),
            Kind::EndpointSlice => Object::EndpointSlice(serde_json::from_value(value)?),
            Kind::NetworkPolicy => Object::NetworkPolicy(serde_json::from_value(value)?),
            Kind::Ingress => Object::Ingress(serde_json::from_value(value)?),
            Kind::ClusterConfig => Object::ClusterConfig(serde_json::from_value(value)?),
        })
    }

    /// Decodes the stored (JSON) form.
    pub fn from_json(bytes: &[u8]) -> Result<Object, DecodeError> {
        Object::from_value(serde_json::from_slice(bytes)?)
    }

    /// The stored form: compact JSON with `apiVersion` and `kind`.
    pub fn to_json(&self) -> Vec<u8> {
        each!(self, o => serde_json::to_vec(o)).expect("objects always serialise")
    }

    pub fn to_value(&self) -> serde_json::Value {
        each!(self, o => serde_json::to_value(o)).expect("objects always serialise")
    }

    pub fn to_yaml(&self) -> String {
        each!(self, o => serde_yaml_ng::to_string(o)).expect("objects always serialise")
    }
}

impl Serialize for Object {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        each!(self, o => o.serialize(s))
    }
}

macro_rules! from_inner {
    ($($t:ident),*) => {
        $(impl From<$t> for Object {
            fn from(v: $t) -> Self {
                Object::$t(v)
            }
        })*
    };
}
from_inner!(
    Namespace,
    Node,
    Pod,
    Service,
    Secret,
    ConfigMap,
    EndpointSlice,
    NetworkPolicy,
    Ingress,
    ClusterConfig
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_round_trips_as_kubernetes_writes_it() {
        let json = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {
                "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
                "type": "NodePort"
            }
        });
        let obj = Object::from_value(json.clone()).unwrap();
        assert_eq!(obj.kind(), Kind::Service);
        assert_eq!(obj.object_ref().to_string(), "Service shop/web");
        assert_eq!(obj.key(), "/registry/services/specs/shop/web");
        assert_eq!(obj.to_value(), json);
        let back = Object::from_json(&obj.to_json()).unwrap();
        assert_eq!(back, obj);
    }

    #[test]
    fn unknown_types_are_named() {
        let err =
            Object::from_value(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment"}))
                .unwrap_err();
        assert!(err.to_string().contains("apps/v1/Deployment"), "{err}");
    }
}
