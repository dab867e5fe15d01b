//! Node: pod CIDRs (network addresses inside the cluster CIDR, one per family) and
//! status addresses (known types; IP types hold IPs, name types hold DNS names).

use k8s_openapi::api::core::v1::Node;

use super::names::dns1123_subdomain;
use super::net::{check_cidr, family};
use super::report::{quote, show, Report};
use crate::config::ClusterConfigSpec;

const ADDRESS_TYPES: &[&str] = &[
    "Hostname",
    "InternalIP",
    "ExternalIP",
    "InternalDNS",
    "ExternalDNS",
];

pub fn check(r: &mut Report, node: &Node, cfg: &ClusterConfigSpec) {
    if let Some(spec) = &node.spec {
        check_pod_cidrs(
            r,
            spec.pod_cidr.as_deref(),
            spec.pod_cidrs.as_deref().unwrap_or_default(),
            cfg,
        );
    }
    for (i, a) in node
        .status
        .iter()
        .flat_map(|s| s.addresses.iter().flatten())
        .enumerate()
    {
        let at = format!("status.addresses[{i}]");
        if !r.check_enum(format!("{at}.type"), &a.type_, ADDRESS_TYPES) {
            continue;
        }
        let field = format!("{at}.address");
        if a.type_.ends_with("IP") {
            super::net::check_ip(r, field, &a.address);
        } else if a.address.is_empty() {
            r.missing(
                field,
                format!("a DNS name for an address of type {}", a.type_),
            );
        } else {
            r.check(field, &a.address, dns1123_subdomain(&a.address));
        }
    }
}

fn check_pod_cidrs(r: &mut Report, single: Option<&str>, list: &[String], cfg: &ClusterConfigSpec) {
    let single = single.filter(|s| !s.is_empty());
    let cluster = cfg.cluster_cidr.trunc();
    let inside = |r: &mut Report, field: &str, s: &str| {
        if let Some(net) = check_cidr(r, field, s) {
            if net.addr().is_ipv4() == cluster.addr().is_ipv4() && !cluster.contains(&net) {
                r.push(
                    field,
                    format!("a CIDR inside the cluster CIDR {cluster}"),
                    quote(s),
                );
            }
            return Some(net);
        }
        None
    };
    if let Some(s) = single {
        inside(r, "spec.podCIDR", s);
    }
    if let (Some(s), Some(first)) = (single, list.first()) {
        if s != first {
            r.push(
                "spec.podCIDRs[0]",
                format!("the same CIDR as spec.podCIDR ({})", quote(s)),
                quote(first),
            );
        }
    }
    if list.len() > 2 {
        r.push(
            "spec.podCIDRs",
            "at most two CIDRs, one per IP family",
            show(list),
        );
    }
    let mut families = Vec::new();
    for (i, s) in list.iter().enumerate() {
        let field = format!("spec.podCIDRs[{i}]");
        let net = if i == 0 && single.is_some() {
            super::net::parse_cidr(s).ok()
        } else {
            inside(r, &field, s)
        };
        if let Some(net) = net {
            let fam = family(net.addr());
            if families.contains(&fam) {
                r.push(
                    field,
                    format!("at most one {fam} CIDR (one per IP family)"),
                    quote(s),
                );
            }
            families.push(fam);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::validate::testing::{assert_one, assert_valid};

    fn node(rest: &str) -> String {
        format!("apiVersion: v1\nkind: Node\nmetadata: {{name: node-1}}\n{rest}")
    }

    #[test]
    fn good_nodes() {
        for rest in [
            "",
            "spec: {podCIDR: 10.244.1.0/24, podCIDRs: [10.244.1.0/24, 'fd00:1::/64']}\n",
            "status: {addresses: [{type: InternalIP, address: 172.18.0.2}, {type: Hostname, address: node-1}, {type: ExternalDNS, address: node-1.example.com}]}\n",
        ] {
            assert_valid(&node(rest));
        }
    }

    #[test]
    fn bad_nodes() {
        let cases = [
            ("spec: {podCIDR: 10.244.1.1/24}\n", "spec.podCIDR: expected a CIDR whose address is its network address (10.244.1.0/24), found \"10.244.1.1/24\""),
            ("spec: {podCIDR: 10.245.1.0/24}\n", "spec.podCIDR: expected a CIDR inside the cluster CIDR 10.244.0.0/16, found \"10.245.1.0/24\""),
            ("spec: {podCIDR: 10.244.1.0/24, podCIDRs: [10.244.2.0/24]}\n", "spec.podCIDRs[0]: expected the same CIDR as spec.podCIDR (\"10.244.1.0/24\"), found \"10.244.2.0/24\""),
            ("spec: {podCIDRs: [10.244.1.0/24, 10.244.2.0/24]}\n", "spec.podCIDRs[1]: expected at most one IPv4 CIDR (one per IP family), found \"10.244.2.0/24\""),
            ("spec: {podCIDRs: [10.244.1.0/33]}\n", "spec.podCIDRs[0]: expected a CIDR prefix length between 0 and 32"),
            ("status: {addresses: [{type: InternalIp, address: 172.18.0.2}]}\n", "status.addresses[0].type: expected one of Hostname|InternalIP|ExternalIP|InternalDNS|ExternalDNS, found \"InternalIp\""),
            ("status: {addresses: [{type: InternalIP, address: node-1}]}\n", "status.addresses[0].address: expected an IP address (e.g. 10.0.0.1 or fd00::1), found \"node-1\""),
            ("status: {addresses: [{type: Hostname, address: Node_1}]}\n", "status.addresses[0].address: expected a DNS-1123 subdomain"),
            ("status: {addresses: [{type: Hostname, address: ''}]}\n", "status.addresses[0].address: expected a DNS name for an address of type Hostname, found nothing"),
        ];
        for (rest, want) in cases {
            assert_one(&node(rest), want);
        }
    }
}
