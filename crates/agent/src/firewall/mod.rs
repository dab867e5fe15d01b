//! The agent's nftables: egress masquerade and pod anti-spoofing, planned purely as
//! `podnet_linux::nft` table states (golden-tested in `tests.rs`) and applied by the
//! library's applier (one atomic transaction per change; a full atomic replace at
//! start).
//!
//! - `ip podnet`, chain `postrouting` (nat, hook postrouting, priority 100 = srcnat):
//!   `ip saddr <clusterCIDR> ip daddr != @no-masquerade masquerade fully-random`, the
//!   set holding the cluster CIDR, the nonMasqueradeCIDRs and multicast (224.0.0.0/4).
//!   Pod-to-pod and node-to-pod traffic is never masqueraded (the first has its
//!   destination in the cluster CIDR, the second its source outside it).
//! - `bridge podnet`, chain `prerouting` (filter, hook prerouting, priority -200): a
//!   frame entering the node bridge from a pod's host veth (`veth*`) whose
//!   `iifname . ip saddr` (or `iifname . arp saddr ip`) is not a known attachment is
//!   dropped. Attachments come from the store's IPAM attachment keys
//!   (`/registry/podnet.io/ipam-attachments/<node>/<cid>/<ifname>` -> IP), the veth
//!   name from `host_veth_name(cid, ifname)`: only with podnet's own CNI plugin (the
//!   reference plugins name veths at random and keep IPAM in files).

mod run;
#[cfg(test)]
mod tests;

pub use run::{run, TableKeeper};

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use podnet_cni::plugin::ipam::ATTACHMENT_PREFIX;
use podnet_cni::plugin::names::host_veth_name;
use podnet_linux::nft::{
    proto, Chain, ChainType, CmpOp, DataType, Element, Family, Field, Hook, Rule, Set, Stmt, Table,
    TableState, Value, Verdict,
};

/// The name of both tables (`ip podnet`, `bridge podnet`).
pub const TABLE: &str = "podnet";
/// The set of destinations never masqueraded.
pub const NO_MASQUERADE: &str = "no-masquerade";
/// The set of `host veth . pod IP` pairs allowed as sources.
pub const POD_SOURCES: &str = "pod-sources";
/// Host veths of pods are named `veth` + 8 hex digits.
pub const VETH_PREFIX: &str = "veth";
/// The overlay's table (vxlan mode): part of the routing plan, with the FDB it matches.
pub const OVERLAY_TABLE: &str = "podnet-overlay";
pub const OVERLAY_PEERS: &str = "peers";
/// `raw` priority: before conntrack (-200) looks at the packet.
pub const RAW_PRIORITY: i32 = -300;

/// One pod interface as the anti-spoofing rules see it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Attachment {
    /// The host end of its veth pair.
    pub veth: String,
    pub ip: Ipv4Addr,
}

/// The attachment an IPAM attachment key/value describes, for this node.
pub fn attachment_of(node: &str, key: &str, value: &[u8]) -> Option<Attachment> {
    let rest = key.strip_prefix(ATTACHMENT_PREFIX)?.strip_prefix(node)?;
    let (cid, ifname) = rest.strip_prefix('/')?.split_once('/')?;
    let ip: IpAddr = std::str::from_utf8(value).ok()?.trim().parse().ok()?;
    let IpAddr::V4(ip) = ip else {
        return None;
    };
    Some(Attachment {
        veth: host_veth_name(cid, ifname),
        ip,
    })
}

fn v4(net: &IpNet) -> Option<Ipv4Net> {
    match net {
        IpNet::V4(n) => Some(n.trunc()),
        IpNet::V6(_) => None,
    }
}

/// `ip podnet`: egress masquerade (pure). `None` when the cluster CIDR is not IPv4.
pub fn egress(cluster_cidr: IpNet, non_masquerade: &[IpNet]) -> Option<TableState> {
    let cluster = v4(&cluster_cidr)?;
    let mut nets: Vec<Ipv4Net> = vec![cluster, "224.0.0.0/4".parse().expect("literal")];
    nets.extend(non_masquerade.iter().filter_map(v4));
    // An interval set refuses overlapping elements: merge them first.
    let nets = Ipv4Net::aggregate(&nets);
    let mut t = TableState::new(Table::new(Family::Ip, TABLE));
    let mut set = Set::new(NO_MASQUERADE, vec![DataType::Ipv4Addr]);
    set.flags.interval = true;
    t.add_set(set);
    for n in nets {
        t.insert_element(NO_MASQUERADE, Element::prefix(IpNet::V4(n)));
    }
    t.add_chain(
        Chain::base("postrouting", ChainType::Nat, Hook::Postrouting, 100),
        vec![Rule::new(vec![
            Stmt::Prefix {
                field: Field::IpSaddr,
                op: CmpOp::Eq,
                net: IpNet::V4(cluster),
            },
            Stmt::InSet {
                fields: vec![Field::IpDaddr],
                set: NO_MASQUERADE.into(),
                negate: true,
            },
            Stmt::Masquerade { fully_random: true },
        ])
        .with_comment("pods to outside the cluster: the node's address")],
    );
    Some(t)
}

/// `ip podnet-overlay` (vxlan mode, pure): the VXLAN packets between this node
/// (`local`, its VTEP address) and the other nodes' VTEPs (`peers`, the destinations
/// of the FDB entries) on the overlay's UDP `port` skip conntrack. No NAT ever applies
/// to them, and without this each inner flow would also cost an outer UDP conntrack
/// entry and a lookup per packet on both nodes. Matching local address, peer and port
/// keeps everything else tracked: a pod's or a host process's own UDP to that port,
/// and service traffic (ClusterIPs, NodePorts and LoadBalancer IPs are never a node's
/// VTEP address paired with a peer's). `None` when `local` is not IPv4.
pub fn overlay_untracked(local: IpAddr, port: u16, peers: &[IpAddr]) -> Option<TableState> {
    let IpAddr::V4(local) = local else {
        return None;
    };
    let mut t = TableState::new(Table::new(Family::Ip, OVERLAY_TABLE));
    t.add_set(Set::new(OVERLAY_PEERS, vec![DataType::Ipv4Addr]));
    let mut ps: Vec<Ipv4Addr> = peers
        .iter()
        .filter_map(|p| match p {
            IpAddr::V4(v) if *v != local => Some(*v),
            _ => None,
        })
        .collect();
    ps.sort();
    ps.dedup();
    for p in ps {
        t.insert_element(OVERLAY_PEERS, Element::key(vec![Value::Ipv4(p)]));
    }
    let rule = |me: Field, them: Field, comment: &str| {
        Rule::new(vec![
            Stmt::Match {
                field: me,
                op: CmpOp::Eq,
                value: Value::Ipv4(local),
            },
            Stmt::Match {
                field: Field::MetaL4Proto,
                op: CmpOp::Eq,
                value: Value::Proto(proto::UDP),
            },
            Stmt::Match {
                field: Field::ThDport,
                op: CmpOp::Eq,
                value: Value::Port(port),
            },
            Stmt::InSet {
                fields: vec![them],
                set: OVERLAY_PEERS.into(),
                negate: false,
            },
            Stmt::Notrack,
        ])
        .with_comment(comment)
    };
    t.add_chain(
        Chain::base(
            "prerouting",
            ChainType::Filter,
            Hook::Prerouting,
            RAW_PRIORITY,
        ),
        vec![rule(
            Field::IpDaddr,
            Field::IpSaddr,
            "VXLAN from another node: never NATed, not tracked",
        )],
    );
    t.add_chain(
        Chain::base("output", ChainType::Filter, Hook::Output, RAW_PRIORITY),
        vec![rule(
            Field::IpSaddr,
            Field::IpDaddr,
            "VXLAN to another node: never NATed, not tracked",
        )],
    );
    Some(t)
}

/// `bridge podnet`: anti-spoofing for the given attachments (pure).
pub fn anti_spoofing(attachments: &[Attachment]) -> TableState {
    let mut t = TableState::new(Table::new(Family::Bridge, TABLE));
    t.add_set(Set::new(
        POD_SOURCES,
        vec![DataType::IfName, DataType::Ipv4Addr],
    ));
    for a in attachments {
        t.insert_element(
            POD_SOURCES,
            Element::key(vec![Value::IfName(a.veth.clone()), Value::Ipv4(a.ip)]),
        );
    }
    let from_pod = Stmt::IfNamePrefix {
        field: Field::MetaIifName,
        op: CmpOp::Eq,
        prefix: VETH_PREFIX.into(),
    };
    let not_known = |addr: Field| Stmt::InSet {
        fields: vec![Field::MetaIifName, addr],
        set: POD_SOURCES.into(),
        negate: true,
    };
    t.add_chain(
        Chain::base("prerouting", ChainType::Filter, Hook::Prerouting, -200),
        vec![
            Rule::new(vec![
                from_pod.clone(),
                not_known(Field::IpSaddr),
                Stmt::Verdict(Verdict::Drop),
            ])
            .with_comment("IPv4 from a pod with a source that is not its own"),
            Rule::new(vec![
                from_pod,
                not_known(Field::ArpSaddrIp),
                Stmt::Verdict(Verdict::Drop),
            ])
            .with_comment("ARP from a pod claiming an address that is not its own"),
        ],
    );
    t
}
