//! GC: release every attachment of this node that the runtime no longer lists in
//! `cni.dev/valid-attachments` (or the legacy `cni.dev/attachments`), deleting its
//! host veth too, and drop address keys left without an attachment.

use std::collections::HashSet;

use podnet_linux::Handle;

use super::context::open_store;
use super::dataplane;
use super::error::PluginError;
use super::ipam::Ipam;
use super::names::host_veth_name;
use super::Request;
use crate::protocol::ConfigError;

pub async fn gc(req: &Request) -> Result<(), PluginError> {
    let valid: HashSet<(&str, &str)> = req
        .config
        .gc_attachments()
        .ok_or_else(|| {
            PluginError::Config(ConfigError::Missing {
                key: "cni.dev/valid-attachments".to_string(),
                expected: "the list of attachments to keep (an empty list releases all)",
            })
        })?
        .iter()
        .map(|a| (a.container_id.as_str(), a.ifname.as_str()))
        .collect();
    let store = open_store(&req.podnet.store).await?;
    let ipam = Ipam::new(store, &req.podnet.node);
    let node = Handle::current()?;
    let mut first_error = None;
    for held in ipam.attachments().await? {
        if valid.contains(&(held.container_id.as_str(), held.ifname.as_str())) {
            continue;
        }
        let veth = host_veth_name(&held.container_id, &held.ifname);
        let step = async {
            dataplane::teardown(&node, &veth).await?;
            ipam.release(&held.container_id, &held.ifname).await
        };
        match step.await {
            Ok(ip) => {
                tracing::info!(container_id = %held.container_id, ifname = %held.ifname, ?ip, "gc released")
            }
            Err(e) => {
                tracing::warn!(error = %e, container_id = %held.container_id, "gc could not release");
                first_error.get_or_insert(e);
            }
        }
    }
    ipam.sweep_orphans().await?;
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
