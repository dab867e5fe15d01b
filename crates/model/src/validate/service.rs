//! Service: type, ports (names, numbers, target ports, node ports), selector,
//! ExternalName, session affinity and traffic policies. The addresses (clusterIP,
//! IP families, external and load-balancer addresses) are in `service_ips.rs`.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Service, ServiceSpec};

use super::names::{check_labels, dns1123_label, dns1123_subdomain, qualified_name};
use super::ports::{check_port, check_port_or_name, check_protocol, protocol_or_tcp};
use super::report::{quote, show, Report};
use crate::config::ClusterConfigSpec;

const TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SvcType {
    ClusterIp,
    NodePort,
    LoadBalancer,
    ExternalName,
}

impl SvcType {
    pub fn name(self) -> &'static str {
        match self {
            SvcType::ClusterIp => "ClusterIP",
            SvcType::NodePort => "NodePort",
            SvcType::LoadBalancer => "LoadBalancer",
            SvcType::ExternalName => "ExternalName",
        }
    }

    /// NodePort and LoadBalancer services open a port on every node.
    pub fn has_node_ports(self) -> bool {
        matches!(self, SvcType::NodePort | SvcType::LoadBalancer)
    }
}

/// The service's type (absent is ClusterIP); None when not a known type.
pub fn service_type(spec: &ServiceSpec) -> Option<SvcType> {
    match spec.type_.as_deref() {
        None | Some("ClusterIP") => Some(SvcType::ClusterIp),
        Some("NodePort") => Some(SvcType::NodePort),
        Some("LoadBalancer") => Some(SvcType::LoadBalancer),
        Some("ExternalName") => Some(SvcType::ExternalName),
        Some(_) => None,
    }
}

/// The spec, or an empty one (every field defaulted) when absent.
pub fn spec_of(svc: &Service) -> std::borrow::Cow<'_, ServiceSpec> {
    match &svc.spec {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(ServiceSpec::default()),
    }
}

pub fn check(r: &mut Report, svc: &Service, cfg: &ClusterConfigSpec) {
    let spec = spec_of(svc);
    if let Some(t) = spec.type_.as_deref() {
        r.check_enum("spec.type", t, TYPES);
    }
    let ty = service_type(&spec);
    check_ports(r, &spec, ty, cfg);
    if let Some(sel) = &spec.selector {
        check_labels(r, "spec.selector", sel);
        if ty == Some(SvcType::ExternalName) && !sel.is_empty() {
            r.push(
                "spec.selector",
                "no selector for type ExternalName (it is an alias for a DNS name, not a front for pods)",
                show(sel),
            );
        }
    }
    if ty == Some(SvcType::ExternalName) {
        match spec.external_name.as_deref() {
            None | Some("") => r.missing(
                "spec.externalName",
                "a DNS name for type ExternalName (e.g. \"db.example.com\")",
            ),
            Some(n) => {
                let trimmed = n.strip_suffix('.').unwrap_or(n);
                r.check("spec.externalName", n, dns1123_subdomain(trimmed));
            }
        }
    }
    check_affinity(r, &spec);
    check_traffic(r, &spec, ty, cfg);
}

fn check_ports(r: &mut Report, spec: &ServiceSpec, ty: Option<SvcType>, cfg: &ClusterConfigSpec) {
    let ports = spec.ports.as_deref().unwrap_or_default();
    let headless = spec.cluster_ip.as_deref() == Some("None");
    if ports.is_empty() && ty != Some(SvcType::ExternalName) && !headless {
        r.missing(
            "spec.ports",
            "at least one port (only ExternalName and headless services, clusterIP: None, may have none)",
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut pairs: HashMap<(i32, &str), usize> = HashMap::new();
    let mut node_ports: HashMap<(i32, &str), usize> = HashMap::new();
    for (i, p) in ports.iter().enumerate() {
        let at = format!("spec.ports[{i}]");
        match p.name.as_deref() {
            None | Some("") if ports.len() > 1 => r.missing(
                format!("{at}.name"),
                "a port name (required when a service has more than one port)",
            ),
            None | Some("") => {}
            Some(n) => {
                r.check(format!("{at}.name"), n, dns1123_label(n));
                if let Some(&j) = names.get(n) {
                    r.push(
                        format!("{at}.name"),
                        format!("a name unique among the ports (spec.ports[{j}] has it already)"),
                        quote(n),
                    );
                } else {
                    names.insert(n, i);
                }
            }
        }
        check_port(r, format!("{at}.port"), p.port);
        check_protocol(r, format!("{at}.protocol"), p.protocol.as_deref());
        let proto = protocol_or_tcp(p.protocol.as_deref());
        if let Some(&j) = pairs.get(&(p.port, proto)) {
            r.push(
                &at,
                format!("a port/protocol pair unique among the ports (spec.ports[{j}] is {}/{proto} already)", p.port),
                format!("{}/{proto}", p.port),
            );
        } else {
            pairs.insert((p.port, proto), i);
        }
        if let Some(tp) = &p.target_port {
            check_port_or_name(r, format!("{at}.targetPort"), tp);
        }
        if let Some(ap) = p.app_protocol.as_deref() {
            r.check(
                format!("{at}.appProtocol"),
                ap,
                qualified_name(ap, "application protocol"),
            );
        }
        let Some(np) = p.node_port.filter(|&n| n != 0) else {
            continue;
        };
        let field = format!("{at}.nodePort");
        match ty {
            Some(t) if t.has_node_ports() => {
                check_node_port(r, &field, np, cfg);
                if let Some(&j) = node_ports.get(&(np, proto)) {
                    r.push(
                        field,
                        format!("a nodePort unique among the ports (spec.ports[{j}] uses it for {proto} already)"),
                        np.to_string(),
                    );
                } else {
                    node_ports.insert((np, proto), i);
                }
            }
            Some(t) => r.push(
                field,
                format!("no nodePort for type {} (only NodePort and LoadBalancer services have node ports)", t.name()),
                np.to_string(),
            ),
            None => {}
        }
    }
}

/// A node port inside the configured range (or a valid port if the range is broken).
pub fn check_node_port(r: &mut Report, field: &str, port: i32, cfg: &ClusterConfigSpec) {
    match cfg.node_ports() {
        Some((a, b)) if port < i32::from(a) || port > i32::from(b) => r.push(
            field,
            format!("a port in the node port range {a}-{b}"),
            port.to_string(),
        ),
        Some(_) => {}
        None => {
            check_port(r, field, port);
        }
    }
}

fn check_affinity(r: &mut Report, spec: &ServiceSpec) {
    let affinity = spec.session_affinity.as_deref().unwrap_or("None");
    r.check_enum("spec.sessionAffinity", affinity, &["None", "ClientIP"]);
    let Some(conf) = &spec.session_affinity_config else {
        return;
    };
    if affinity != "ClientIP" {
        r.push(
            "spec.sessionAffinityConfig",
            "no sessionAffinityConfig unless sessionAffinity is ClientIP",
            format!(
                "sessionAffinityConfig with sessionAffinity {}",
                quote(affinity)
            ),
        );
        return;
    }
    if let Some(t) = conf.client_ip.as_ref().and_then(|c| c.timeout_seconds) {
        r.check_range(
            "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
            "a timeout in seconds",
            t,
            1,
            86400,
        );
    }
}

fn check_traffic(r: &mut Report, spec: &ServiceSpec, ty: Option<SvcType>, cfg: &ClusterConfigSpec) {
    let etp = spec.external_traffic_policy.as_deref();
    if let Some(p) = etp {
        let has_external_ips = spec.external_ips.as_ref().is_some_and(|v| !v.is_empty());
        if r.check_enum("spec.externalTrafficPolicy", p, &["Cluster", "Local"]) {
            match ty {
                Some(t) if !(t.has_node_ports() || t == SvcType::ClusterIp && has_external_ips) => r.push(
                    "spec.externalTrafficPolicy",
                    format!("no externalTrafficPolicy for type {} (it applies to NodePort and LoadBalancer services, and to externalIPs)", t.name()),
                    quote(p),
                ),
                _ => {}
            }
        }
    }
    if let Some(p) = spec.internal_traffic_policy.as_deref() {
        r.check_enum("spec.internalTrafficPolicy", p, &["Cluster", "Local"]);
    }
    if let Some(p) = spec.traffic_distribution.as_deref() {
        r.check_enum(
            "spec.trafficDistribution",
            p,
            &["PreferClose", "PreferSameZone", "PreferSameNode"],
        );
    }
    if let Some(h) = spec.health_check_node_port.filter(|&h| h != 0) {
        let field = "spec.healthCheckNodePort";
        if ty != Some(SvcType::LoadBalancer) || etp != Some("Local") {
            r.push(
                field,
                "no healthCheckNodePort unless type is LoadBalancer and externalTrafficPolicy is Local",
                h.to_string(),
            );
        } else {
            check_node_port(r, field, h, cfg);
            for (i, p) in spec.ports.iter().flatten().enumerate() {
                if p.node_port == Some(h) {
                    r.push(
                        field,
                        format!("a port other than the nodePort of spec.ports[{i}]"),
                        h.to_string(),
                    );
                }
            }
        }
    }
    if spec.allocate_load_balancer_node_ports.is_some() {
        if let Some(t) = ty.filter(|&t| t != SvcType::LoadBalancer) {
            r.push(
                "spec.allocateLoadBalancerNodePorts",
                format!("no allocateLoadBalancerNodePorts for type {} (it applies to LoadBalancer services)", t.name()),
                show(&spec.allocate_load_balancer_node_ports.unwrap_or_default()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::validate::testing::{assert_one, assert_valid, errors};

    fn svc(spec: &str) -> String {
        format!("apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: shop}}\nspec:\n{spec}")
    }

    #[test]
    fn good_services() {
        for spec in [
            "  ports: [{port: 80}]\n",
            "  selector: {app: web}\n  ports: [{name: http, port: 80, targetPort: http}, {name: dns, port: 53, protocol: UDP, targetPort: 5353}]\n",
            "  ports: [{name: dns, port: 53}, {name: dns-udp, port: 53, protocol: UDP}]\n",
            "  type: NodePort\n  ports: [{name: a, port: 80, nodePort: 30080}, {name: b, port: 81, nodePort: 30080, protocol: UDP}]\n",
            "  type: LoadBalancer\n  externalTrafficPolicy: Local\n  healthCheckNodePort: 32000\n  ports: [{port: 80}]\n  allocateLoadBalancerNodePorts: false\n",
            "  clusterIP: None\n  selector: {app: db}\n",
            "  type: ExternalName\n  externalName: db.example.com.\n",
            "  type: ExternalName\n  externalName: db.example.com\n  ports: [{port: 5432}]\n",
            "  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 86400}}\n  ports: [{port: 80}]\n",
            "  externalIPs: [192.0.2.10]\n  externalTrafficPolicy: Local\n  ports: [{port: 80}]\n",
            "  internalTrafficPolicy: Local\n  trafficDistribution: PreferClose\n  ports: [{port: 80, appProtocol: kubernetes.io/h2c}]\n",
        ] {
            assert_valid(&svc(spec));
        }
    }

    #[test]
    fn bad_services() {
        let cases = [
            ("  type: Nodeport\n  ports: [{port: 80}]\n", "spec.type: expected one of ClusterIP|NodePort|LoadBalancer|ExternalName, found \"Nodeport\""),
            ("  selector: {app: web}\n", "spec.ports: expected at least one port (only ExternalName and headless services, clusterIP: None, may have none), found nothing"),
            ("  ports: [{name: a, port: 80}, {port: 81}]\n", "spec.ports[1].name: expected a port name (required when a service has more than one port), found nothing"),
            ("  ports: [{name: http, port: 80}, {name: http, port: 81}]\n", "spec.ports[1].name: expected a name unique among the ports (spec.ports[0] has it already), found \"http\""),
            ("  ports: [{name: Http, port: 80}]\n", "spec.ports[0].name: expected a DNS-1123 label"),
            ("  ports: [{name: a, port: 80}, {name: b, port: 80, protocol: TCP}]\n", "spec.ports[1]: expected a port/protocol pair unique among the ports (spec.ports[0] is 80/TCP already), found 80/TCP"),
            ("  ports: [{port: 0}]\n", "spec.ports[0].port: expected a port number between 1 and 65535, found 0"),
            ("  ports: [{port: 80, protocol: tcp}]\n", "spec.ports[0].protocol: expected one of TCP|UDP|SCTP, found \"tcp\""),
            ("  ports: [{port: 80, targetPort: 70000}]\n", "spec.ports[0].targetPort: expected a port number between 1 and 65535 or a port name, found 70000"),
            ("  ports: [{port: 80, targetPort: Web_1}]\n", "spec.ports[0].targetPort: expected a port name (IANA_SVC_NAME)"),
            ("  ports: [{port: 80, nodePort: 30080}]\n", "spec.ports[0].nodePort: expected no nodePort for type ClusterIP (only NodePort and LoadBalancer services have node ports), found 30080"),
            ("  type: NodePort\n  ports: [{port: 80, nodePort: 8080}]\n", "spec.ports[0].nodePort: expected a port in the node port range 30000-32767, found 8080"),
            ("  type: NodePort\n  ports: [{name: a, port: 80, nodePort: 30080}, {name: b, port: 81, nodePort: 30080}]\n", "spec.ports[1].nodePort: expected a nodePort unique among the ports (spec.ports[0] uses it for TCP already), found 30080"),
            ("  type: ExternalName\n", "spec.externalName: expected a DNS name for type ExternalName (e.g. \"db.example.com\"), found nothing"),
            ("  type: ExternalName\n  externalName: DB.example.com\n", "spec.externalName: expected a DNS-1123 subdomain"),
            ("  type: ExternalName\n  externalName: db.example.com\n  selector: {app: db}\n", "spec.selector: expected no selector for type ExternalName (it is an alias for a DNS name, not a front for pods), found {\"app\": \"db\"}"),
            ("  selector: {app: 'a b'}\n  ports: [{port: 80}]\n", "spec.selector[\"app\"]: expected a label value"),
            ("  sessionAffinity: Sticky\n  ports: [{port: 80}]\n", "spec.sessionAffinity: expected one of None|ClientIP, found \"Sticky\""),
            ("  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}\n  ports: [{port: 80}]\n", "spec.sessionAffinityConfig.clientIP.timeoutSeconds: expected a timeout in seconds between 1 and 86400, found 0"),
            ("  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n  ports: [{port: 80}]\n", "spec.sessionAffinityConfig: expected no sessionAffinityConfig unless sessionAffinity is ClientIP, found sessionAffinityConfig with sessionAffinity \"None\""),
            ("  externalTrafficPolicy: Local\n  ports: [{port: 80}]\n", "spec.externalTrafficPolicy: expected no externalTrafficPolicy for type ClusterIP"),
            ("  type: NodePort\n  externalTrafficPolicy: local\n  ports: [{port: 80}]\n", "spec.externalTrafficPolicy: expected one of Cluster|Local, found \"local\""),
            ("  internalTrafficPolicy: Node\n  ports: [{port: 80}]\n", "spec.internalTrafficPolicy: expected one of Cluster|Local, found \"Node\""),
            ("  type: NodePort\n  healthCheckNodePort: 32000\n  ports: [{port: 80}]\n", "spec.healthCheckNodePort: expected no healthCheckNodePort unless type is LoadBalancer and externalTrafficPolicy is Local, found 32000"),
            ("  type: LoadBalancer\n  externalTrafficPolicy: Local\n  healthCheckNodePort: 30080\n  ports: [{port: 80, nodePort: 30080}]\n", "spec.healthCheckNodePort: expected a port other than the nodePort of spec.ports[0], found 30080"),
            ("  allocateLoadBalancerNodePorts: true\n  ports: [{port: 80}]\n", "spec.allocateLoadBalancerNodePorts: expected no allocateLoadBalancerNodePorts for type ClusterIP"),
        ];
        for (spec, want) in cases {
            assert_one(&svc(spec), want);
        }
    }

    #[test]
    fn every_problem_is_reported() {
        let errs = errors(&svc(
            "  type: NodePort\n  ports: [{port: 0, targetPort: -1, nodePort: 1}, {port: 80, protocol: HTTP}]\n",
        ));
        assert_eq!(errs.len(), 6, "{errs:#?}");
    }
}
