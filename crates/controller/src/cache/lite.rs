//! Decoding straight into the slim forms: only the fields the controller reads are
//! allocated, so a burst of pod and slice events does not churn through full objects.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::pods::SlimPod;
use super::slices::SvcKey;
use crate::alloc::Protocol;
use crate::hash::fnv64;
use crate::plan::slices::{MANAGED_BY, MANAGED_BY_LABEL, SERVICE_NAME_LABEL};
use podnet_store::Revision;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Meta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    deletion_timestamp: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Port {
    name: Option<String>,
    container_port: i32,
    protocol: Option<String>,
}

#[derive(Deserialize)]
struct Container {
    ports: Option<Vec<Port>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    node_name: Option<String>,
    hostname: Option<String>,
    subdomain: Option<String>,
    #[serde(default)]
    containers: Vec<Container>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cond {
    #[serde(rename = "type")]
    type_: String,
    status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    phase: Option<String>,
    #[serde(rename = "podIP")]
    pod_ip: Option<String>,
    conditions: Option<Vec<Cond>>,
}

#[derive(Deserialize)]
struct PodLite {
    #[serde(default)]
    metadata: Meta,
    spec: Option<Spec>,
    status: Option<Status>,
}

/// A stored pod as the controller keeps it. Pods without a node are decoded whole
/// (the scheduler writes them back).
pub fn slim_pod(bytes: &[u8], rev: Revision) -> Option<SlimPod> {
    let p: PodLite = serde_json::from_slice(bytes).ok()?;
    let node_name = p
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty());
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
    let finished = matches!(phase, Some("Succeeded" | "Failed"));
    let terminating = p.metadata.deletion_timestamp.is_some();
    if node_name.is_none() && !finished && !terminating {
        let mut pod: podnet_model::k8s_openapi::api::core::v1::Pod =
            serde_json::from_slice(bytes).ok()?;
        pod.metadata.resource_version = Some(rev.to_string());
        return Some(SlimPod::from_pod(&pod));
    }
    let named_ports = p
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|port| {
            let name = port.name.clone().filter(|n| !n.is_empty())?;
            Some((
                name,
                Protocol::parse(port.protocol.as_deref())?,
                port.container_port,
            ))
        })
        .collect();
    let subdomain = p.spec.as_ref().and_then(|s| s.subdomain.clone());
    Some(SlimPod {
        namespace: p.metadata.namespace.unwrap_or_else(|| "default".into()),
        name: p.metadata.name.unwrap_or_default(),
        uid: p.metadata.uid,
        labels: p.metadata.labels.unwrap_or_default().into_iter().collect(),
        ip: p
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse().ok()),
        ready: p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
        terminating,
        finished,
        hostname: subdomain
            .as_ref()
            .and(p.spec.as_ref().and_then(|s| s.hostname.clone())),
        subdomain,
        node_name,
        named_ports,
        rev,
        unscheduled: None,
    })
}

/// (namespace, name, managed: (service, fingerprint)).
pub type StoredSlice = (String, String, Option<(SvcKey, u64)>);

#[derive(Deserialize)]
struct SliceLite {
    #[serde(default)]
    metadata: Meta,
}

/// A stored slice: (namespace, name, and - when this controller manages it - its
/// service and content fingerprint). The fingerprint is that of the stored bytes,
/// which for a slice this controller wrote equals the fingerprint of what it wrote.
pub fn slim_slice(bytes: &[u8]) -> Option<StoredSlice> {
    let s: SliceLite = serde_json::from_slice(bytes).ok()?;
    let ns = s.metadata.namespace.unwrap_or_else(|| "default".into());
    let name = s.metadata.name.unwrap_or_default();
    let labels = s.metadata.labels.unwrap_or_default();
    let managed = labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY);
    let owner = labels
        .get(SERVICE_NAME_LABEL)
        .filter(|_| managed)
        .map(|svc| ((ns.clone(), svc.clone()), fnv64(bytes)));
    Some((ns, name, owner))
}

#[cfg(test)]
mod tests {
    use super::*;
    use podnet_model::k8s_openapi::api::core::v1::Pod;
    use podnet_model::Object;

    fn check(v: serde_json::Value) {
        let pod: Pod = serde_json::from_value(v).unwrap();
        let bytes = podnet_store::typed::encode(&Object::Pod(pod.clone()));
        let mut with_rev = pod.clone();
        with_rev.metadata.resource_version = Some("7".into());
        assert_eq!(slim_pod(&bytes, 7).unwrap(), SlimPod::from_pod(&with_rev));
    }

    #[test]
    fn lite_decoding_agrees_with_the_full_one() {
        check(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "namespace": "n", "uid": "u", "labels": {"b": "2", "a": "1"},
                "deletionTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"nodeName": "n1", "hostname": "h", "subdomain": "s", "containers": [
                {"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": 80}, {"containerPort": 81},
                {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}]},
            "status": {"phase": "Running", "podIP": "10.244.0.3", "conditions": [{"type": "Ready", "status": "True"}]}}));
        check(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "pending", "labels": {"a": "1"}},
            "spec": {"containers": [{"name": "c"}]}}));
        check(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "done"}, "spec": {"nodeName": "n", "containers": []},
            "status": {"phase": "Succeeded"}}));
    }
}
