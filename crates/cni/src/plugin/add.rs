//! ADD: allocate an address (or find the one the attachment holds), then wire the pod.
//! Any failure after the allocation undoes what this ADD made.

use std::net::IpAddr;

use ipnet::IpNet;
use podnet_linux::Handle;

use super::context::{cluster_spec, node_pod_cidr, open_store};
use super::dataplane::{self, Wiring};
use super::error::PluginError;
use super::ipam::Ipam;
use super::names::{gateway, host_veth_name};
use super::{failpoint, open_netns, Request};
use crate::protocol::{CniResult, Interface, IpConfig, Route, SpecVersion};

/// Runs ADD and returns the result in the configuration's `cniVersion`.
pub async fn add(req: &Request) -> Result<CniResult, PluginError> {
    let att = req.attachment()?;
    let netns_path = att.netns.as_deref().ok_or_else(|| {
        PluginError::NetnsInvalid("CNI_NETNS is required for ADD, found it empty".to_string())
    })?;
    let pod_ns = open_netns(netns_path)?;
    let requested = requested_ip(req)?;

    let store = open_store(&req.podnet.store).await?;
    let cidr = node_pod_cidr(&store, &req.podnet.node).await??;
    let gw = gateway(cidr).ok_or_else(|| {
        PluginError::Node(format!(
            "pod cidr {cidr} of node {} is too small: expected room for a gateway and pods",
            req.podnet.node
        ))
    })?;
    let mtu = match req.podnet.mtu {
        Some(m) => m,
        None => cluster_spec(&store).await?.pod_mtu(),
    };
    let node = Handle::current()?;
    let pod = pod_ns.handle()?;

    let ipam = Ipam::new(store, &req.podnet.node);
    let netns_text = netns_path.display().to_string();
    let alloc = ipam
        .allocate(
            cidr,
            &att.container_id,
            &att.ifname,
            Some(&netns_text),
            requested,
        )
        .await?;
    failpoint::hit("after-alloc");

    let address = IpNet::new(alloc.ip, cidr.prefix_len())
        .map_err(|e| PluginError::StoreData(format!("address {}: {e}", alloc.ip)))?;
    let wiring = Wiring {
        bridge: req.podnet.bridge.clone(),
        mtu,
        hairpin: req.podnet.hairpin,
        host_veth: host_veth_name(&att.container_id, &att.ifname),
        ifname: att.ifname.clone(),
        address,
        gateway: gw,
    };
    // A repeated ADD of an attachment that is still wired as it should be changes
    // nothing (the pod keeps its links and connections); otherwise it is rebuilt.
    if !alloc.new
        && dataplane::check(&node, &pod, &netns_text, &wiring)
            .await
            .is_ok()
    {
        dataplane::ensure_bridge(&node, &wiring).await?;
        let macs = dataplane::macs(&node, &pod, &wiring).await?;
        return build_result(req, &wiring, macs, netns_text);
    }
    let macs = match dataplane::setup(&node, &pod_ns, &pod, &wiring).await {
        Ok(macs) => macs,
        Err(e) => {
            if let Err(undo) = dataplane::teardown(&node, &wiring.host_veth).await {
                tracing::warn!(error = %undo, "undoing a failed ADD: deleting the veth");
            }
            if alloc.new {
                if let Err(undo) = ipam.release(&att.container_id, &att.ifname).await {
                    tracing::warn!(error = %undo, "undoing a failed ADD: releasing the address");
                }
            }
            return Err(e);
        }
    };

    tracing::info!(
        container_id = %att.container_id,
        ifname = %att.ifname,
        address = %wiring.address,
        host_veth = %wiring.host_veth,
        "attached"
    );
    build_result(req, &wiring, macs, netns_text)
}

/// The ADD result: bridge, host veth, pod interface; the address with its gateway; the
/// default route; the configured DNS. Converted to the configuration's version.
fn build_result(
    req: &Request,
    wiring: &Wiring,
    macs: dataplane::Macs,
    netns_text: String,
) -> Result<CniResult, PluginError> {
    let (mtu, address, gw) = (wiring.mtu, wiring.address, wiring.gateway);
    let mut result = CniResult::empty(SpecVersion::V1_1_0);
    result.interfaces = vec![
        Interface {
            name: wiring.bridge.clone(),
            mac: macs.bridge,
            ..Interface::default()
        },
        Interface {
            name: wiring.host_veth.clone(),
            mac: macs.host,
            mtu: Some(mtu),
            ..Interface::default()
        },
        Interface {
            name: wiring.ifname.clone(),
            mac: macs.pod,
            mtu: Some(mtu),
            sandbox: Some(netns_text),
            ..Interface::default()
        },
    ];
    result.ips = vec![IpConfig {
        address,
        gateway: Some(gw),
        interface: Some(2),
    }];
    let default = match gw {
        IpAddr::V4(_) => IpNet::V4(Default::default()),
        IpAddr::V6(_) => IpNet::V6(Default::default()),
    };
    result.routes = vec![Route {
        gw: Some(gw),
        ..Route::to(default)
    }];
    result.dns = req.config.dns.clone().unwrap_or_default();
    result
        .to_version(&req.config.cni_version)
        .map_err(|e| PluginError::Config(e.into()))
}

/// The address the runtime asks for: the `ips` capability (`runtimeConfig.ips`) or
/// `IP=` in CNI_ARGS (the first one, when several are given).
fn requested_ip(req: &Request) -> Result<Option<IpAddr>, PluginError> {
    if let Some(first) = req
        .config
        .runtime_config
        .as_ref()
        .and_then(|rc| rc.ips.as_ref())
        .and_then(|ips| ips.first())
    {
        return Ok(Some(first.addr));
    }
    match req.env.arg("IP") {
        None => Ok(None),
        Some(text) => {
            let first = text.split(',').next().unwrap_or_default().trim();
            let ip = first
                .split('/')
                .next()
                .unwrap_or_default()
                .parse::<IpAddr>()
                .map_err(|_| {
                    PluginError::RequestedIp(format!(
                        "CNI_ARGS IP: expected an ip address, found {text:?}"
                    ))
                })?;
            Ok(Some(ip))
        }
    }
}
