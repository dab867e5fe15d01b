//! Registering the Node and keeping its heartbeat, as the kubelet does: addresses,
//! node info, labels and the Ready condition, merged into whatever the store holds
//! (the controller owns `spec.podCIDR`; users own the rest of `spec`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use jiff::Timestamp;
use podnet_model::k8s_openapi::api::core::v1::{
    Node, NodeAddress, NodeCondition, NodeStatus, NodeSystemInfo,
};
use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use podnet_model::{Kind, Object};
use podnet_store::typed::{revision_of, ApiError};
use podnet_store::Api;

/// What the agent knows about its node.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    pub name: String,
    pub ip: IpAddr,
    pub labels: BTreeMap<String, String>,
    /// Annotations the agent owns on its Node (`annotations::published`): set on every
    /// registration, other annotations left alone.
    pub annotations: BTreeMap<String, String>,
}

/// The Node as this agent reports it, merged into `existing` (pure).
pub fn desired_node(id: &NodeIdentity, existing: Option<&Node>, now: Timestamp) -> Node {
    let mut node = existing.cloned().unwrap_or_default();
    node.metadata.name = Some(id.name.clone());
    let labels = node.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert("kubernetes.io/hostname".into(), id.name.clone());
    labels.insert("kubernetes.io/os".into(), "linux".into());
    for (k, v) in &id.labels {
        labels.insert(k.clone(), v.clone());
    }
    if !id.annotations.is_empty() {
        let ann = node.metadata.annotations.get_or_insert_with(BTreeMap::new);
        for (k, v) in &id.annotations {
            ann.insert(k.clone(), v.clone());
        }
    }
    let status = node.status.get_or_insert_with(NodeStatus::default);
    status.addresses = Some(vec![
        NodeAddress {
            type_: "InternalIP".into(),
            address: id.ip.to_string(),
        },
        NodeAddress {
            type_: "Hostname".into(),
            address: id.name.clone(),
        },
    ]);
    status.node_info = Some(NodeSystemInfo {
        architecture: std::env::consts::ARCH.into(),
        operating_system: "linux".into(),
        kubelet_version: format!("podnet-{}", env!("CARGO_PKG_VERSION")),
        kube_proxy_version: String::new(),
        container_runtime_version: "podnet-lab://1".into(),
        ..Default::default()
    });
    let mut conditions: Vec<NodeCondition> = status
        .conditions
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ != "Ready")
        .collect();
    let was_ready = existing
        .and_then(|n| n.status.as_ref()?.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready").cloned());
    let transition = match &was_ready {
        Some(c) if c.status == "True" => c.last_transition_time.clone(),
        _ => Some(Time(now)),
    };
    conditions.push(NodeCondition {
        type_: "Ready".into(),
        status: "True".into(),
        reason: Some("PodnetAgentReady".into()),
        message: Some("podnet agent is posting ready status".into()),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time: transition,
    });
    status.conditions = Some(conditions);
    node
}

/// Writes the Node (compare-and-swap, retried on conflict). Returns the stored Node.
pub async fn register(api: &Api, id: &NodeIdentity) -> Result<Node, ApiError> {
    loop {
        let existing = match api.get(Kind::Node, None, &id.name).await? {
            Some(Object::Node(n)) => Some(n),
            _ => None,
        };
        let rev = existing
            .as_ref()
            .map(|n| revision_of(&Object::Node(n.clone())))
            .unwrap_or(0);
        let mut node = desired_node(id, existing.as_ref(), Timestamp::now());
        if existing.is_none() {
            node.metadata.uid = Some(uuid_v4());
            node.metadata.creation_timestamp = Some(Time(Timestamp::now()));
        }
        let obj = Object::Node(node.clone());
        if api.put_if(&obj, rev).await?.is_some() {
            return Ok(node);
        }
        tracing::debug!(node = %id.name, "node changed while registering; retrying");
    }
}

/// A random v4 UUID from the kernel's generator (no extra dependency).
fn uuid_v4() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| format!("{:032x}", Timestamp::now().as_nanosecond()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_pod_cidr_and_transition_time() {
        let id = NodeIdentity {
            name: "n1".into(),
            ip: "172.18.0.2".parse().unwrap(),
            labels: [("zone".to_string(), "a".to_string())].into(),
            annotations: [("podnet.io/public-ip".to_string(), "172.18.0.2".to_string())].into(),
        };
        let t0 = Timestamp::from_second(1_000).unwrap();
        let first = desired_node(&id, None, t0);
        let mut stored = first.clone();
        stored.spec = Some(podnet_model::k8s_openapi::api::core::v1::NodeSpec {
            pod_cidr: Some("10.244.3.0/24".into()),
            ..Default::default()
        });
        let t1 = Timestamp::from_second(2_000).unwrap();
        let second = desired_node(&id, Some(&stored), t1);
        assert_eq!(
            second.spec.unwrap().pod_cidr.as_deref(),
            Some("10.244.3.0/24")
        );
        let ready = second.status.unwrap().conditions.unwrap().pop().unwrap();
        assert_eq!(ready.last_transition_time, Some(Time(t0)));
        assert_eq!(ready.last_heartbeat_time, Some(Time(t1)));
        assert_eq!(second.metadata.labels.unwrap()["zone"], "a");
        assert_eq!(
            second.metadata.annotations.unwrap()["podnet.io/public-ip"],
            "172.18.0.2"
        );
    }
}
