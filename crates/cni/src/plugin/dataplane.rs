//! The kernel side of an attachment: the node bridge, the veth pair, and the pod's
//! address, loopback and default route. The plugin process runs in the node's network
//! namespace; the pod side is reached through a netlink handle bound to CNI_NETNS.

use std::net::IpAddr;

use ipnet::IpNet;
use podnet_linux::model::{BridgeSpec, Link, LinkKind, Mac, Route, VethSpec, TABLE_MAIN};
use podnet_linux::{Handle, NetNs};

use super::error::PluginError;
use super::failpoint;
use super::names::mac_for_ip;

/// What one attachment looks like in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wiring {
    pub bridge: String,
    pub mtu: u32,
    pub hairpin: bool,
    /// Host side of the veth pair, in the node namespace.
    pub host_veth: String,
    /// Pod side of the veth pair, in the pod namespace (CNI_IFNAME).
    pub ifname: String,
    /// The pod's address with the pod CIDR's prefix length.
    pub address: IpNet,
    /// The gateway: the bridge's address.
    pub gateway: IpAddr,
}

impl Wiring {
    fn gateway_net(&self) -> Result<IpNet, PluginError> {
        IpNet::new(self.gateway, self.address.prefix_len())
            .map_err(|e| PluginError::Kernel(format!("gateway {}: {e}", self.gateway)))
    }
}

/// MAC addresses of what [`setup`] made, for the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Macs {
    pub bridge: Option<String>,
    pub host: Option<String>,
    pub pod: Option<String>,
}

/// Creates the bridge if needed, and the veth pair with the pod side configured.
/// On error the caller undoes with [`teardown`].
///
/// Eleven netlink requests (thirteen before, twenty-two before that) when the
/// bridge is already right: the bridge and its addresses are read (three), and
/// written only when they differ; the pair is created in one request with the
/// host end attached to the bridge and up; the pod end's index is looked up; then
/// the pod's address, its `eth0` and `lo` up and the default route on the pod's
/// socket, while hairpin and the host end's MAC (for the result) go on the node's.
pub async fn setup(
    node: &Handle,
    pod_ns: &NetNs,
    pod: &Handle,
    w: &Wiring,
) -> Result<Macs, PluginError> {
    let bridge = ensure_bridge(node, w).await?;
    failpoint::hit("after-bridge");

    let pod_mac = Mac(mac_for_ip(w.address.addr()));
    let mut spec = VethSpec::new(&w.host_veth, &w.ifname);
    spec.mtu = Some(w.mtu);
    spec.peer_mac = Some(pod_mac);
    spec.master = Some(bridge.index);
    spec.up = true;
    let exists = |e: podnet_linux::NetlinkError| {
        PluginError::Kernel(format!(
            "{e}: the pod namespace already has an interface named {} (or the node one named {})",
            w.ifname, w.host_veth
        ))
    };
    match node.add_veth(&spec, Some(pod_ns)).await {
        Ok(()) => {}
        // The host name is derived from (containerID, ifname): a link of that name
        // is this attachment's, left from an earlier ADD. Recreate it from scratch.
        Err(e) if e.is_exists() && node.link(&w.host_veth).await?.is_some() => {
            node.delete_link(&w.host_veth).await?;
            node.add_veth(&spec, Some(pod_ns)).await.map_err(|e| {
                if e.is_exists() {
                    exists(e)
                } else {
                    e.into()
                }
            })?;
        }
        Err(e) if e.is_exists() => return Err(exists(e)),
        Err(e) => return Err(e.into()),
    }
    failpoint::hit("after-veth");

    // The pod end's index, once: the address and the route refer to it.
    let index = pod.index_of(&w.ifname).await?;
    let route = Route::default_via(w.gateway).dev(&w.ifname);
    // Everything else at once. The pod's four requests are queued on its
    // connection in this order (each is queued when first polled, and `join!`
    // polls in order) and leave it in that order: netlink-proto 0.14 writes one
    // request per wake-up, after the previous reply (rust-netlink/netlink-proto#11),
    // and the kernel handles each message synchronously, so the route is added
    // after the address and the link-up it needs. What this saves is the name
    // lookups (no GETLINK before the address and the route, none for the host
    // end's master) and the waits of the node's two requests, which run on the
    // node's socket meanwhile. All are awaited, even after an error: the caller's
    // undo then never races a request still in flight.
    let hairpin = async {
        if w.hairpin {
            node.set_hairpin(&w.host_veth, true).await
        } else {
            Ok(())
        }
    };
    let (address, eth_up, lo_up, default_route, hairpin, host_mac) = tokio::join!(
        pod.add_address_index(index, &w.ifname, w.address),
        pod.set_up_index(index, &w.ifname),
        pod.set_up("lo"),
        pod.replace_route_oif(&route, index),
        hairpin,
        node.mac_of(&w.host_veth),
    );
    // The first error in request order: a later one is often its consequence
    // (no address, so no route via the gateway).
    address?;
    eth_up?;
    lo_up?;
    default_route?;
    hairpin?;
    let host_mac = host_mac?;

    let mac = |m: Option<Mac>| m.map(|m| m.to_string());
    Ok(Macs {
        bridge: mac(bridge.mac),
        host: mac(host_mac),
        pod: mac(Some(pod_mac)),
    })
}

/// The MAC addresses of the bridge and both veth ends as the kernel reports them.
pub async fn macs(node: &Handle, pod: &Handle, w: &Wiring) -> Result<Macs, PluginError> {
    let mac = |l: Option<podnet_linux::model::Link>| l.and_then(|l| l.mac).map(|m| m.to_string());
    Ok(Macs {
        bridge: mac(node.link(&w.bridge).await?),
        host: mac(node.link(&w.host_veth).await?),
        pod: mac(pod.link(&w.ifname).await?),
    })
}

/// The bridge exists, is a bridge, is up and has the gateway address; returns it.
/// An existing bridge is only read when it is already so (no write, so concurrent
/// ADDs do not queue on the kernel's lock for nothing).
pub async fn ensure_bridge(node: &Handle, w: &Wiring) -> Result<Link, PluginError> {
    let gateway = w.gateway_net()?;
    let existing = match node.link(&w.bridge).await? {
        None => {
            let mut spec = BridgeSpec::new(&w.bridge);
            spec.mtu = Some(w.mtu);
            // A fixed MAC: a bridge otherwise takes the lowest of its ports' MACs,
            // which changes as pods come and go and flushes the pods' ARP caches.
            spec.mac = Some(Mac(mac_for_ip(w.gateway)));
            match node.add_bridge(&spec).await {
                Ok(()) => {}
                // Another ADD created it at the same time.
                Err(e) if e.is_exists() => {}
                Err(e) => return Err(e.into()),
            }
            None
        }
        Some(link) if link.kind != LinkKind::Bridge => {
            return Err(PluginError::Kernel(format!(
                "link {} exists in the node namespace but is a {:?}, not a bridge",
                w.bridge, link.kind
            )))
        }
        Some(link) => Some(link),
    };
    let has_gateway = match &existing {
        Some(_) => node
            .addresses(&w.bridge)
            .await?
            .iter()
            .any(|a| a.addr == gateway),
        None => false,
    };
    if !has_gateway {
        node.add_address(&w.bridge, gateway).await?;
    }
    match existing {
        Some(link) if link.up => Ok(link),
        _ => {
            node.set_up(&w.bridge).await?;
            node.link(&w.bridge).await?.ok_or_else(|| {
                PluginError::Kernel(format!(
                    "bridge {} vanished from the node namespace while being set up",
                    w.bridge
                ))
            })
        }
    }
}

/// Deletes the host side of the veth pair (the kernel removes the pod side with it).
/// A missing link is success.
pub async fn teardown(node: &Handle, host_veth: &str) -> Result<(), PluginError> {
    node.delete_link(host_veth).await?;
    Ok(())
}

// DEL deletes the host veth with `Handle::start_delete` / `finish_delete`: it
// returns as soon as both ends are gone, leaving the kernel's tens of milliseconds of
// cleanup after that (rcu_barrier) to a child process.

/// Compares the kernel with `w`; the error says the first difference found.
pub async fn check(
    node: &Handle,
    pod: &Handle,
    netns: &str,
    w: &Wiring,
) -> Result<(), PluginError> {
    let fail = |m: String| Err(PluginError::Check(m));
    let Some(link) = pod.link(&w.ifname).await? else {
        return fail(format!(
            "interface {} is missing in netns {netns}",
            w.ifname
        ));
    };
    if !link.up {
        return fail(format!("interface {} in netns {netns} is down", w.ifname));
    }
    let addrs: Vec<IpNet> = pod
        .addresses(&w.ifname)
        .await?
        .into_iter()
        .map(|a| a.addr)
        .collect();
    if !addrs.contains(&w.address) {
        let found: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        return fail(format!(
            "interface {} in netns {netns} lacks address {}: found [{}]",
            w.ifname,
            w.address,
            found.join(", ")
        ));
    }
    let has_default = pod.routes(TABLE_MAIN).await?.iter().any(|r| {
        r.dst.prefix_len() == 0
            && r.gateway == Some(w.gateway)
            && r.dst.addr().is_ipv4() == w.gateway.is_ipv4()
    });
    if !has_default {
        return fail(format!(
            "netns {netns} has no default route via {}",
            w.gateway
        ));
    }
    match node.link(&w.host_veth).await? {
        None => fail(format!(
            "host veth {} is missing in the node namespace",
            w.host_veth
        )),
        Some(l) if l.master.as_deref() != Some(w.bridge.as_str()) => fail(format!(
            "host veth {} should be attached to bridge {}, found master {:?}",
            w.host_veth, w.bridge, l.master
        )),
        Some(_) => Ok(()),
    }
}
