//! What every command reads from the store: the node's pod CIDR and the cluster's
//! network settings.

use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use podnet_model::{ClusterConfigSpec, Kind, Object};
use podnet_store::{Api, Store};

use super::error::PluginError;

/// How long opening the store may take (an etcd that does not answer).
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Embedded stores kept open across requests by a long-lived process (the plugin
/// server, [`keep_stores_open`]), by URL. An etcd client is not kept: it belongs to
/// the async runtime of the request that made it.
static KEPT: std::sync::Mutex<Option<std::collections::HashMap<String, Arc<dyn Store>>>> =
    std::sync::Mutex::new(None);

/// Makes [`open_store`] keep embedded stores open for later requests of this process.
pub fn keep_stores_open() {
    let mut kept = KEPT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    kept.get_or_insert_with(Default::default);
}

/// Opens the store a plugin configuration names, one-shot (no background threads: the
/// plugin only reads and writes); any failure is "try again later".
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, PluginError> {
    let keep = !url.starts_with("etcd://");
    if keep {
        let kept = KEPT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(store) = kept.as_ref().and_then(|m| m.get(url)) {
            return Ok(store.clone());
        }
    }
    match tokio::time::timeout(OPEN_TIMEOUT, podnet_store::open_oneshot(url)).await {
        Ok(Ok(store)) => {
            if keep {
                let mut kept = KEPT
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(m) = kept.as_mut() {
                    return Ok(m.entry(url.to_string()).or_insert(store).clone());
                }
            }
            Ok(store)
        }
        Ok(Err(e)) => Err(PluginError::StoreUnavailable(format!(
            "opening store {url}: {e}"
        ))),
        Err(_) => Err(PluginError::StoreUnavailable(format!(
            "opening store {url}: no answer within {OPEN_TIMEOUT:?}"
        ))),
    }
}

/// Why a node has no usable pod CIDR.
#[derive(Debug)]
pub enum NodeProblem {
    /// No Node object of that name.
    Missing(String),
    /// The Node has no (valid) `spec.podCIDR` yet.
    NoPodCidr(String),
}

impl From<NodeProblem> for PluginError {
    fn from(p: NodeProblem) -> Self {
        match p {
            NodeProblem::Missing(m) | NodeProblem::NoPodCidr(m) => PluginError::Node(m),
        }
    }
}

/// The node's pod CIDR from `spec.podCIDR` (or the first of `spec.podCIDRs`).
pub async fn node_pod_cidr(
    store: &Arc<dyn Store>,
    node: &str,
) -> Result<Result<IpNet, NodeProblem>, PluginError> {
    let obj = Api::new(store.clone())
        .get(Kind::Node, None, node)
        .await
        .map_err(api_error)?;
    let Some(Object::Node(n)) = obj else {
        return Ok(Err(NodeProblem::Missing(format!(
            "node {node} not found in the store (expected key {})",
            Kind::Node.key(None, node)
        ))));
    };
    let spec = n.spec.unwrap_or_default();
    let text = spec
        .pod_cidr
        .or_else(|| spec.pod_cidrs.and_then(|c| c.into_iter().next()));
    let Some(text) = text else {
        return Ok(Err(NodeProblem::NoPodCidr(format!(
            "node {node} has no spec.podCIDR yet: expected the controller to allocate one"
        ))));
    };
    Ok(text.parse::<IpNet>().map(|n| n.trunc()).map_err(|_| {
        NodeProblem::NoPodCidr(format!(
            "node {node} has an invalid spec.podCIDR: expected a CIDR such as 10.244.1.0/24, found {text:?}"
        ))
    }))
}

/// The cluster's settings, or the defaults when no ClusterConfig is stored.
pub async fn cluster_spec(store: &Arc<dyn Store>) -> Result<ClusterConfigSpec, PluginError> {
    let obj = Api::new(store.clone())
        .get(
            Kind::ClusterConfig,
            None,
            podnet_model::config::DEFAULT_NAME,
        )
        .await
        .map_err(api_error)?;
    Ok(match obj {
        Some(Object::ClusterConfig(c)) => c.spec,
        _ => ClusterConfigSpec::default(),
    })
}

fn api_error(e: podnet_store::typed::ApiError) -> PluginError {
    match e {
        podnet_store::typed::ApiError::Store(s) => s.into(),
        other => PluginError::StoreData(other.to_string()),
    }
}
