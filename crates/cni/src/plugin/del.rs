//! DEL: delete the veth pair, then release the address. Idempotent: whatever is
//! already gone is success; a missing or empty CNI_NETNS is fine.

use podnet_linux::Handle;

use super::context::open_store;
use super::error::PluginError;
use super::ipam::Ipam;
use super::names::host_veth_name;
use super::Request;

pub async fn del(req: &Request) -> Result<(), PluginError> {
    let att = req.attachment()?;
    let node = Handle::current()?;
    // The link first: an address must not be handed out again while a pod still has it.
    // If deleting fails the address stays allocated and the runtime retries DEL. The
    // kernel unregisters the link while the store opens (`Handle::start_delete`).
    let pending = node
        .start_delete(&host_veth_name(&att.container_id, &att.ifname))
        .await?;
    let store = open_store(&req.podnet.store).await;
    if let Some(pending) = pending {
        node.finish_delete(pending).await?;
    }
    let ip = Ipam::new(store?, &req.podnet.node)
        .release(&att.container_id, &att.ifname)
        .await?;
    tracing::info!(container_id = %att.container_id, ifname = %att.ifname, ?ip, "detached");
    Ok(())
}
