//! Services kept compact: the stored JSON (decoded when planned) plus what the indexes
//! need. A decoded Service takes about ten times its JSON in memory.

use podnet_model::k8s_openapi::api::core::v1::Service;
use podnet_store::Revision;

use super::pods::SlimPod;
use super::rev_of;
use super::slices::SvcKey;
use crate::plan::conditions::{service_blocked, SERVICE_CONDITIONS};

#[derive(Debug, Clone)]
pub struct CachedService {
    pub rev: Revision,
    /// The non-empty selector.
    pub selector: Option<Vec<(String, String)>>,
    /// Carries a failure condition of this controller.
    pub blocked: bool,
    json: Box<[u8]>,
}

impl CachedService {
    pub fn new(svc: &Service) -> CachedService {
        let mut bare = svc.clone();
        bare.metadata.resource_version = None;
        CachedService {
            rev: rev_of(&svc.metadata),
            selector: svc
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .filter(|s| !s.is_empty())
                .map(|s| s.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            blocked: service_blocked(svc),
            json: serde_json::to_vec(&bare)
                .expect("services always serialise")
                .into_boxed_slice(),
        }
    }

    /// From the stored bytes (JSON without resourceVersion), decoding only what the
    /// indexes need; also returns (namespace, name).
    pub fn from_stored(bytes: &[u8], rev: Revision) -> Option<(SvcKey, CachedService)> {
        #[derive(serde::Deserialize, Default)]
        struct Meta {
            name: Option<String>,
            namespace: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Spec {
            selector: Option<std::collections::BTreeMap<String, String>>,
        }
        #[derive(serde::Deserialize)]
        struct Cond {
            #[serde(rename = "type")]
            type_: String,
            status: String,
        }
        #[derive(serde::Deserialize)]
        struct Status {
            conditions: Option<Vec<Cond>>,
        }
        #[derive(serde::Deserialize)]
        struct Lite {
            #[serde(default)]
            metadata: Meta,
            spec: Option<Spec>,
            status: Option<Status>,
        }
        let lite: Lite = serde_json::from_slice(bytes).ok()?;
        let key = (
            lite.metadata.namespace.unwrap_or_else(|| "default".into()),
            lite.metadata.name.unwrap_or_default(),
        );
        Some((
            key,
            CachedService {
                rev,
                selector: lite
                    .spec
                    .and_then(|s| s.selector)
                    .filter(|s| !s.is_empty())
                    .map(|s| s.into_iter().collect()),
                blocked: lite.status.and_then(|s| s.conditions).is_some_and(|cs| {
                    cs.iter().any(|c| {
                        SERVICE_CONDITIONS.contains(&c.type_.as_str()) && c.status == "False"
                    })
                }),
                json: bytes.into(),
            },
        ))
    }

    /// The Service, with its resourceVersion.
    pub fn object(&self) -> Service {
        let mut s: Service =
            serde_json::from_slice(&self.json).expect("cached services always decode");
        s.metadata.resource_version = (self.rev != 0).then(|| self.rev.to_string());
        s
    }

    /// Whether the selector matches the pod.
    pub fn selects(&self, pod: &SlimPod) -> bool {
        self.selector
            .as_ref()
            .is_some_and(|sel| sel.iter().all(|(k, v)| pod.label(k) == Some(v.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podnet_model::Object;

    #[test]
    fn stored_bytes_give_the_same_cache_entry_as_the_object() {
        let obj = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"b": "2", "a": "1"}},
            "status": {"conditions": [{"type": "podnet.io/ClusterIPAllocated", "status": "False",
                "reason": "AlreadyAllocated", "message": "m", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}))
        .unwrap();
        let Object::Service(svc) = &obj else {
            unreachable!()
        };
        let bytes = podnet_store::typed::encode(&obj);
        let (key, from_bytes) = CachedService::from_stored(&bytes, 9).unwrap();
        assert_eq!(key, ("shop".to_string(), "web".to_string()));
        let mut with_rev = svc.clone();
        with_rev.metadata.resource_version = Some("9".into());
        let from_obj = CachedService::new(&with_rev);
        assert_eq!(from_bytes.selector, from_obj.selector);
        assert!(from_bytes.blocked && from_obj.blocked);
        assert_eq!(from_bytes.object(), with_rev);
    }
}
