//! Pod: containers required, restart and DNS policies, DNS config, node name and
//! host name, grace periods, node selector, and the addresses in its status.
//! The containers themselves (names, ports, env, probes) are in `container.rs`.

use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};

use super::container::check_containers;
use super::names::{check_labels, dns1123_label, dns1123_subdomain};
use super::net::{check_ip, family};
use super::report::{quote, show, Report};

const DNS_POLICIES: &[&str] = &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];

pub fn check(r: &mut Report, pod: &Pod) {
    match &pod.spec {
        Some(spec) => check_spec(r, spec),
        None => r.missing("spec", "a pod spec with at least one container"),
    }
    if let Some(status) = &pod.status {
        check_status(r, status);
    }
}

fn check_spec(r: &mut Report, spec: &PodSpec) {
    if spec.containers.is_empty() {
        r.push("spec.containers", "at least one container", "an empty list");
    }
    check_containers(r, spec);
    if let Some(p) = spec.restart_policy.as_deref() {
        r.check_enum("spec.restartPolicy", p, &["Always", "OnFailure", "Never"]);
    }
    check_dns(r, spec);
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        r.check("spec.nodeName", n, dns1123_subdomain(n));
    }
    if let Some(h) = spec.hostname.as_deref().filter(|n| !n.is_empty()) {
        r.check("spec.hostname", h, dns1123_label(h));
    }
    if let Some(s) = spec.subdomain.as_deref().filter(|n| !n.is_empty()) {
        r.check("spec.subdomain", s, dns1123_label(s));
    }
    if let Some(t) = spec.termination_grace_period_seconds.filter(|&t| t < 0) {
        r.push(
            "spec.terminationGracePeriodSeconds",
            "a number of seconds, 0 or more",
            t.to_string(),
        );
    }
    if let Some(t) = spec.active_deadline_seconds.filter(|&t| t < 1) {
        r.push(
            "spec.activeDeadlineSeconds",
            "a number of seconds, 1 or more",
            t.to_string(),
        );
    }
    if let Some(sel) = &spec.node_selector {
        check_labels(r, "spec.nodeSelector", sel);
    }
}

fn check_dns(r: &mut Report, spec: &PodSpec) {
    let policy = spec.dns_policy.as_deref();
    if let Some(p) = policy {
        r.check_enum("spec.dnsPolicy", p, DNS_POLICIES);
    }
    let none = policy == Some("None");
    let Some(conf) = &spec.dns_config else {
        if none {
            r.missing(
                "spec.dnsConfig",
                "a dnsConfig with at least one nameserver (required when dnsPolicy is None)",
            );
        }
        return;
    };
    let servers: &[String] = conf.nameservers.as_deref().unwrap_or_default();
    if none && servers.is_empty() {
        r.missing(
            "spec.dnsConfig.nameservers",
            "at least one nameserver when dnsPolicy is None",
        );
    }
    if servers.len() > 3 {
        r.push(
            "spec.dnsConfig.nameservers",
            "at most 3 nameservers (the resolver reads no more)",
            show(servers),
        );
    }
    for (i, s) in servers.iter().enumerate() {
        check_ip(r, format!("spec.dnsConfig.nameservers[{i}]"), s);
    }
    let searches: &[String] = conf.searches.as_deref().unwrap_or_default();
    if searches.len() > 32 {
        r.push(
            "spec.dnsConfig.searches",
            "at most 32 search domains",
            format!("{} search domains", searches.len()),
        );
    }
    let total: usize =
        searches.iter().map(String::len).sum::<usize>() + searches.len().saturating_sub(1);
    if total > 2048 {
        r.push(
            "spec.dnsConfig.searches",
            "search domains of at most 2048 characters in all",
            format!("{total} characters"),
        );
    }
    for (i, s) in searches.iter().enumerate() {
        let trimmed = s.strip_suffix('.').unwrap_or(s);
        r.check(
            format!("spec.dnsConfig.searches[{i}]"),
            s,
            dns1123_subdomain(trimmed),
        );
    }
    for (i, o) in conf.options.iter().flatten().enumerate() {
        if o.name.as_deref().is_none_or(str::is_empty) {
            r.missing(
                format!("spec.dnsConfig.options[{i}].name"),
                "an option name (e.g. \"ndots\")",
            );
        }
    }
}

/// Addresses in status: each valid, the list's first equal to the single field, at
/// most one per family.
fn check_ip_list(r: &mut Report, single: (&str, Option<&str>), list: (&str, Vec<&str>)) {
    let (single_field, single) = single;
    let (list_field, ips) = list;
    let single = single.filter(|s| !s.is_empty());
    if let Some(s) = single {
        check_ip(r, single_field, s);
    }
    if let (Some(s), Some(first)) = (single, ips.first()) {
        if s != *first {
            r.push(
                format!("{list_field}[0].ip"),
                format!("the same address as {single_field} ({})", quote(s)),
                quote(first),
            );
        }
    }
    let mut families = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        if let Some(addr) = check_ip(r, format!("{list_field}[{i}].ip"), ip) {
            let fam = family(addr);
            if families.contains(&fam) {
                r.push(
                    format!("{list_field}[{i}].ip"),
                    format!("at most one {fam} address (one address per IP family)"),
                    quote(ip),
                );
            }
            families.push(fam);
        }
    }
}

fn check_status(r: &mut Report, status: &PodStatus) {
    let pod_ips = status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.as_str())
        .collect();
    check_ip_list(
        r,
        ("status.podIP", status.pod_ip.as_deref()),
        ("status.podIPs", pod_ips),
    );
    let host_ips = status
        .host_ips
        .iter()
        .flatten()
        .map(|p| p.ip.as_str())
        .collect();
    check_ip_list(
        r,
        ("status.hostIP", status.host_ip.as_deref()),
        ("status.hostIPs", host_ips),
    );
}

#[cfg(test)]
mod tests {
    use crate::validate::testing::{assert_one, assert_valid};

    fn pod(rest: &str) -> String {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: web-0, namespace: shop}}\n{rest}")
    }

    #[test]
    fn good_pods() {
        for rest in [
            "spec: {containers: [{name: app}]}\n",
            "spec:\n  containers: [{name: app}]\n  restartPolicy: OnFailure\n  nodeName: node-1\n  hostname: web-0\n  subdomain: web\n  terminationGracePeriodSeconds: 0\n  nodeSelector: {kubernetes.io/os: linux}\n",
            "spec:\n  containers: [{name: app}]\n  dnsPolicy: None\n  dnsConfig: {nameservers: [10.96.0.10], searches: [svc.cluster.local., cluster.local], options: [{name: ndots, value: '5'}]}\n",
            "spec:\n  containers: [{name: app}]\n  hostNetwork: true\n  dnsPolicy: ClusterFirstWithHostNet\n",
            "spec: {containers: [{name: app}]}\nstatus: {podIP: 10.244.1.5, podIPs: [{ip: 10.244.1.5}, {ip: 'fd00::5'}], hostIP: 172.18.0.2}\n",
        ] {
            assert_valid(&pod(rest));
        }
    }

    #[test]
    fn bad_pods() {
        let cases = [
            ("", "spec: expected a pod spec with at least one container, found nothing"),
            ("spec: {containers: []}\n", "spec.containers: expected at least one container, found an empty list"),
            ("spec: {containers: [{name: app}], restartPolicy: always}\n", "spec.restartPolicy: expected one of Always|OnFailure|Never, found \"always\""),
            ("spec: {containers: [{name: app}], dnsPolicy: ClusterFirstWithHostNetwork}\n", "spec.dnsPolicy: expected one of ClusterFirst|ClusterFirstWithHostNet|Default|None, found \"ClusterFirstWithHostNetwork\""),
            ("spec: {containers: [{name: app}], dnsPolicy: None}\n", "spec.dnsConfig: expected a dnsConfig with at least one nameserver (required when dnsPolicy is None), found nothing"),
            ("spec: {containers: [{name: app}], dnsPolicy: None, dnsConfig: {searches: [a.b]}}\n", "spec.dnsConfig.nameservers: expected at least one nameserver when dnsPolicy is None, found nothing"),
            ("spec: {containers: [{name: app}], dnsConfig: {nameservers: [1.1.1.1, 8.8.8.8, 9.9.9.9, 1.0.0.1]}}\n", "spec.dnsConfig.nameservers: expected at most 3 nameservers"),
            ("spec: {containers: [{name: app}], dnsConfig: {nameservers: [10.96.0.300]}}\n", "spec.dnsConfig.nameservers[0]: expected an IP address"),
            ("spec: {containers: [{name: app}], dnsConfig: {searches: [Svc.Local]}}\n", "spec.dnsConfig.searches[0]: expected a DNS-1123 subdomain"),
            ("spec: {containers: [{name: app}], dnsConfig: {options: [{value: '1'}]}}\n", "spec.dnsConfig.options[0].name: expected an option name (e.g. \"ndots\"), found nothing"),
            ("spec: {containers: [{name: app}], nodeName: Node_1}\n", "spec.nodeName: expected a DNS-1123 subdomain"),
            ("spec: {containers: [{name: app}], hostname: web.0}\n", "spec.hostname: expected a DNS-1123 label"),
            ("spec: {containers: [{name: app}], terminationGracePeriodSeconds: -1}\n", "spec.terminationGracePeriodSeconds: expected a number of seconds, 0 or more, found -1"),
            ("spec: {containers: [{name: app}], activeDeadlineSeconds: 0}\n", "spec.activeDeadlineSeconds: expected a number of seconds, 1 or more, found 0"),
            ("spec: {containers: [{name: app}], nodeSelector: {'kubernetes.io/': linux}}\n", "spec.nodeSelector[\"kubernetes.io/\"]: expected a label key"),
            ("spec: {containers: [{name: app}]}\nstatus: {podIP: 10.244.1.05}\n", "status.podIP: expected an IP address without leading zeros"),
            ("spec: {containers: [{name: app}]}\nstatus: {podIP: 10.244.1.5, podIPs: [{ip: 10.244.1.6}]}\n", "status.podIPs[0].ip: expected the same address as status.podIP (\"10.244.1.5\"), found \"10.244.1.6\""),
            ("spec: {containers: [{name: app}]}\nstatus: {podIPs: [{ip: 10.244.1.5}, {ip: 10.244.1.6}]}\n", "status.podIPs[1].ip: expected at most one IPv4 address (one address per IP family), found \"10.244.1.6\""),
            ("spec: {containers: [{name: app}]}\nstatus: {hostIP: node-1}\n", "status.hostIP: expected an IP address"),
        ];
        for (rest, want) in cases {
            assert_one(&pod(rest), want);
        }
    }
}
