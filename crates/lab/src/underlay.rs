//! Building the lab's network: the switch namespace with its bridge, one namespace per
//! host with `eth0` on the bridge, the router and the internet host behind it.
//! Everything happens inside namespaces named with the lab's prefix; the machine's
//! root namespace is never touched.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use podnet_linux::model::{BridgeSpec, Route, VethSpec};
use podnet_linux::{netns, sysctl, Handle, NetNs};

use crate::error::LabError;
use crate::plan::{Host, LabPlan, Role, INTERNET_PREFIX, ROUTER_INTERNET_IP, SWITCH_BRIDGE};

/// Sysctls every host gets; nodes and the router also forward.
const HOST_SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
    ("net.ipv6.conf.all.disable_ipv6", "1"),
];
const FORWARDING: &[(&str, &str)] = &[
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.conf.all.forwarding", "1"),
];

fn net(ip: Ipv4Addr, prefix: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new(ip, prefix).expect("prefix <= 32"))
}

/// Creates the switch and every host of the plan.
pub async fn build(plan: &LabPlan) -> Result<(), LabError> {
    let switch = netns::create(&plan.switch_netns)?;
    let sw = switch.handle()?;
    sw.set_up("lo").await?;
    sw.add_bridge(&BridgeSpec::new(SWITCH_BRIDGE)).await?;
    sw.set_up(SWITCH_BRIDGE).await?;
    for host in plan.hosts.iter().filter(|h| h.switch_port.is_some()) {
        add_underlay_host(plan, &sw, host).await?;
    }
    if let (Some(router), Some(internet)) = (plan.host("router"), plan.host("internet")) {
        add_internet(router, internet).await?;
    }
    Ok(())
}

async fn add_underlay_host(plan: &LabPlan, sw: &Handle, host: &Host) -> Result<(), LabError> {
    let ns = netns::create(&host.netns)?;
    let port = host
        .switch_port
        .as_deref()
        .expect("underlay hosts have a port");
    sw.add_veth(&VethSpec::new(port, "eth0"), Some(&ns)).await?;
    sw.set_master(port, SWITCH_BRIDGE).await?;
    sw.set_up(port).await?;
    let h = ns.handle()?;
    h.set_up("lo").await?;
    h.add_address("eth0", net(host.ip, host.prefix)).await?;
    h.set_up("eth0").await?;
    if let (Some(gw), false) = (plan.gateway(), host.role == Role::Router) {
        h.add_route(&Route::default_via(IpAddr::V4(gw))).await?;
    }
    sysctl::set_all(&ns, HOST_SYSCTLS)?;
    if matches!(host.role, Role::Node | Role::Router) {
        sysctl::set_all(&ns, FORWARDING)?;
    }
    Ok(())
}

/// The router's second leg and the internet host behind it (TEST-NET-3).
async fn add_internet(router: &Host, internet: &Host) -> Result<(), LabError> {
    let rns = NetNs::open(&router.netns)?;
    let ins = netns::create(&internet.netns)?;
    let r = rns.handle()?;
    r.add_veth(&VethSpec::new("eth1", "eth0"), Some(&ins))
        .await?;
    r.add_address("eth1", net(ROUTER_INTERNET_IP, INTERNET_PREFIX))
        .await?;
    r.set_up("eth1").await?;
    let i = ins.handle()?;
    i.set_up("lo").await?;
    i.add_address("eth0", net(internet.ip, internet.prefix))
        .await?;
    i.set_up("eth0").await?;
    i.add_route(&Route::default_via(IpAddr::V4(ROUTER_INTERNET_IP)))
        .await?;
    sysctl::set_all(&ins, HOST_SYSCTLS)?;
    Ok(())
}
