//! STATUS: can the plugin serve ADD? The store must answer and the node must have a
//! pod CIDR.

use super::context::{node_pod_cidr, open_store, NodeProblem};
use super::error::PluginError;
use super::Request;

pub async fn status(req: &Request) -> Result<(), PluginError> {
    let store = open_store(&req.podnet.store)
        .await
        .map_err(|e| PluginError::NotAvailable(e.to_string()))?;
    match node_pod_cidr(&store, &req.podnet.node).await {
        Ok(Ok(_)) => Ok(()),
        // No pod CIDR yet: no new pods, existing ones (there are none) are unaffected.
        Ok(Err(NodeProblem::NoPodCidr(m))) => Err(PluginError::NotAvailable(m)),
        // The node is gone from the store: other nodes drop their routes to its pods.
        Ok(Err(NodeProblem::Missing(m))) => Err(PluginError::NotAvailableLimited(m)),
        Err(e) => Err(PluginError::NotAvailable(e.to_string())),
    }
}
