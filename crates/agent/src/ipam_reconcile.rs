//! Startup reconcile of podnet's IPAM: an address whose pod network namespace is gone
//! (the node rebooted, a runtime crashed between ADD and DEL, a namespace was removed
//! by hand) is released, and its host veth removed, so that nothing leaks that no DEL
//! or GC will ever come for.

use std::path::Path;

use podnet_cni::plugin::ipam::{AddressRecord, Ipam, ADDRESS_PREFIX};
use podnet_cni::plugin::names::host_veth_name;
use podnet_store::Api;

/// Releases this node's addresses whose recorded namespace no longer exists; returns
/// how many. Addresses without a recorded namespace are left alone (nothing to check).
pub async fn reclaim(api: &Api, node: &str) -> Result<usize, String> {
    let prefix = format!("{ADDRESS_PREFIX}{node}/");
    let records = api
        .store()
        .range(&prefix)
        .await
        .map_err(|e| format!("listing {prefix}: {e}"))?;
    let ipam = Ipam::new(api.store().clone(), node);
    let handle = podnet_linux::Handle::current().map_err(|e| e.to_string())?;
    let mut released = 0;
    for kv in records.kvs {
        let Ok(rec) = serde_json::from_slice::<AddressRecord>(&kv.value) else {
            continue;
        };
        let Some(netns) = rec.netns.as_deref().filter(|n| !n.is_empty()) else {
            continue;
        };
        if namespace_alive(Path::new(netns)) {
            continue;
        }
        let veth = host_veth_name(&rec.container_id, &rec.ifname);
        if let Err(e) = podnet_cni::plugin::dataplane::teardown(&handle, &veth).await {
            tracing::warn!(error = %e, veth, "removing a stale host veth failed");
        }
        match ipam.release(&rec.container_id, &rec.ifname).await {
            Ok(ip) => {
                released += 1;
                tracing::info!(container_id = %rec.container_id, ifname = %rec.ifname, ?ip, netns, "released an address whose namespace is gone");
            }
            Err(e) => {
                tracing::warn!(error = %e, container_id = %rec.container_id, "releasing a stale address failed")
            }
        }
    }
    Ok(released)
}

/// The path still names a network namespace.
fn namespace_alive(path: &Path) -> bool {
    path.exists() && podnet_linux::NetNs::from_path(path).is_ok()
}
