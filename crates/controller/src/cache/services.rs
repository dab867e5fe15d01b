//! Services kept compact: the stored JSON (decoded when planned) plus what the indexes
//! need. A decoded Service takes about ten times its JSON in memory.

use podnet_model::k8s_openapi::api::core::v1::Service;
use podnet_store::Revision;

use super::pods::SlimPod;
use super::rev_of;
use crate::plan::conditions::service_blocked;

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
