//! How far allocation has come, read from the store: for tests, benchmarks and
//! `podnet controller --wait`-style tooling.

use std::collections::HashSet;

use podnet_model::{Kind, Object};
use podnet_store::{Api, Store};

use crate::options::ControllerError;
use crate::plan::slices::{wants_slices, MANAGED_BY, MANAGED_BY_LABEL, SERVICE_NAME_LABEL};

/// Counts of what is still missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub services: usize,
    /// Services that need a ClusterIP and have none (and no failure condition).
    pub services_without_ip: usize,
    /// Services with a selector and no EndpointSlice managed by the controller.
    pub services_without_slices: usize,
    pub nodes_without_pod_cidr: usize,
    pub pods_without_node: usize,
}

impl Progress {
    pub fn is_complete(&self) -> bool {
        self.services_without_ip == 0
            && self.services_without_slices == 0
            && self.nodes_without_pod_cidr == 0
    }
}

/// Reads services, slices and nodes and counts what the controller has yet to do.
pub async fn progress(store: &std::sync::Arc<dyn Store>) -> Result<Progress, ControllerError> {
    let api = Api::new(store.clone());
    let (services, _) = api.list(Kind::Service, None).await?;
    let (slices, _) = api.list(Kind::EndpointSlice, None).await?;
    let (nodes, _) = api.list(Kind::Node, None).await?;
    let with_slices: HashSet<(String, String)> = slices
        .iter()
        .filter_map(|o| match o {
            Object::EndpointSlice(s) => {
                let l = s.metadata.labels.as_ref()?;
                (l.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)).then_some(())?;
                Some((
                    o.namespace()?.to_string(),
                    l.get(SERVICE_NAME_LABEL)?.clone(),
                ))
            }
            _ => None,
        })
        .collect();
    let mut p = Progress::default();
    for o in &services {
        let Object::Service(s) = o else { continue };
        p.services += 1;
        let spec = s.spec.clone().unwrap_or_default();
        let needs_ip = spec.type_.as_deref() != Some("ExternalName")
            && spec.cluster_ip.as_deref() != Some("None")
            && !crate::plan::conditions::service_blocked(s);
        if needs_ip && spec.cluster_ip.as_deref().unwrap_or_default().is_empty() {
            p.services_without_ip += 1;
        }
        if wants_slices(s)
            && !with_slices.contains(&(
                o.namespace().unwrap_or_default().to_string(),
                o.name().to_string(),
            ))
        {
            p.services_without_slices += 1;
        }
    }
    for o in &nodes {
        if let Object::Node(n) = o {
            if n.spec.as_ref().and_then(|s| s.pod_cidr.as_ref()).is_none() {
                p.nodes_without_pod_cidr += 1;
            }
        }
    }
    let (pods, _) = api.list(Kind::Pod, None).await?;
    p.pods_without_node = pods
        .iter()
        .filter(|o| matches!(o, Object::Pod(pod) if crate::plan::schedule::wants_scheduling(pod)))
        .count();
    Ok(p)
}
