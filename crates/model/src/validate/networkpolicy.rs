//! NetworkPolicy (networking.k8s.io/v1): the pod selector, policy types, and each
//! rule's peers (podSelector and/or namespaceSelector, or an ipBlock alone) and ports.

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::net::{check_cidr, family};
use super::ports::{check_port, check_port_or_name, check_protocol};
use super::report::{quote, show, Report};
use super::selectors::check_selector;

pub fn check(r: &mut Report, np: &NetworkPolicy) {
    let Some(spec) = &np.spec else {
        r.missing(
            "spec",
            "a policy spec with at least a podSelector ({} selects every pod in the namespace)",
        );
        return;
    };
    match &spec.pod_selector {
        Some(sel) => check_selector(r, "spec.podSelector", sel),
        None => r.missing(
            "spec.podSelector",
            "a pod selector ({} selects every pod in the namespace)",
        ),
    }
    let types: &[String] = spec.policy_types.as_deref().unwrap_or_default();
    for (i, t) in types.iter().enumerate() {
        let field = format!("spec.policyTypes[{i}]");
        if r.check_enum(&field, t, &["Ingress", "Egress"]) && types[..i].contains(t) {
            r.push(field, "a policy type not listed before", quote(t));
        }
    }
    if types.len() > 2 {
        r.push(
            "spec.policyTypes",
            "at most two policy types (Ingress and Egress)",
            show(types),
        );
    }
    for (i, rule) in spec.ingress.iter().flatten().enumerate() {
        let at = format!("spec.ingress[{i}]");
        for (j, peer) in rule.from.iter().flatten().enumerate() {
            check_peer(r, &format!("{at}.from[{j}]"), peer);
        }
        for (j, port) in rule.ports.iter().flatten().enumerate() {
            check_np_port(r, &format!("{at}.ports[{j}]"), port);
        }
    }
    for (i, rule) in spec.egress.iter().flatten().enumerate() {
        let at = format!("spec.egress[{i}]");
        for (j, peer) in rule.to.iter().flatten().enumerate() {
            check_peer(r, &format!("{at}.to[{j}]"), peer);
        }
        for (j, port) in rule.ports.iter().flatten().enumerate() {
            check_np_port(r, &format!("{at}.ports[{j}]"), port);
        }
    }
}

fn check_peer(r: &mut Report, at: &str, peer: &NetworkPolicyPeer) {
    if let Some(sel) = &peer.pod_selector {
        check_selector(r, &format!("{at}.podSelector"), sel);
    }
    if let Some(sel) = &peer.namespace_selector {
        check_selector(r, &format!("{at}.namespaceSelector"), sel);
    }
    let selectors: Vec<&str> = [
        ("podSelector", peer.pod_selector.is_some()),
        ("namespaceSelector", peer.namespace_selector.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(n, _)| *n)
    .collect();
    match &peer.ip_block {
        Some(block) => {
            check_ip_block(r, &format!("{at}.ipBlock"), block);
            if !selectors.is_empty() {
                r.push(
                    at,
                    "either an ipBlock or selectors (podSelector and/or namespaceSelector), not both",
                    format!("ipBlock and {}", selectors.join(" and ")),
                );
            }
        }
        None if selectors.is_empty() => r.missing(
            at,
            "a peer: podSelector and/or namespaceSelector, or ipBlock",
        ),
        None => {}
    }
}

fn check_ip_block(r: &mut Report, at: &str, block: &IPBlock) {
    if block.cidr.is_empty() {
        r.missing(format!("{at}.cidr"), "a CIDR (e.g. 10.0.0.0/8)");
        return;
    }
    let outer = check_cidr(r, format!("{at}.cidr"), &block.cidr);
    for (i, e) in block.except.iter().flatten().enumerate() {
        let field = format!("{at}.except[{i}]");
        let (Some(inner), Some(outer)) = (check_cidr(r, &field, e), outer) else {
            continue;
        };
        if inner.addr().is_ipv4() != outer.addr().is_ipv4() {
            r.push(
                field,
                format!(
                    "an {} CIDR strictly inside cidr {outer}",
                    family(outer.addr())
                ),
                quote(e),
            );
        } else if !outer.contains(&inner) || inner.prefix_len() <= outer.prefix_len() {
            r.push(
                field,
                format!("a CIDR strictly inside cidr {outer}"),
                quote(e),
            );
        }
    }
}

fn check_np_port(r: &mut Report, at: &str, p: &NetworkPolicyPort) {
    check_protocol(r, format!("{at}.protocol"), p.protocol.as_deref());
    match (&p.port, p.end_port) {
        (None, Some(end)) => r.push(
            format!("{at}.endPort"),
            "no endPort without a numeric port (the start of the range)",
            end.to_string(),
        ),
        (Some(port @ IntOrString::String(_)), Some(end)) => {
            check_port_or_name(r, format!("{at}.port"), port);
            r.push(
                format!("{at}.endPort"),
                "no endPort with a named port (ranges need a numeric port)",
                end.to_string(),
            );
        }
        (Some(port), end) => {
            let ok = check_port_or_name(r, format!("{at}.port"), port);
            if let (IntOrString::Int(start), Some(end)) = (port, end) {
                if check_port(r, format!("{at}.endPort"), end) && ok && end < *start {
                    r.push(
                        format!("{at}.endPort"),
                        format!("an endPort at or above port ({start})"),
                        end.to_string(),
                    );
                }
            }
        }
        (None, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::validate::testing::{assert_one, assert_valid};

    fn np(spec: &str) -> String {
        format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: allow-web, namespace: shop}}\nspec:\n{spec}")
    }

    #[test]
    fn good_policies() {
        for spec in [
            "  podSelector: {}\n",
            "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n",
            "  podSelector: {matchLabels: {app: web}}\n  ingress:\n  - from:\n    - podSelector: {matchLabels: {role: frontend}}\n      namespaceSelector: {matchLabels: {team: shop}}\n    - ipBlock: {cidr: 172.17.0.0/16, except: [172.17.1.0/24]}\n    ports: [{protocol: TCP, port: 6379}, {port: http}, {port: 32000, endPort: 32768}]\n",
            "  podSelector: {matchExpressions: [{key: app, operator: Exists}]}\n  egress:\n  - to: [{namespaceSelector: {}}]\n  - ports: [{protocol: UDP, port: 53}]\n",
            "  podSelector: {}\n  ingress: [{}]\n",
            "  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 'fd00::/8', except: ['fd00:1::/32']}}]}]\n",
        ] {
            assert_valid(&np(spec));
        }
    }

    #[test]
    fn bad_policies() {
        let cases = [
            ("  policyTypes: [Ingress]\n", "spec.podSelector: expected a pod selector ({} selects every pod in the namespace), found nothing"),
            ("  podSelector: {matchExpressions: [{key: app, operator: Equals, values: [web]}]}\n", "spec.podSelector.matchExpressions[0].operator: expected one of In|NotIn|Exists|DoesNotExist, found \"Equals\""),
            ("  podSelector: {}\n  policyTypes: [ingress]\n", "spec.policyTypes[0]: expected one of Ingress|Egress, found \"ingress\""),
            ("  podSelector: {}\n  policyTypes: [Ingress, Ingress]\n", "spec.policyTypes[1]: expected a policy type not listed before, found \"Ingress\""),
            ("  podSelector: {}\n  ingress: [{from: [{}]}]\n", "spec.ingress[0].from[0]: expected a peer: podSelector and/or namespaceSelector, or ipBlock, found nothing"),
            ("  podSelector: {}\n  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]\n", "spec.egress[0].to[0]: expected either an ipBlock or selectors (podSelector and/or namespaceSelector), not both, found ipBlock and podSelector"),
            ("  podSelector: {}\n  egress: [{to: [{ipBlock: {cidr: 10.0.0.1/8}}]}]\n", "spec.egress[0].to[0].ipBlock.cidr: expected a CIDR whose address is its network address (10.0.0.0/8), found \"10.0.0.1/8\""),
            ("  podSelector: {}\n  egress: [{to: [{ipBlock: {cidr: ''}}]}]\n", "spec.egress[0].to[0].ipBlock.cidr: expected a CIDR (e.g. 10.0.0.0/8), found nothing"),
            ("  podSelector: {}\n  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}}]}]\n", "spec.egress[0].to[0].ipBlock.except[0]: expected a CIDR strictly inside cidr 10.0.0.0/8, found \"192.168.0.0/16\""),
            ("  podSelector: {}\n  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}}]}]\n", "spec.egress[0].to[0].ipBlock.except[0]: expected a CIDR strictly inside cidr 10.0.0.0/8, found \"10.0.0.0/8\""),
            ("  podSelector: {}\n  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: ['fd00::/64']}}]}]\n", "spec.egress[0].to[0].ipBlock.except[0]: expected an IPv4 CIDR strictly inside cidr 10.0.0.0/8, found \"fd00::/64\""),
            ("  podSelector: {}\n  ingress: [{ports: [{protocol: ICMP}]}]\n", "spec.ingress[0].ports[0].protocol: expected one of TCP|UDP|SCTP, found \"ICMP\""),
            ("  podSelector: {}\n  ingress: [{ports: [{port: 0}]}]\n", "spec.ingress[0].ports[0].port: expected a port number between 1 and 65535 or a port name, found 0"),
            ("  podSelector: {}\n  ingress: [{ports: [{port: HTTP}]}]\n", "spec.ingress[0].ports[0].port: expected a port name (IANA_SVC_NAME)"),
            ("  podSelector: {}\n  ingress: [{ports: [{port: http, endPort: 90}]}]\n", "spec.ingress[0].ports[0].endPort: expected no endPort with a named port (ranges need a numeric port), found 90"),
            ("  podSelector: {}\n  ingress: [{ports: [{endPort: 90}]}]\n", "spec.ingress[0].ports[0].endPort: expected no endPort without a numeric port (the start of the range), found 90"),
            ("  podSelector: {}\n  ingress: [{ports: [{port: 100, endPort: 90}]}]\n", "spec.ingress[0].ports[0].endPort: expected an endPort at or above port (100), found 90"),
            ("  podSelector: {}\n  ingress: [{ports: [{port: 100, endPort: 65536}]}]\n", "spec.ingress[0].ports[0].endPort: expected a port number between 1 and 65535, found 65536"),
        ];
        for (spec, want) in cases {
            assert_one(&np(spec), want);
        }
        assert_one(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\n",
            "spec: expected a policy spec with at least a podSelector ({} selects every pod in the namespace), found nothing",
        );
    }
}
