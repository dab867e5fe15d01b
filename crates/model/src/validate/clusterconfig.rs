//! podnet's `ClusterConfig`: the one object named `default`, with CIDRs that are
//! network addresses and do not overlap, a node CIDR size that splits the cluster
//! CIDR sensibly, a well-formed NodePort range, overlay and MTU limits, and
//! LoadBalancer pools that do not collide with anything else.

use ipnet::IpNet;

use super::names::{dns1123_label, dns1123_subdomain};
use super::net::{check_network_address, family, overlaps, parse_cidr, parse_range, Span};
use super::report::{quote, Mismatch, Report};
use crate::config::{
    ClusterConfig, ClusterConfigSpec, OverlayMode, API_VERSION, DEFAULT_NAME, KIND,
};

const NODE_PORT_RANGE: &str =
    "a port range \"first-last\" with 1 <= first <= last <= 65535 (e.g. \"30000-32767\")";

pub fn check(r: &mut Report, cc: &ClusterConfig) {
    if cc.api_version != API_VERSION {
        r.push("apiVersion", quote(API_VERSION), quote(&cc.api_version));
    }
    if cc.kind != KIND {
        r.push("kind", quote(KIND), quote(&cc.kind));
    }
    if let Some(name) = cc
        .metadata
        .name
        .as_deref()
        .filter(|n| !n.is_empty() && *n != DEFAULT_NAME)
    {
        r.push(
            "metadata.name",
            format!("{DEFAULT_NAME:?} (podnet reads only the ClusterConfig named {DEFAULT_NAME})"),
            quote(name),
        );
    }
    check_spec(r, &cc.spec);
}

fn check_net(r: &mut Report, field: &str, net: IpNet) -> bool {
    match check_network_address(net) {
        Ok(()) => true,
        Err(m) => {
            r.push(field, m.expected, quote(&net.to_string()));
            false
        }
    }
}

/// Parses `first-last` strictly (digits only); the range when well-formed.
pub fn parse_port_range(s: &str) -> Result<(u16, u16), Mismatch> {
    let parse = |p: &str| -> Option<u16> {
        let ok = !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit());
        ok.then(|| p.parse::<u16>().ok())
            .flatten()
            .filter(|&n| n > 0)
    };
    match s.split_once('-').map(|(a, b)| (parse(a), parse(b))) {
        Some((Some(a), Some(b))) if a <= b => Ok((a, b)),
        _ => Err(Mismatch::new(NODE_PORT_RANGE)),
    }
}

fn check_spec(r: &mut Report, s: &ClusterConfigSpec) {
    let cluster_ok = check_net(r, "spec.clusterCIDR", s.cluster_cidr);
    let service_ok = check_net(r, "spec.serviceCIDR", s.service_cidr);
    let (cluster, service) = (s.cluster_cidr.trunc(), s.service_cidr.trunc());
    let v6 = cluster.addr().is_ipv6();
    if cluster_ok && service_ok {
        if overlaps(cluster, service) {
            r.push(
                "spec.serviceCIDR",
                format!("a CIDR that does not overlap the cluster CIDR {cluster}"),
                quote(&service.to_string()),
            );
        } else if cluster.addr().is_ipv6() != service.addr().is_ipv6() {
            r.push(
                "spec.serviceCIDR",
                format!(
                    "an {} CIDR like the cluster CIDR {cluster} (podnet clusters are single-stack)",
                    family(cluster.addr())
                ),
                quote(&service.to_string()),
            );
        }
    }
    // At most 2^20 service addresses (as kube-apiserver), at least 16 (kube-dns is the 10th).
    let bits = if service.addr().is_ipv4() { 32 } else { 128 };
    if service_ok && !(bits - 20..=bits - 4).contains(&service.prefix_len()) {
        r.push(
            "spec.serviceCIDR",
            format!(
                "a service CIDR of 16 to 2^20 addresses (a prefix between /{} and /{} for {})",
                bits - 20,
                bits - 4,
                family(service.addr())
            ),
            quote(&service.to_string()),
        );
    }
    let max = if v6 { 126 } else { 30 };
    let (lo, hi) = (
        cluster.prefix_len() + 1,
        (cluster.prefix_len() + 16).min(max),
    );
    let m = s.node_cidr_mask_size;
    if cluster_ok && (m < lo || m > hi) {
        let expected = if lo > hi {
            format!("a node CIDR prefix length, but the cluster CIDR {cluster} is too small to split into node CIDRs of at least 4 addresses")
        } else {
            format!("a node CIDR prefix length between {lo} and {hi} (longer than the cluster CIDR {cluster} by at most 16, leaving at least 4 addresses per node)")
        };
        r.push("spec.nodeCIDRMaskSize", expected, m.to_string());
    }
    let ports = parse_port_range(&s.node_port_range);
    r.check(
        "spec.nodePortRange",
        &s.node_port_range,
        ports.clone().map(|_| ()),
    );
    r.check(
        "spec.clusterDomain",
        &s.cluster_domain,
        dns1123_subdomain(&s.cluster_domain),
    );
    r.check_range(
        "spec.overlay.vni",
        "a VXLAN network identifier",
        s.overlay.vni,
        1,
        16_777_215,
    );
    r.check_range("spec.overlay.port", "a UDP port", s.overlay.port, 1, 65535);
    if let (Ok((a, b)), OverlayMode::Vxlan) = (ports, s.overlay.mode) {
        if (a..=b).contains(&s.overlay.port) {
            r.push(
                "spec.overlay.port",
                format!("a UDP port outside the node port range {a}-{b}"),
                s.overlay.port.to_string(),
            );
        }
    }
    check_mtu(r, s);
    for (i, net) in s.non_masquerade_cidrs.iter().enumerate() {
        check_net(r, &format!("spec.nonMasqueradeCIDRs[{i}]"), *net);
    }
    check_pools(r, s);
}

fn check_mtu(r: &mut Report, s: &ClusterConfigSpec) {
    r.check_range("spec.mtu", "an MTU", s.mtu, 576, 9000);
    let any_v6 = s.cluster_cidr.addr().is_ipv6() || s.service_cidr.addr().is_ipv6();
    let overhead = s.mtu.saturating_sub(s.pod_mtu());
    if any_v6 && (576..=9000).contains(&s.mtu) && s.pod_mtu() < 1280 {
        let why = if overhead > 0 {
            format!(" (pods get {overhead} less in vxlan mode and IPv6 needs 1280)")
        } else {
            " (IPv6 needs 1280)".to_string()
        };
        r.push(
            "spec.mtu",
            format!("an MTU of at least {}{why}", 1280 + overhead),
            s.mtu.to_string(),
        );
    }
}

/// One address entry of a pool: a CIDR (has '/') or a range.
fn parse_pool_entry(s: &str) -> Result<Span, Mismatch> {
    if s.contains('/') {
        parse_cidr(s).map(Span::of_net)
    } else {
        parse_range(s).map(|(a, b)| Span::of_range(a, b))
    }
}

/// Every well-formed pool entry: (pool name, entry as written, span).
pub fn pool_spans(cfg: &ClusterConfigSpec) -> Vec<(String, String, Span)> {
    let mut out = Vec::new();
    for p in &cfg.load_balancer_pools {
        for a in &p.addresses {
            if let Ok(span) = parse_pool_entry(a) {
                out.push((p.name.clone(), a.clone(), span));
            }
        }
    }
    out
}

fn check_pools(r: &mut Report, s: &ClusterConfigSpec) {
    let reserved = [
        ("the cluster CIDR", s.cluster_cidr.trunc()),
        ("the service CIDR", s.service_cidr.trunc()),
    ];
    let mut seen: Vec<(String, String, Span)> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for (i, pool) in s.load_balancer_pools.iter().enumerate() {
        let at = format!("spec.loadBalancerPools[{i}]");
        if r.check(format!("{at}.name"), &pool.name, dns1123_label(&pool.name)) {
            if let Some(j) = names.iter().position(|n| *n == pool.name) {
                r.push(
                    format!("{at}.name"),
                    format!("a pool name unique among the pools (spec.loadBalancerPools[{j}] has it already)"),
                    quote(&pool.name),
                );
            }
        }
        names.push(&pool.name);
        if pool.addresses.is_empty() {
            r.missing(
                format!("{at}.addresses"),
                "at least one CIDR or address range (e.g. \"172.18.255.200-172.18.255.250\")",
            );
        }
        for (j, a) in pool.addresses.iter().enumerate() {
            let field = format!("{at}.addresses[{j}]");
            let span = match parse_pool_entry(a) {
                Ok(span) => span,
                Err(m) => {
                    let expected = format!("a CIDR or an address range: {}", m.expected);
                    r.push(field, expected, quote(a));
                    continue;
                }
            };
            for (what, net) in reserved {
                if span.overlaps(&Span::of_net(net)) {
                    r.push(&field, format!("addresses outside {what} {net}"), quote(a));
                }
            }
            if let Some((f, other, _)) = seen.iter().find(|(_, _, s)| s.overlaps(&span)) {
                r.push(
                    &field,
                    format!("addresses not already in {f} ({})", quote(other)),
                    quote(a),
                );
            }
            seen.push((field, a.clone(), span));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::validate::testing::{assert_one, assert_valid, errors};

    fn cc(spec: &str) -> String {
        format!("apiVersion: podnet.io/v1alpha1\nkind: ClusterConfig\nmetadata: {{name: default}}\nspec:\n{spec}")
    }

    #[test]
    fn good_configs() {
        for spec in [
            "  {}\n",
            "  clusterCIDR: 10.0.0.0/8\n  nodeCIDRMaskSize: 24\n  serviceCIDR: 192.168.0.0/16\n",
            "  clusterCIDR: 10.244.0.0/16\n  nodeCIDRMaskSize: 30\n",
            "  clusterCIDR: fd00:10:244::/56\n  nodeCIDRMaskSize: 64\n  serviceCIDR: fd00:10:96::/112\n  mtu: 1500\n",
            "  nodePortRange: 8000-8000\n  overlay: {mode: host-gw, vni: 16777215, port: 8000}\n",
            "  clusterDomain: k8s.example\n  mtu: 9000\n  nonMasqueradeCIDRs: [192.168.0.0/16]\n",
            "  loadBalancerPools:\n  - {name: a, addresses: [172.18.255.0/28, 172.18.255.100-172.18.255.110]}\n  - {name: b, addresses: ['fd00:1::/120'], autoAssign: false}\n",
        ] {
            assert_valid(&cc(spec));
        }
    }

    #[test]
    fn bad_configs() {
        let cases = [
            ("  clusterCIDR: 10.244.0.1/16\n", "spec.clusterCIDR: expected a CIDR whose address is its network address (10.244.0.0/16), found \"10.244.0.1/16\""),
            ("  serviceCIDR: 10.244.128.0/20\n", "spec.serviceCIDR: expected a CIDR that does not overlap the cluster CIDR 10.244.0.0/16, found \"10.244.128.0/20\""),
            ("  serviceCIDR: fd00::/112\n", "spec.serviceCIDR: expected an IPv4 CIDR like the cluster CIDR 10.244.0.0/16 (podnet clusters are single-stack), found \"fd00::/112\""),
            ("  serviceCIDR: 10.0.0.0/8\n  clusterCIDR: 192.168.0.0/16\n", "spec.serviceCIDR: expected a service CIDR of 16 to 2^20 addresses (a prefix between /12 and /28 for IPv4), found \"10.0.0.0/8\""),
            ("  serviceCIDR: 10.96.0.0/29\n", "spec.serviceCIDR: expected a service CIDR of 16 to 2^20 addresses"),
            ("  nodeCIDRMaskSize: 16\n", "spec.nodeCIDRMaskSize: expected a node CIDR prefix length between 17 and 30 (longer than the cluster CIDR 10.244.0.0/16 by at most 16, leaving at least 4 addresses per node), found 16"),
            ("  nodeCIDRMaskSize: 31\n", "spec.nodeCIDRMaskSize: expected a node CIDR prefix length between 17 and 30"),
            ("  clusterCIDR: 10.0.0.0/8\n  serviceCIDR: 192.168.0.0/16\n  nodeCIDRMaskSize: 25\n", "spec.nodeCIDRMaskSize: expected a node CIDR prefix length between 9 and 24"),
            ("  nodePortRange: 32767-30000\n", "spec.nodePortRange: expected a port range \"first-last\" with 1 <= first <= last <= 65535 (e.g. \"30000-32767\"), found \"32767-30000\""),
            ("  nodePortRange: 30000-70000\n", "spec.nodePortRange: expected a port range"),
            ("  nodePortRange: '30000'\n", "spec.nodePortRange: expected a port range"),
            ("  nodePortRange: 0-100\n", "spec.nodePortRange: expected a port range"),
            ("  clusterDomain: Cluster.Local\n", "spec.clusterDomain: expected a DNS-1123 subdomain"),
            ("  overlay: {vni: 0}\n", "spec.overlay.vni: expected a VXLAN network identifier between 1 and 16777215, found 0"),
            ("  overlay: {vni: 16777216}\n", "spec.overlay.vni: expected a VXLAN network identifier between 1 and 16777215, found 16777216"),
            ("  overlay: {port: 0}\n", "spec.overlay.port: expected a UDP port between 1 and 65535, found 0"),
            ("  overlay: {port: 30001}\n", "spec.overlay.port: expected a UDP port outside the node port range 30000-32767, found 30001"),
            ("  mtu: 575\n", "spec.mtu: expected an MTU between 576 and 9000, found 575"),
            ("  mtu: 9001\n", "spec.mtu: expected an MTU between 576 and 9000, found 9001"),
            ("  clusterCIDR: fd00:10:244::/56\n  nodeCIDRMaskSize: 64\n  serviceCIDR: fd00:10:96::/112\n  mtu: 1300\n", "spec.mtu: expected an MTU of at least 1330 (pods get 50 less in vxlan mode and IPv6 needs 1280), found 1300"),
            ("  nonMasqueradeCIDRs: [192.168.0.1/16]\n", "spec.nonMasqueradeCIDRs[0]: expected a CIDR whose address is its network address (192.168.0.0/16)"),
            ("  loadBalancerPools: [{name: Pool_A, addresses: [172.18.255.0/28]}]\n", "spec.loadBalancerPools[0].name: expected a DNS-1123 label"),
            ("  loadBalancerPools: [{name: a, addresses: [172.18.255.0/28]}, {name: a, addresses: [172.18.254.0/28]}]\n", "spec.loadBalancerPools[1].name: expected a pool name unique among the pools (spec.loadBalancerPools[0] has it already), found \"a\""),
            ("  loadBalancerPools: [{name: a, addresses: []}]\n", "spec.loadBalancerPools[0].addresses: expected at least one CIDR or address range"),
            ("  loadBalancerPools: [{name: a, addresses: [172.18.255.250-172.18.255.200]}]\n", "spec.loadBalancerPools[0].addresses[0]: expected a CIDR or an address range: an address range whose first address is not above its last, found \"172.18.255.250-172.18.255.200\""),
            ("  loadBalancerPools: [{name: a, addresses: [10.244.5.0/24]}]\n", "spec.loadBalancerPools[0].addresses[0]: expected addresses outside the cluster CIDR 10.244.0.0/16, found \"10.244.5.0/24\""),
            ("  loadBalancerPools: [{name: a, addresses: [10.96.0.1-10.96.0.9]}]\n", "spec.loadBalancerPools[0].addresses[0]: expected addresses outside the service CIDR 10.96.0.0/12"),
            ("  loadBalancerPools: [{name: a, addresses: [172.18.255.0/28]}, {name: b, addresses: [172.18.255.10-172.18.255.20]}]\n", "spec.loadBalancerPools[1].addresses[0]: expected addresses not already in spec.loadBalancerPools[0].addresses[0] (\"172.18.255.0/28\"), found \"172.18.255.10-172.18.255.20\""),
        ];
        for (spec, want) in cases {
            assert_one(&cc(spec), want);
        }
    }

    #[test]
    fn identity() {
        let errs =
            errors("apiVersion: podnet.io/v1alpha1\nkind: ClusterConfig\nmetadata: {name: lab}\n");
        assert_eq!(
            errs,
            ["metadata.name: expected \"default\" (podnet reads only the ClusterConfig named default), found \"lab\""]
        );
        let errs = errors("apiVersion: podnet.io/v1alpha1\nkind: ClusterConfig\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("metadata.name: expected a name"),
            "{errs:?}"
        );
    }
}
