//! The agent's own Node condition: `podnet.io/HostGwUnreachablePeers`, True (with the
//! peers named) when host-gw cannot route to some remote nodes because they are not on
//! this node's L2 network, False otherwise. Written only when it changes.

use jiff::Timestamp;
use podnet_model::k8s_openapi::api::core::v1::{Node, NodeCondition, NodeStatus};
use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use podnet_model::{Kind, Object};
use podnet_store::typed::{revision_of, ApiError};
use podnet_store::Api;

use crate::plan::Skipped;

pub const HOST_GW_UNREACHABLE: &str = "podnet.io/HostGwUnreachablePeers";

/// The condition for a set of unreachable peers (pure).
pub fn unreachable_condition(peers: &[&Skipped], now: Timestamp) -> NodeCondition {
    if peers.is_empty() {
        return NodeCondition {
            type_: HOST_GW_UNREACHABLE.into(),
            status: "False".into(),
            reason: Some("AllPeersOnLink".into()),
            message: Some("every remote node is on this node's L2 network".into()),
            last_heartbeat_time: Some(Time(now)),
            last_transition_time: Some(Time(now)),
        };
    }
    let names: Vec<String> = peers
        .iter()
        .map(|p| format!("{} ({})", p.name, p.ip))
        .collect();
    NodeCondition {
        type_: HOST_GW_UNREACHABLE.into(),
        status: "True".into(),
        reason: Some("PeersNotOnLink".into()),
        message: Some(format!(
            "host-gw cannot route to {}: not on any on-link subnet of this node; use overlay mode vxlan or put the nodes on one L2 network",
            names.join(", ")
        )),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// `node` with `cond` set, or `None` when it already holds that status and message
/// (pure). The transition time is kept when the status did not change.
pub fn with_condition(node: &Node, mut cond: NodeCondition) -> Option<Node> {
    let mut out = node.clone();
    let status = out.status.get_or_insert_with(NodeStatus::default);
    let conds = status.conditions.get_or_insert_with(Vec::new);
    match conds.iter_mut().find(|c| c.type_ == cond.type_) {
        Some(c) if c.status == cond.status && c.message == cond.message => None,
        Some(c) => {
            if c.status == cond.status {
                cond.last_transition_time = c.last_transition_time.clone();
            }
            *c = cond;
            Some(out)
        }
        None => {
            conds.push(cond);
            Some(out)
        }
    }
}

/// Writes the condition on Node `name` when it differs (compare-and-swap, retried).
pub async fn set(api: &Api, name: &str, cond: NodeCondition) -> Result<bool, ApiError> {
    for _ in 0..20 {
        let Some(Object::Node(node)) = api.get(Kind::Node, None, name).await? else {
            return Ok(false);
        };
        let rev = revision_of(&Object::Node(node.clone()));
        let Some(updated) = with_condition(&node, cond.clone()) else {
            return Ok(false);
        };
        if api.put_if(&Object::Node(updated), rev).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::SkipReason;

    #[test]
    fn set_once_then_unchanged() {
        let now = Timestamp::from_second(100).unwrap();
        let p = Skipped {
            name: "far".into(),
            ip: "10.9.0.5".parse().unwrap(),
            reason: SkipReason::NotOnLink,
        };
        let c = unreachable_condition(&[&p], now);
        assert_eq!(c.status, "True");
        assert!(c.message.as_deref().unwrap().contains("far (10.9.0.5)"));
        let n1 = with_condition(&Node::default(), c.clone()).unwrap();
        let later = Timestamp::from_second(200).unwrap();
        assert!(with_condition(&n1, unreachable_condition(&[&p], later)).is_none());
        let n2 = with_condition(&n1, unreachable_condition(&[], later)).unwrap();
        let conds = n2.status.unwrap().conditions.unwrap();
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].status, "False");
    }
}
