//! Ingress (networking.k8s.io/v1): class name, rules (hosts, paths and path types),
//! backends (a service by name with a port number or name, or a resource) and TLS.

use k8s_openapi::api::networking::v1::{HTTPIngressPath, Ingress, IngressBackend};

use super::names::{dns1035_label, dns1123_subdomain, host_name};
use super::net::parse_ip;
use super::ports::{is_port_number, port_name};
use super::report::{quote, Report};

const PATH_TYPES: &[&str] = &["Exact", "Prefix", "ImplementationSpecific"];
const BAD_SEQUENCES: &[&str] = &["//", "/./", "/../", "%2f", "%2F"];
const BAD_SUFFIXES: &[&str] = &["/..", "/."];

pub fn check(r: &mut Report, ing: &Ingress) {
    let Some(spec) = &ing.spec else {
        r.missing("spec", "an ingress spec with rules or a defaultBackend");
        return;
    };
    if let Some(c) = spec.ingress_class_name.as_deref() {
        r.check("spec.ingressClassName", c, dns1123_subdomain(c));
    }
    let rules = spec.rules.as_deref().unwrap_or_default();
    if rules.is_empty() && spec.default_backend.is_none() {
        r.missing(
            "spec",
            "rules or a defaultBackend (an ingress with neither routes nothing)",
        );
    }
    if let Some(b) = &spec.default_backend {
        check_backend(r, "spec.defaultBackend", b);
    }
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("spec.rules[{i}]");
        if let Some(h) = rule.host.as_deref().filter(|h| !h.is_empty()) {
            check_host(r, &format!("{at}.host"), h);
        }
        if let Some(http) = &rule.http {
            if http.paths.is_empty() {
                r.push(
                    format!("{at}.http.paths"),
                    "at least one path",
                    "an empty list",
                );
            }
            for (j, p) in http.paths.iter().enumerate() {
                check_path(r, &format!("{at}.http.paths[{j}]"), p);
            }
        }
    }
    for (i, tls) in spec.tls.iter().flatten().enumerate() {
        let at = format!("spec.tls[{i}]");
        for (j, h) in tls.hosts.iter().flatten().enumerate() {
            check_host(r, &format!("{at}.hosts[{j}]"), h);
        }
        if let Some(s) = tls.secret_name.as_deref().filter(|s| !s.is_empty()) {
            r.check(format!("{at}.secretName"), s, dns1123_subdomain(s));
        }
    }
}

/// A DNS name, possibly with one leading `*.`; never an IP address.
fn check_host(r: &mut Report, field: &str, h: &str) {
    if parse_ip(h).is_ok() {
        r.push(
            field,
            "a DNS name, not an IP address (rules match the Host header by name)",
            quote(h),
        );
    } else {
        r.check(field, h, host_name(h));
    }
}

fn check_path(r: &mut Report, at: &str, p: &HTTPIngressPath) {
    let path = p.path.as_deref().unwrap_or("");
    let field = format!("{at}.path");
    match p.path_type.as_str() {
        "" => r.missing(
            format!("{at}.pathType"),
            "one of Exact|Prefix|ImplementationSpecific",
        ),
        t @ ("Exact" | "Prefix") => {
            if !path.starts_with('/') {
                r.push(
                    &field,
                    format!("an absolute path starting with '/' for pathType {t}"),
                    quote(path),
                );
            }
            if let Some(seq) = BAD_SEQUENCES.iter().find(|s| path.contains(*s)) {
                r.push(&field, format!("a path without {seq:?}"), quote(path));
            } else if let Some(suf) = BAD_SUFFIXES.iter().find(|s| path.ends_with(*s)) {
                r.push(&field, format!("a path not ending in {suf:?}"), quote(path));
            }
        }
        "ImplementationSpecific" => {
            if !path.is_empty() && !path.starts_with('/') {
                r.push(
                    &field,
                    "an absolute path starting with '/', or no path",
                    quote(path),
                );
            }
        }
        other => {
            r.check_enum(format!("{at}.pathType"), other, PATH_TYPES);
        }
    }
    check_backend(r, &format!("{at}.backend"), &p.backend);
}

fn check_backend(r: &mut Report, at: &str, b: &IngressBackend) {
    match (&b.service, &b.resource) {
        (Some(_), Some(_)) => r.push(
            at,
            "either a service or a resource backend, not both",
            "both",
        ),
        (None, None) => r.missing(at, "a backend: service (name and port) or resource"),
        (None, Some(res)) => {
            if res.kind.is_empty() {
                r.missing(format!("{at}.resource.kind"), "the kind of the resource");
            }
            if res.name.is_empty() {
                r.missing(format!("{at}.resource.name"), "the name of the resource");
            }
            if let Some(g) = res.api_group.as_deref().filter(|g| !g.is_empty()) {
                r.check(format!("{at}.resource.apiGroup"), g, dns1123_subdomain(g));
            }
        }
        (Some(svc), None) => {
            let sat = format!("{at}.service");
            if svc.name.is_empty() {
                r.missing(format!("{sat}.name"), "the name of a Service");
            } else {
                r.check(format!("{sat}.name"), &svc.name, dns1035_label(&svc.name));
            }
            let name = svc
                .port
                .as_ref()
                .and_then(|p| p.name.as_deref())
                .filter(|n| !n.is_empty());
            let number = svc.port.as_ref().and_then(|p| p.number).filter(|&n| n != 0);
            match (name, number) {
                (Some(n), Some(p)) => r.push(
                    format!("{sat}.port"),
                    "either a port number or a port name, not both",
                    format!("number {p} and name {}", quote(n)),
                ),
                (None, None) => r.missing(
                    format!("{sat}.port"),
                    "a port number or name of the Service",
                ),
                (Some(n), None) => {
                    r.check(format!("{sat}.port.name"), n, port_name(n));
                }
                (None, Some(p)) => {
                    if !is_port_number(p) {
                        r.push(
                            format!("{sat}.port.number"),
                            "a port number between 1 and 65535",
                            p.to_string(),
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::validate::testing::{assert_one, assert_valid};

    fn ing(spec: &str) -> String {
        format!("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: shop, namespace: shop}}\nspec:\n{spec}")
    }

    const WEB: &str = "{service: {name: web, port: {number: 80}}}";

    #[test]
    fn good_ingresses() {
        for spec in [
            format!("  defaultBackend: {WEB}\n"),
            format!("  ingressClassName: podnet\n  rules:\n  - host: shop.example.com\n    http:\n      paths:\n      - {{path: /, pathType: Prefix, backend: {WEB}}}\n      - {{path: /api/v1, pathType: Exact, backend: {{service: {{name: api, port: {{name: http}}}}}}}}\n"),
            format!("  rules:\n  - host: '*.example.com'\n    http: {{paths: [{{pathType: ImplementationSpecific, backend: {WEB}}}]}}\n"),
            "  rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {resource: {apiGroup: k8s.example.com, kind: Bucket, name: assets}}}]}}]\n  tls: [{hosts: [shop.example.com, '*.example.com'], secretName: shop-tls}]\n".to_string(),
        ] {
            assert_valid(&ing(&spec));
        }
    }

    #[test]
    fn bad_ingresses() {
        let p = |path: &str, ty: &str, backend: &str| {
            format!("  rules: [{{http: {{paths: [{{path: '{path}', pathType: {ty}, backend: {backend}}}]}}}}]\n")
        };
        let cases = [
            ("  ingressClassName: Podnet\n".to_string() + &format!("  defaultBackend: {WEB}\n"), "spec.ingressClassName: expected a DNS-1123 subdomain"),
            ("  tls: [{secretName: x}]\n".to_string(), "spec: expected rules or a defaultBackend (an ingress with neither routes nothing), found nothing"),
            (format!("  rules: [{{host: 10.0.0.1, http: {{paths: [{{path: /, pathType: Prefix, backend: {WEB}}}]}}}}]\n"), "spec.rules[0].host: expected a DNS name, not an IP address (rules match the Host header by name), found \"10.0.0.1\""),
            (format!("  rules: [{{host: 'shop.*.com', http: {{paths: [{{path: /, pathType: Prefix, backend: {WEB}}}]}}}}]\n"), "spec.rules[0].host: expected a DNS-1123 subdomain with an optional leading \"*.\" wildcard"),
            (format!("  rules: [{{host: Shop.example.com, http: {{paths: [{{path: /, pathType: Prefix, backend: {WEB}}}]}}}}]\n"), "spec.rules[0].host: expected a DNS-1123 subdomain"),
            ("  rules: [{http: {paths: []}}]\n".to_string(), "spec.rules[0].http.paths: expected at least one path, found an empty list"),
            (p("api", "Prefix", WEB), "spec.rules[0].http.paths[0].path: expected an absolute path starting with '/' for pathType Prefix, found \"api\""),
            (p("/a//b", "Exact", WEB), "spec.rules[0].http.paths[0].path: expected a path without \"//\", found \"/a//b\""),
            (p("/a/..", "Prefix", WEB), "spec.rules[0].http.paths[0].path: expected a path not ending in \"/..\", found \"/a/..\""),
            (p("api", "ImplementationSpecific", WEB), "spec.rules[0].http.paths[0].path: expected an absolute path starting with '/', or no path, found \"api\""),
            (p("/", "prefix", WEB), "spec.rules[0].http.paths[0].pathType: expected one of Exact|Prefix|ImplementationSpecific, found \"prefix\""),
            (p("/", "''", WEB), "spec.rules[0].http.paths[0].pathType: expected one of Exact|Prefix|ImplementationSpecific, found nothing"),
            (p("/", "Prefix", "{}"), "spec.rules[0].http.paths[0].backend: expected a backend: service (name and port) or resource, found nothing"),
            (p("/", "Prefix", "{service: {name: web, port: {number: 80}}, resource: {kind: B, name: b}}"), "spec.rules[0].http.paths[0].backend: expected either a service or a resource backend, not both, found both"),
            (p("/", "Prefix", "{service: {name: 1web, port: {number: 80}}}"), "spec.rules[0].http.paths[0].backend.service.name: expected a DNS-1035 label"),
            (p("/", "Prefix", "{service: {name: web}}"), "spec.rules[0].http.paths[0].backend.service.port: expected a port number or name of the Service, found nothing"),
            (p("/", "Prefix", "{service: {name: web, port: {number: 80, name: http}}}"), "spec.rules[0].http.paths[0].backend.service.port: expected either a port number or a port name, not both, found number 80 and name \"http\""),
            (p("/", "Prefix", "{service: {name: web, port: {number: 70000}}}"), "spec.rules[0].http.paths[0].backend.service.port.number: expected a port number between 1 and 65535, found 70000"),
            (p("/", "Prefix", "{service: {name: web, port: {name: HTTP}}}"), "spec.rules[0].http.paths[0].backend.service.port.name: expected a port name (IANA_SVC_NAME)"),
            (p("/", "Prefix", "{resource: {kind: '', name: b}}"), "spec.rules[0].http.paths[0].backend.resource.kind: expected the kind of the resource, found nothing"),
            (format!("  defaultBackend: {WEB}\n  tls: [{{hosts: ['*'], secretName: shop-tls}}]\n"), "spec.tls[0].hosts[0]: expected a DNS-1123 subdomain with an optional leading \"*.\" wildcard"),
            (format!("  defaultBackend: {WEB}\n  tls: [{{secretName: Shop_TLS}}]\n"), "spec.tls[0].secretName: expected a DNS-1123 subdomain"),
        ];
        for (spec, want) in cases {
            assert_one(&ing(&spec), want);
        }
    }
}
