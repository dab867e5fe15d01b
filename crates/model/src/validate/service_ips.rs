//! Service addresses: clusterIP and clusterIPs (inside the service CIDR), IP families
//! (podnet clusters are single-stack), externalIPs, loadBalancerIP (inside a pool)
//! and loadBalancerSourceRanges.

use k8s_openapi::api::core::v1::{Service, ServiceSpec};

use super::clusterconfig::pool_spans;
use super::net::{check_cidr, check_ip, check_unicast_ip, family};
use super::report::{quote, show, Report};
use super::service::{service_type, spec_of, SvcType};
use crate::config::ClusterConfigSpec;

pub fn check(r: &mut Report, svc: &Service, cfg: &ClusterConfigSpec) {
    let spec = spec_of(svc);
    let ty = service_type(&spec);
    check_cluster_ips(r, &spec, ty, cfg);
    check_families(r, &spec, ty, cfg);
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        check_unicast_ip(r, format!("spec.externalIPs[{i}]"), ip);
    }
    check_load_balancer(r, &spec, ty, cfg);
}

fn check_cluster_ips(
    r: &mut Report,
    spec: &ServiceSpec,
    ty: Option<SvcType>,
    cfg: &ClusterConfigSpec,
) {
    let cip = spec.cluster_ip.as_deref().filter(|s| !s.is_empty());
    let cips: &[String] = spec.cluster_ips.as_deref().unwrap_or_default();
    if ty == Some(SvcType::ExternalName) {
        let expected =
            "no cluster IP for type ExternalName (it has no virtual IP, only a DNS alias)";
        if let Some(c) = cip {
            r.push("spec.clusterIP", expected, quote(c));
        }
        if !cips.is_empty() {
            r.push("spec.clusterIPs", expected, show(cips));
        }
        return;
    }
    if let (Some(c), Some(first)) = (cip, cips.first()) {
        if c != first {
            r.push(
                "spec.clusterIPs[0]",
                format!("the same address as spec.clusterIP ({})", quote(c)),
                quote(first),
            );
        }
    }
    let (field, primary) = match (cip, cips.first()) {
        (Some(c), _) => ("spec.clusterIP", c),
        (None, Some(first)) => ("spec.clusterIPs[0]", first.as_str()),
        (None, None) => return,
    };
    if primary == "None" {
        if let Some(t) = ty.filter(|t| t.has_node_ports()) {
            r.push(
                field,
                format!("an address, or nothing to have one allocated, for type {} (only ClusterIP services may be headless)", t.name()),
                quote(primary),
            );
        }
    } else if primary.eq_ignore_ascii_case("none") {
        r.push(
            field,
            "an IP address, or \"None\" (capitalised) for a headless service",
            quote(primary),
        );
    } else {
        check_cluster_ip(r, field, primary, cfg);
    }
    if cips.len() > 1 {
        r.push(
            "spec.clusterIPs",
            format!(
                "one address: the cluster is single-stack (service CIDR {})",
                cfg.service_cidr.trunc()
            ),
            show(cips),
        );
    }
}

/// An address inside the service CIDR, other than its network and broadcast addresses.
pub fn check_cluster_ip(r: &mut Report, field: &str, s: &str, cfg: &ClusterConfigSpec) {
    let Some(ip) = check_ip(r, field, s) else {
        return;
    };
    let net = cfg.service_cidr.trunc();
    if !net.contains(&ip) {
        r.push(
            field,
            format!("an address inside the service CIDR {net}"),
            quote(s),
        );
    } else if ip == net.network()
        || (ip.is_ipv4() && ip == net.broadcast() && net.prefix_len() < 31)
    {
        r.push(
            field,
            format!("an address inside the service CIDR {net} other than its network and broadcast addresses"),
            quote(s),
        );
    }
}

fn check_families(
    r: &mut Report,
    spec: &ServiceSpec,
    ty: Option<SvcType>,
    cfg: &ClusterConfigSpec,
) {
    let fams: &[String] = spec.ip_families.as_deref().unwrap_or_default();
    let policy = spec.ip_family_policy.as_deref();
    if ty == Some(SvcType::ExternalName) {
        if !fams.is_empty() {
            r.push(
                "spec.ipFamilies",
                "no ipFamilies for type ExternalName",
                show(fams),
            );
        }
        if let Some(p) = policy {
            r.push(
                "spec.ipFamilyPolicy",
                "no ipFamilyPolicy for type ExternalName",
                quote(p),
            );
        }
        return;
    }
    let net = cfg.service_cidr.trunc();
    let cluster_family = family(net.addr());
    for (i, f) in fams.iter().enumerate() {
        let field = format!("spec.ipFamilies[{i}]");
        if !r.check_enum(&field, f, &["IPv4", "IPv6"]) {
            continue;
        }
        if fams[..i].contains(f) {
            r.push(field, "an IP family not listed before", quote(f));
        } else if i == 0 && f != cluster_family {
            r.push(
                field,
                format!("{cluster_family}, the family of the service CIDR {net}"),
                quote(f),
            );
        }
    }
    if fams.len() > 2 {
        r.push("spec.ipFamilies", "at most two IP families", show(fams));
    }
    if let Some(p) = policy {
        if r.check_enum(
            "spec.ipFamilyPolicy",
            p,
            &["SingleStack", "PreferDualStack", "RequireDualStack"],
        ) && p == "RequireDualStack"
        {
            r.push(
                "spec.ipFamilyPolicy",
                format!("SingleStack or PreferDualStack: the cluster is single-stack ({cluster_family} service CIDR {net})"),
                quote(p),
            );
        }
    }
    if fams.len() == 2 && matches!(policy, None | Some("SingleStack")) {
        r.push(
            "spec.ipFamilies",
            "one IP family unless ipFamilyPolicy is PreferDualStack or RequireDualStack",
            show(fams),
        );
    }
}

fn check_load_balancer(
    r: &mut Report,
    spec: &ServiceSpec,
    ty: Option<SvcType>,
    cfg: &ClusterConfigSpec,
) {
    let not_lb = ty.filter(|&t| t != SvcType::LoadBalancer);
    if let Some(ip) = spec.load_balancer_ip.as_deref().filter(|s| !s.is_empty()) {
        if let Some(t) = not_lb {
            r.push(
                "spec.loadBalancerIP",
                format!(
                    "no loadBalancerIP for type {} (only LoadBalancer services get one)",
                    t.name()
                ),
                quote(ip),
            );
        } else if let Some(addr) = check_ip(r, "spec.loadBalancerIP", ip) {
            let pools = pool_spans(cfg);
            if !pools.iter().any(|(_, _, span)| span.contains(addr)) {
                let listed: Vec<String> =
                    pools.iter().map(|(n, a, _)| format!("{n}: {a}")).collect();
                let expected = if listed.is_empty() {
                    "an address in a load balancer pool, but the cluster configures none"
                        .to_string()
                } else {
                    format!("an address in a load balancer pool ({})", listed.join(", "))
                };
                r.push("spec.loadBalancerIP", expected, quote(ip));
            }
        }
    }
    let ranges: &[String] = spec
        .load_balancer_source_ranges
        .as_deref()
        .unwrap_or_default();
    if ranges.is_empty() {
        return;
    }
    if let Some(t) = not_lb {
        r.push(
            "spec.loadBalancerSourceRanges",
            format!(
                "no loadBalancerSourceRanges for type {} (only LoadBalancer services use them)",
                t.name()
            ),
            show(ranges),
        );
        return;
    }
    for (i, c) in ranges.iter().enumerate() {
        check_cidr(r, format!("spec.loadBalancerSourceRanges[{i}]"), c.trim());
    }
}

#[cfg(test)]
mod tests {
    use crate::validate::testing::{assert_one, assert_valid};

    fn svc(spec: &str) -> String {
        format!("apiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec:\n  ports: [{{port: 80}}]\n{spec}")
    }

    #[test]
    fn good_addresses() {
        for spec in [
            "  clusterIP: 10.96.0.10\n",
            "  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.10]\n",
            "  clusterIPs: [10.111.255.254]\n",
            "  clusterIP: ''\n",
            "  clusterIP: None\n  clusterIPs: [None]\n",
            "  ipFamilies: [IPv4]\n  ipFamilyPolicy: SingleStack\n",
            "  ipFamilies: [IPv4, IPv6]\n  ipFamilyPolicy: PreferDualStack\n",
            "  externalIPs: [192.0.2.10, 2001:db8::1]\n",
            "  type: LoadBalancer\n  loadBalancerIP: 172.18.255.210\n  loadBalancerSourceRanges: [10.0.0.0/8, 192.168.1.0/24]\n",
        ] {
            assert_valid(&svc(spec));
        }
    }

    #[test]
    fn bad_addresses() {
        let cases = [
            ("  clusterIP: 10.0.0.5\n", "spec.clusterIP: expected an address inside the service CIDR 10.96.0.0/12, found \"10.0.0.5\""),
            ("  clusterIP: 10.96.0.0\n", "spec.clusterIP: expected an address inside the service CIDR 10.96.0.0/12 other than its network and broadcast addresses, found \"10.96.0.0\""),
            ("  clusterIP: 10.111.255.255\n", "spec.clusterIP: expected an address inside the service CIDR 10.96.0.0/12 other than its network and broadcast addresses"),
            ("  clusterIP: 10.96.0.010\n", "spec.clusterIP: expected an IP address without leading zeros"),
            ("  clusterIP: none\n", "spec.clusterIP: expected an IP address, or \"None\" (capitalised) for a headless service, found \"none\""),
            ("  clusterIPs: [10.0.0.1]\n", "spec.clusterIPs[0]: expected an address inside the service CIDR 10.96.0.0/12, found \"10.0.0.1\""),
            ("  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.11]\n", "spec.clusterIPs[0]: expected the same address as spec.clusterIP (\"10.96.0.10\"), found \"10.96.0.11\""),
            ("  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.10, fd00::10]\n", "spec.clusterIPs: expected one address: the cluster is single-stack (service CIDR 10.96.0.0/12), found [\"10.96.0.10\", \"fd00::10\"]"),
            ("  type: NodePort\n  clusterIP: None\n", "spec.clusterIP: expected an address, or nothing to have one allocated, for type NodePort (only ClusterIP services may be headless), found \"None\""),
            ("  type: ExternalName\n  externalName: db.example.com\n  clusterIP: 10.96.0.10\n", "spec.clusterIP: expected no cluster IP for type ExternalName"),
            ("  ipFamilies: [IPv6]\n", "spec.ipFamilies[0]: expected IPv4, the family of the service CIDR 10.96.0.0/12, found \"IPv6\""),
            ("  ipFamilies: [ipv4]\n", "spec.ipFamilies[0]: expected one of IPv4|IPv6, found \"ipv4\""),
            ("  ipFamilies: [IPv4, IPv4]\n  ipFamilyPolicy: PreferDualStack\n", "spec.ipFamilies[1]: expected an IP family not listed before, found \"IPv4\""),
            ("  ipFamilyPolicy: RequireDualStack\n", "spec.ipFamilyPolicy: expected SingleStack or PreferDualStack: the cluster is single-stack (IPv4 service CIDR 10.96.0.0/12), found \"RequireDualStack\""),
            ("  ipFamilyPolicy: DualStack\n", "spec.ipFamilyPolicy: expected one of SingleStack|PreferDualStack|RequireDualStack"),
            ("  ipFamilies: [IPv4, IPv6]\n", "spec.ipFamilies: expected one IP family unless ipFamilyPolicy is PreferDualStack or RequireDualStack"),
            ("  externalIPs: [127.0.0.1]\n", "spec.externalIPs[0]: expected an IP address that is not loopback, found \"127.0.0.1\""),
            ("  externalIPs: [1.2.3]\n", "spec.externalIPs[0]: expected an IP address"),
            ("  loadBalancerIP: 172.18.255.210\n", "spec.loadBalancerIP: expected no loadBalancerIP for type ClusterIP"),
            ("  type: LoadBalancer\n  loadBalancerIP: 10.1.1.1\n", "spec.loadBalancerIP: expected an address in a load balancer pool (default: 172.18.255.200-172.18.255.250), found \"10.1.1.1\""),
            ("  loadBalancerSourceRanges: [10.0.0.0/8]\n", "spec.loadBalancerSourceRanges: expected no loadBalancerSourceRanges for type ClusterIP (only LoadBalancer services use them), found [\"10.0.0.0/8\"]"),
            ("  type: LoadBalancer\n  loadBalancerSourceRanges: [10.0.0.1/8]\n", "spec.loadBalancerSourceRanges[0]: expected a CIDR whose address is its network address (10.0.0.0/8), found \"10.0.0.1/8\""),
        ];
        for (spec, want) in cases {
            assert_one(&svc(spec), want);
        }
    }
}
