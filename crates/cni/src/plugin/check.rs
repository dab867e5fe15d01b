//! CHECK: the attachment still looks the way ADD left it.

use ipnet::IpNet;
use podnet_linux::Handle;

use super::context::{node_pod_cidr, open_store};
use super::dataplane::{self, Wiring};
use super::error::PluginError;
use super::ipam::Ipam;
use super::names::{gateway, host_veth_name};
use super::{open_netns, Request};

pub async fn check(req: &Request) -> Result<(), PluginError> {
    let att = req.attachment()?;
    let netns_path = att.netns.as_deref().ok_or_else(|| {
        PluginError::NetnsInvalid("CNI_NETNS is required for CHECK, found it empty".to_string())
    })?;
    let pod_ns = open_netns(netns_path)?;
    let store = open_store(&req.podnet.store).await?;
    let cidr = node_pod_cidr(&store, &req.podnet.node).await??;
    let ip = Ipam::new(store, &req.podnet.node)
        .lookup(&att.container_id, &att.ifname)
        .await?
        .ok_or_else(|| {
            PluginError::Check(format!(
                "no address is allocated to {}/{} on node {}",
                att.container_id, att.ifname, req.podnet.node
            ))
        })?;
    let address = IpNet::new(ip, cidr.prefix_len())
        .map_err(|e| PluginError::Check(format!("address {ip}: {e}")))?;
    if let Some(prev) = req
        .config
        .prev_result()
        .map_err(|e| PluginError::Config(e.into()))?
    {
        if !prev.ips.is_empty() && !prev.ips.iter().any(|c| c.address == address) {
            return Err(PluginError::Check(format!(
                "prevResult does not list the allocated address {address}"
            )));
        }
    }
    let gw = gateway(cidr)
        .ok_or_else(|| PluginError::Check(format!("pod cidr {cidr} has no gateway address")))?;
    let wiring = Wiring {
        bridge: req.podnet.bridge.clone(),
        mtu: req.podnet.mtu.unwrap_or(0),
        hairpin: req.podnet.hairpin,
        host_veth: host_veth_name(&att.container_id, &att.ifname),
        ifname: att.ifname.clone(),
        address,
        gateway: gw,
    };
    let node = Handle::current()?;
    let pod = pod_ns.handle()?;
    dataplane::check(&node, &pod, &netns_path.display().to_string(), &wiring).await
}
