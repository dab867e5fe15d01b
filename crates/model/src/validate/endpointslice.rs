//! EndpointSlice (discovery.k8s.io/v1): address type, endpoints (1 to 100 addresses
//! each, valid for the type, at most 1000 endpoints), node and host names, ports.

use std::collections::HashMap;

use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::names::{dns1123_label, dns1123_subdomain, fully_qualified_domain_name, qualified_name};
use super::net::check_unicast_ip;
use super::ports::{check_port, check_protocol};
use super::report::{quote, Report};

const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 20000;

pub fn check(r: &mut Report, slice: &EndpointSlice) {
    let ty = slice.address_type.as_str();
    if ty.is_empty() {
        r.missing("addressType", "one of IPv4|IPv6|FQDN");
    } else {
        r.check_enum("addressType", ty, &["IPv4", "IPv6", "FQDN"]);
    }
    if slice.endpoints.len() > MAX_ENDPOINTS {
        r.push(
            "endpoints",
            format!("at most {MAX_ENDPOINTS} endpoints (split them over several slices)"),
            format!("{} endpoints", slice.endpoints.len()),
        );
    }
    for (i, ep) in slice.endpoints.iter().enumerate() {
        let at = format!("endpoints[{i}]");
        match ep.addresses.len() {
            0 => r.push(
                format!("{at}.addresses"),
                "at least one address",
                "an empty list",
            ),
            n if n > MAX_ADDRESSES => r.push(
                format!("{at}.addresses"),
                format!("at most {MAX_ADDRESSES} addresses"),
                format!("{n} addresses"),
            ),
            _ => {}
        }
        for (j, a) in ep.addresses.iter().enumerate() {
            let field = format!("{at}.addresses[{j}]");
            match ty {
                "IPv4" | "IPv6" => {
                    if let Some(ip) = check_unicast_ip(r, &field, a) {
                        if (ty == "IPv4") != ip.is_ipv4() {
                            r.push(
                                field,
                                format!("an {ty} address (the slice's addressType)"),
                                quote(a),
                            );
                        }
                    }
                }
                "FQDN" => {
                    r.check(field, a, fully_qualified_domain_name(a));
                }
                _ => {}
            }
        }
        if let Some(n) = ep.node_name.as_deref() {
            r.check(format!("{at}.nodeName"), n, dns1123_subdomain(n));
        }
        if let Some(h) = ep.hostname.as_deref() {
            r.check(format!("{at}.hostname"), h, dns1123_label(h));
        }
    }
    let ports = slice.ports.as_deref().unwrap_or_default();
    if ports.len() > MAX_PORTS {
        r.push(
            "ports",
            format!("at most {MAX_PORTS} ports"),
            format!("{} ports", ports.len()),
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, p) in ports.iter().enumerate() {
        let at = format!("ports[{i}]");
        let name = p.name.as_deref().unwrap_or("");
        if !name.is_empty() {
            r.check(format!("{at}.name"), name, dns1123_label(name));
        }
        if let Some(j) = names.get(name) {
            r.push(
                format!("{at}.name"),
                format!("a port name unique in the slice (ports[{j}] has it already)"),
                quote(name),
            );
        } else {
            names.insert(name, i);
        }
        check_protocol(r, format!("{at}.protocol"), p.protocol.as_deref());
        if let Some(n) = p.port {
            check_port(r, format!("{at}.port"), n);
        }
        if let Some(ap) = p.app_protocol.as_deref() {
            r.check(
                format!("{at}.appProtocol"),
                ap,
                qualified_name(ap, "application protocol"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::validate::testing::{assert_one, assert_valid, errors};

    fn slice(rest: &str) -> String {
        format!("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: web-abc12, namespace: shop, labels: {{kubernetes.io/service-name: web}}}}\n{rest}")
    }

    #[test]
    fn good_slices() {
        for rest in [
            "addressType: IPv4\nendpoints: []\n",
            "addressType: IPv4\nendpoints: [{addresses: [10.244.1.5], conditions: {ready: true}, nodeName: node-1, hostname: web-0}]\nports: [{name: http, port: 8080, protocol: TCP}, {name: dns, port: 53, protocol: UDP}]\n",
            "addressType: IPv6\nendpoints: [{addresses: ['fd00::5']}]\nports: [{port: 80}]\n",
            "addressType: FQDN\nendpoints: [{addresses: [db.example.com]}]\n",
        ] {
            assert_valid(&slice(rest));
        }
    }

    #[test]
    fn bad_slices() {
        let cases = [
            ("addressType: IP\nendpoints: []\n", "addressType: expected one of IPv4|IPv6|FQDN, found \"IP\""),
            ("addressType: ''\nendpoints: []\n", "addressType: expected one of IPv4|IPv6|FQDN, found nothing"),
            ("addressType: IPv4\nendpoints: [{addresses: []}]\n", "endpoints[0].addresses: expected at least one address, found an empty list"),
            ("addressType: IPv4\nendpoints: [{addresses: ['fd00::5']}]\n", "endpoints[0].addresses[0]: expected an IPv4 address (the slice's addressType), found \"fd00::5\""),
            ("addressType: IPv4\nendpoints: [{addresses: [10.244.01.5]}]\n", "endpoints[0].addresses[0]: expected an IP address without leading zeros"),
            ("addressType: IPv4\nendpoints: [{addresses: [127.0.0.1]}]\n", "endpoints[0].addresses[0]: expected an IP address that is not loopback, found \"127.0.0.1\""),
            ("addressType: FQDN\nendpoints: [{addresses: [db]}]\n", "endpoints[0].addresses[0]: expected a fully qualified domain name"),
            ("addressType: IPv4\nendpoints: [{addresses: [10.244.1.5], nodeName: Node_1}]\n", "endpoints[0].nodeName: expected a DNS-1123 subdomain"),
            ("addressType: IPv4\nendpoints: [{addresses: [10.244.1.5], hostname: web.0}]\n", "endpoints[0].hostname: expected a DNS-1123 label"),
            ("addressType: IPv4\nendpoints: []\nports: [{name: Http, port: 80}]\n", "ports[0].name: expected a DNS-1123 label"),
            ("addressType: IPv4\nendpoints: []\nports: [{port: 80}, {port: 81}]\n", "ports[1].name: expected a port name unique in the slice (ports[0] has it already), found \"\""),
            ("addressType: IPv4\nendpoints: []\nports: [{name: a, port: 80, protocol: tcp}]\n", "ports[0].protocol: expected one of TCP|UDP|SCTP, found \"tcp\""),
            ("addressType: IPv4\nendpoints: []\nports: [{name: a, port: 65536}]\n", "ports[0].port: expected a port number between 1 and 65535, found 65536"),
        ];
        for (rest, want) in cases {
            assert_one(&slice(rest), want);
        }
    }

    #[test]
    fn limits() {
        let addrs: Vec<String> = (0..101)
            .map(|i| format!("10.244.{}.{}", i / 200, i % 200 + 1))
            .collect();
        let rest = format!(
            "addressType: IPv4\nendpoints: [{{addresses: [{}]}}]\n",
            addrs.join(", ")
        );
        assert_eq!(
            errors(&slice(&rest)),
            ["endpoints[0].addresses: expected at most 100 addresses, found 101 addresses"]
        );
        let eps: Vec<&str> = (0..1001).map(|_| "{addresses: [10.244.1.5]}").collect();
        let rest = format!("addressType: IPv4\nendpoints: [{}]\n", eps.join(", "));
        assert_eq!(
            errors(&slice(&rest)),
            ["endpoints: expected at most 1000 endpoints (split them over several slices), found 1001 endpoints"]
        );
    }
}
