//! Containers of a pod (and its init containers): names, ports, environment and
//! probes (readiness, liveness, startup).

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, PodSpec, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::names::{dns1123_label, env_var_name, DNS1123_LABEL};
use super::net::check_ip;
use super::ports::{check_port, check_port_or_name, check_protocol, protocol_or_tcp};
use super::report::{quote, Report};

/// Every container with its path: `spec.containers[i]`, then `spec.initContainers[i]`.
fn all_containers(spec: &PodSpec) -> Vec<(String, &Container)> {
    let main = spec
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("spec.containers[{i}]"), c));
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| (format!("spec.initContainers[{i}]"), c));
    main.chain(init).collect()
}

pub fn check_containers(r: &mut Report, spec: &PodSpec) {
    let host_network = spec.host_network.unwrap_or(false);
    let mut names: HashMap<&str, String> = HashMap::new();
    let mut port_names: HashMap<&str, String> = HashMap::new();
    let mut host_ports: HashMap<(i32, &str, &str), String> = HashMap::new();
    for (at, c) in all_containers(spec) {
        if c.name.is_empty() {
            r.missing(
                format!("{at}.name"),
                format!("a container name: {DNS1123_LABEL}"),
            );
        } else if r.check(format!("{at}.name"), &c.name, dns1123_label(&c.name)) {
            if let Some(other) = names.get(c.name.as_str()) {
                r.push(
                    format!("{at}.name"),
                    format!("a container name unique in the pod ({other} has it already)"),
                    quote(&c.name),
                );
            } else {
                names.insert(&c.name, at.clone());
            }
        }
        for (j, p) in c.ports.iter().flatten().enumerate() {
            let pat = format!("{at}.ports[{j}]");
            check_port(r, format!("{pat}.containerPort"), p.container_port);
            check_protocol(r, format!("{pat}.protocol"), p.protocol.as_deref());
            let proto = protocol_or_tcp(p.protocol.as_deref());
            let mut host_port = p.host_port.unwrap_or(0);
            if host_port != 0 {
                if !(1..=65535).contains(&host_port) {
                    r.push(
                        format!("{pat}.hostPort"),
                        "a host port between 1 and 65535, or 0 for none",
                        host_port.to_string(),
                    );
                } else if host_network && host_port != p.container_port {
                    r.push(
                        format!("{pat}.hostPort"),
                        format!(
                            "a hostPort equal to containerPort ({}) with hostNetwork: true",
                            p.container_port
                        ),
                        host_port.to_string(),
                    );
                }
            } else if host_network {
                host_port = p.container_port;
            }
            let host_ip = p.host_ip.as_deref().unwrap_or("");
            if !host_ip.is_empty() {
                check_ip(r, format!("{pat}.hostIP"), host_ip);
            }
            if host_port != 0 {
                if let Some(other) = host_ports.get(&(host_port, proto, host_ip)) {
                    r.push(
                        format!("{pat}.hostPort"),
                        format!("a host port/protocol unique in the pod ({other} uses {host_port}/{proto} already)"),
                        host_port.to_string(),
                    );
                } else {
                    host_ports.insert((host_port, proto, host_ip), pat.clone());
                }
            }
            if let Some(n) = p.name.as_deref() {
                let field = format!("{pat}.name");
                if r.check(&field, n, super::ports::port_name(n)) {
                    if let Some(other) = port_names.get(n) {
                        r.push(
                            field,
                            format!("a port name unique in the pod ({other} has it already)"),
                            quote(n),
                        );
                    } else {
                        port_names.insert(n, pat.clone());
                    }
                }
            }
        }
        for (k, e) in c.env.iter().flatten().enumerate() {
            let eat = format!("{at}.env[{k}]");
            if e.name.is_empty() {
                r.missing(format!("{eat}.name"), "an environment variable name");
            } else {
                r.check(format!("{eat}.name"), &e.name, env_var_name(&e.name));
            }
            if e.value.as_deref().is_some_and(|v| !v.is_empty()) && e.value_from.is_some() {
                r.push(
                    format!("{eat}.valueFrom"),
                    "no valueFrom when value is set (one or the other)",
                    "both",
                );
            }
        }
        for (which, probe) in [
            ("readinessProbe", &c.readiness_probe),
            ("livenessProbe", &c.liveness_probe),
            ("startupProbe", &c.startup_probe),
        ] {
            if let Some(p) = probe {
                check_probe(r, &format!("{at}.{which}"), which, p, c, &at);
            }
        }
    }
}

fn check_probe(r: &mut Report, at: &str, which: &str, p: &Probe, c: &Container, cat: &str) {
    let handlers: Vec<&str> = [
        ("exec", p.exec.is_some()),
        ("httpGet", p.http_get.is_some()),
        ("tcpSocket", p.tcp_socket.is_some()),
        ("grpc", p.grpc.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(n, _)| *n)
    .collect();
    const ONE: &str = "exactly one handler: exec, httpGet or tcpSocket";
    match handlers.len() {
        0 => r.push(at, ONE, "none"),
        1 => {}
        _ => r.push(at, ONE, handlers.join(" and ")),
    }
    if let Some(exec) = &p.exec {
        if exec.command.as_ref().is_none_or(Vec::is_empty) {
            r.missing(
                format!("{at}.exec.command"),
                "a command to run (e.g. [\"cat\", \"/tmp/ready\"])",
            );
        }
    }
    if let Some(h) = &p.http_get {
        check_probe_port(r, &format!("{at}.httpGet.port"), &h.port, c, cat);
        if let Some(s) = h.scheme.as_deref() {
            r.check_enum(format!("{at}.httpGet.scheme"), s, &["HTTP", "HTTPS"]);
        }
    }
    if let Some(t) = &p.tcp_socket {
        check_probe_port(r, &format!("{at}.tcpSocket.port"), &t.port, c, cat);
    }
    if let Some(g) = &p.grpc {
        r.push(
            format!("{at}.grpc"),
            "an exec, httpGet or tcpSocket handler (podnet's node runtime does not run gRPC probes)",
            format!("a gRPC probe on port {}", g.port),
        );
    }
    for (field, v) in [
        ("initialDelaySeconds", p.initial_delay_seconds),
        ("timeoutSeconds", p.timeout_seconds),
        ("periodSeconds", p.period_seconds),
        ("successThreshold", p.success_threshold),
        ("failureThreshold", p.failure_threshold),
    ] {
        if let Some(n) = v.filter(|&n| n < 0) {
            r.push(
                format!("{at}.{field}"),
                "0 or more (0 means the default)",
                n.to_string(),
            );
        }
    }
    if which != "readinessProbe" {
        if let Some(s) = p.success_threshold.filter(|&s| s > 1) {
            r.push(
                format!("{at}.successThreshold"),
                format!("1 for a {which} (only readiness probes may ask for several successes)"),
                s.to_string(),
            );
        }
    }
    if let Some(t) = p.termination_grace_period_seconds {
        if which == "readinessProbe" {
            r.push(
                format!("{at}.terminationGracePeriodSeconds"),
                "nothing for a readinessProbe",
                t.to_string(),
            );
        } else if t < 1 {
            r.push(
                format!("{at}.terminationGracePeriodSeconds"),
                "a number of seconds, 1 or more",
                t.to_string(),
            );
        }
    }
}

/// A probe's port: a number, or the name of one of the container's own ports.
fn check_probe_port(r: &mut Report, field: &str, port: &IntOrString, c: &Container, cat: &str) {
    if !check_port_or_name(r, field, port) {
        return;
    }
    let IntOrString::String(name) = port else {
        return;
    };
    let known: Vec<&str> = c
        .ports
        .iter()
        .flatten()
        .filter_map(|p| p.name.as_deref())
        .collect();
    if !known.contains(&name.as_str()) {
        let expected = if known.is_empty() {
            format!("a port number, or the name of a port in {cat}.ports (it names none)")
        } else {
            format!(
                "a port number, or the name of a port in {cat}.ports ({})",
                known.join(", ")
            )
        };
        r.push(field, expected, quote(name));
    }
}

#[cfg(test)]
mod tests {
    use crate::validate::testing::{assert_one, assert_valid, errors};

    fn pod(containers: &str) -> String {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: web-0}}\nspec:\n{containers}")
    }

    #[test]
    fn good_containers() {
        for spec in [
            "  containers: [{name: app, ports: [{containerPort: 8080, name: http}, {containerPort: 53, protocol: UDP, hostPort: 53}]}]\n",
            "  initContainers: [{name: init}]\n  containers: [{name: app}, {name: side}]\n",
            "  containers:\n  - name: app\n    ports: [{containerPort: 8080, name: http}]\n    readinessProbe: {httpGet: {path: /healthz, port: http, scheme: HTTP}, periodSeconds: 1}\n    livenessProbe: {tcpSocket: {port: 8080}, successThreshold: 1}\n    startupProbe: {exec: {command: [cat, /tmp/ready]}, failureThreshold: 30}\n",
            "  containers: [{name: app, env: [{name: LOG_LEVEL, value: debug}, {name: my.var-1}]}]\n",
            "  hostNetwork: true\n  containers: [{name: app, ports: [{containerPort: 9100, hostPort: 9100}, {containerPort: 9101}]}]\n",
        ] {
            assert_valid(&pod(spec));
        }
    }

    #[test]
    fn bad_containers() {
        let cases = [
            ("  containers: [{name: App}]\n", "spec.containers[0].name: expected a DNS-1123 label"),
            ("  containers: [{name: ''}]\n", "spec.containers[0].name: expected a container name: a DNS-1123 label"),
            ("  containers: [{name: app}]\n  initContainers: [{name: app}]\n", "spec.initContainers[0].name: expected a container name unique in the pod (spec.containers[0] has it already), found \"app\""),
            ("  containers: [{name: app, ports: [{containerPort: 0}]}]\n", "spec.containers[0].ports[0].containerPort: expected a port number between 1 and 65535, found 0"),
            ("  containers: [{name: app, ports: [{containerPort: 80, hostPort: 70000}]}]\n", "spec.containers[0].ports[0].hostPort: expected a host port between 1 and 65535, or 0 for none, found 70000"),
            ("  containers: [{name: app, ports: [{containerPort: 80, protocol: HTTP}]}]\n", "spec.containers[0].ports[0].protocol: expected one of TCP|UDP|SCTP, found \"HTTP\""),
            ("  containers: [{name: app, ports: [{containerPort: 80, name: http_web}]}]\n", "spec.containers[0].ports[0].name: expected a port name (IANA_SVC_NAME)"),
            ("  containers: [{name: app, ports: [{containerPort: 80, name: web}]}, {name: b, ports: [{containerPort: 81, name: web}]}]\n", "spec.containers[1].ports[0].name: expected a port name unique in the pod (spec.containers[0].ports[0] has it already), found \"web\""),
            ("  containers: [{name: app, ports: [{containerPort: 80, hostPort: 8080}]}, {name: b, ports: [{containerPort: 81, hostPort: 8080}]}]\n", "spec.containers[1].ports[0].hostPort: expected a host port/protocol unique in the pod (spec.containers[0].ports[0] uses 8080/TCP already), found 8080"),
            ("  hostNetwork: true\n  containers: [{name: app, ports: [{containerPort: 80, hostPort: 8080}]}]\n", "spec.containers[0].ports[0].hostPort: expected a hostPort equal to containerPort (80) with hostNetwork: true, found 8080"),
            ("  containers: [{name: app, ports: [{containerPort: 80, hostIP: 0.0.0.00}]}]\n", "spec.containers[0].ports[0].hostIP: expected an IP address"),
            ("  containers: [{name: app, env: [{name: 1VAR, value: x}]}]\n", "spec.containers[0].env[0].name: expected an environment variable name"),
            ("  containers: [{name: app, env: [{name: A, value: x, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]}]\n", "spec.containers[0].env[0].valueFrom: expected no valueFrom when value is set (one or the other), found both"),
            ("  containers: [{name: app, readinessProbe: {periodSeconds: 5}}]\n", "spec.containers[0].readinessProbe: expected exactly one handler: exec, httpGet or tcpSocket, found none"),
            ("  containers: [{name: app, readinessProbe: {exec: {command: [ls]}, tcpSocket: {port: 80}}}]\n", "spec.containers[0].readinessProbe: expected exactly one handler: exec, httpGet or tcpSocket, found exec and tcpSocket"),
            ("  containers: [{name: app, livenessProbe: {exec: {}}}]\n", "spec.containers[0].livenessProbe.exec.command: expected a command to run"),
            ("  containers: [{name: app, readinessProbe: {tcpSocket: {port: 0}}}]\n", "spec.containers[0].readinessProbe.tcpSocket.port: expected a port number between 1 and 65535 or a port name, found 0"),
            ("  containers: [{name: app, ports: [{containerPort: 80, name: http}], readinessProbe: {httpGet: {port: web}}}]\n", "spec.containers[0].readinessProbe.httpGet.port: expected a port number, or the name of a port in spec.containers[0].ports (http), found \"web\""),
            ("  containers: [{name: app, readinessProbe: {httpGet: {port: web}}}]\n", "spec.containers[0].readinessProbe.httpGet.port: expected a port number, or the name of a port in spec.containers[0].ports (it names none), found \"web\""),
            ("  containers: [{name: app, readinessProbe: {httpGet: {port: 80, scheme: http}}}]\n", "spec.containers[0].readinessProbe.httpGet.scheme: expected one of HTTP|HTTPS, found \"http\""),
            ("  containers: [{name: app, readinessProbe: {grpc: {port: 9090}}}]\n", "spec.containers[0].readinessProbe.grpc: expected an exec, httpGet or tcpSocket handler (podnet's node runtime does not run gRPC probes), found a gRPC probe on port 9090"),
            ("  containers: [{name: app, readinessProbe: {tcpSocket: {port: 80}, periodSeconds: -1}}]\n", "spec.containers[0].readinessProbe.periodSeconds: expected 0 or more (0 means the default), found -1"),
            ("  containers: [{name: app, livenessProbe: {tcpSocket: {port: 80}, successThreshold: 3}}]\n", "spec.containers[0].livenessProbe.successThreshold: expected 1 for a livenessProbe"),
            ("  containers: [{name: app, readinessProbe: {tcpSocket: {port: 80}, terminationGracePeriodSeconds: 5}}]\n", "spec.containers[0].readinessProbe.terminationGracePeriodSeconds: expected nothing for a readinessProbe, found 5"),
        ];
        for (spec, want) in cases {
            assert_one(&pod(spec), want);
        }
    }

    #[test]
    fn all_problems_of_all_containers() {
        let errs = errors(&pod(
            "  containers: [{name: A, ports: [{containerPort: 0}]}, {name: b, readinessProbe: {}}]\n  initContainers: [{name: b}]\n",
        ));
        assert_eq!(errs.len(), 4, "{errs:#?}");
    }
}
