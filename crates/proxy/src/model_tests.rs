use super::*;
use serde_json::json;

fn svc(v: serde_json::Value) -> Service {
    serde_json::from_value(v).unwrap()
}

fn slice(svc: &str, eps: serde_json::Value, ports: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": format!("{svc}-abc"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4", "endpoints": eps, "ports": ports
    }))
    .unwrap()
}

fn ep(ip: &str, node: &str, ready: bool) -> serde_json::Value {
    json!({"addresses": [ip], "nodeName": node, "conditions": {"ready": ready, "serving": ready, "terminating": false}})
}

const NODE_IPS: &[Ipv4Addr] = &[Ipv4Addr::new(172, 18, 0, 2)];

fn model(services: &[Service], slices: &[EndpointSlice]) -> ProxyModel {
    build(ProxyInput {
        services,
        slices,
        node: "a",
        node_ips: NODE_IPS,
    })
}

fn key(ip: &str, protocol: Protocol, port: u16) -> FrontendKey {
    FrontendKey {
        ip: ip.parse().unwrap(),
        protocol,
        port,
    }
}

fn backends(m: &ProxyModel, a: Action) -> Vec<String> {
    match a {
        Action::Balance(id) => m.sets[&id]
            .backends
            .iter()
            .map(|b| format!("{}:{}", b.ip, b.port))
            .collect(),
        other => vec![format!("{other:?}")],
    }
}

fn web(extra_spec: serde_json::Value) -> Service {
    let mut spec = json!({"clusterIP": "10.96.0.20", "selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": "http"},
                  {"name": "dns", "port": 53, "protocol": "UDP"}]});
    for (k, v) in extra_spec.as_object().unwrap() {
        spec[k] = v.clone();
    }
    svc(json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec}))
}

fn web_slice() -> EndpointSlice {
    slice(
        "web",
        json!([ep("10.244.1.5", "a", true), ep("10.244.2.5", "b", true)]),
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "dns", "port": 5353, "protocol": "UDP"}]),
    )
}

#[test]
fn cluster_ip_ports_balance_over_ready_endpoints_with_resolved_target_ports() {
    let m = model(&[web(json!({}))], &[web_slice()]);
    let http = &m.frontends[&key("10.96.0.20", Protocol::Tcp, 80)];
    assert_eq!(http.kind, FrontendKind::ClusterIp);
    assert_eq!(http.masquerade, Masquerade::OffCluster);
    assert_eq!(
        backends(&m, http.action),
        ["10.244.1.5:8080", "10.244.2.5:8080"]
    );
    let dns = &m.frontends[&key("10.96.0.20", Protocol::Udp, 53)];
    assert_eq!(
        backends(&m, dns.action),
        ["10.244.1.5:5353", "10.244.2.5:5353"]
    );
    assert_eq!(m.frontends.len(), 2);
    assert!(m.cluster_ips.contains(&"10.96.0.20".parse().unwrap()));
    assert_eq!(
        m.local_endpoint_ips
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>(),
        ["10.244.1.5"]
    );
}

#[test]
fn no_endpoints_rejects_and_headless_external_name_and_refused_get_nothing() {
    let headless = svc(json!({"metadata": {"name": "h", "namespace": "default"},
        "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}));
    let ext = svc(json!({"metadata": {"name": "e", "namespace": "default"},
        "spec": {"type": "ExternalName", "externalName": "example.org"}}));
    let refused = svc(json!({"metadata": {"name": "r", "namespace": "default"},
        "spec": {"clusterIP": "10.96.0.30", "ports": [{"port": 80}]},
        "status": {"conditions": [{"type": CLUSTER_IP_ALLOCATED, "status": "False",
            "reason": "InUse", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}));
    let m = model(&[web(json!({})), headless, ext, refused], &[]);
    assert_eq!(m.frontends.len(), 2);
    assert!(m.frontends.values().all(|f| f.action == Action::Reject));
    assert!(m.sets.is_empty());
    assert_eq!(m.cluster_ips.len(), 1);
}

#[test]
fn node_ports_listen_on_node_addresses_and_masquerade_for_cluster_policy() {
    let s = web(
        json!({"type": "NodePort", "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}),
    );
    let m = model(&[s], &[web_slice()]);
    let np = &m.frontends[&key("172.18.0.2", Protocol::Tcp, 30080)];
    assert_eq!(np.kind, FrontendKind::NodePort);
    assert_eq!(np.masquerade, Masquerade::Always);
    assert_eq!(
        backends(&m, np.action),
        ["10.244.1.5:8080", "10.244.2.5:8080"]
    );
    assert_eq!(np.internal, None);
}

#[test]
fn external_traffic_policy_local_uses_local_endpoints_keeps_source_and_reports_health() {
    let s = svc(json!({"metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.20", "externalTrafficPolicy": "Local",
                 "healthCheckNodePort": 31000, "loadBalancerSourceRanges": ["192.0.2.0/24"],
                 "ports": [{"name": "http", "port": 80, "nodePort": 30080}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "172.18.255.200"}]}}}));
    let m = model(std::slice::from_ref(&s), &[web_slice()]);
    let lb = &m.frontends[&key("172.18.255.200", Protocol::Tcp, 80)];
    assert_eq!(lb.kind, FrontendKind::LoadBalancer);
    assert_eq!(lb.masquerade, Masquerade::Never);
    assert_eq!(backends(&m, lb.action), ["10.244.1.5:8080"]);
    assert_eq!(
        backends(&m, lb.internal.unwrap()),
        ["10.244.1.5:8080", "10.244.2.5:8080"]
    );
    assert_eq!(
        lb.source_ranges,
        ["192.0.2.0/24".parse::<Ipv4Net>().unwrap()]
    );
    let cip = &m.frontends[&key("10.96.0.20", Protocol::Tcp, 80)];
    assert_eq!(
        backends(&m, cip.action),
        ["10.244.1.5:8080", "10.244.2.5:8080"]
    );
    assert_eq!(m.health_checks[&31000].local_endpoints, 1);

    // on a node without a local endpoint: external traffic is dropped, health 0
    let m = build(ProxyInput {
        services: &[s],
        slices: &[web_slice()],
        node: "c",
        node_ips: NODE_IPS,
    });
    let np = &m.frontends[&key("172.18.0.2", Protocol::Tcp, 30080)];
    assert_eq!(np.action, Action::Drop);
    assert_eq!(
        backends(&m, np.internal.unwrap()),
        ["10.244.1.5:8080", "10.244.2.5:8080"]
    );
    assert_eq!(m.health_checks[&31000].local_endpoints, 0);
}

#[test]
fn internal_traffic_policy_local_drops_without_local_endpoints() {
    let s = web(json!({"internalTrafficPolicy": "Local"}));
    let m = model(std::slice::from_ref(&s), &[web_slice()]);
    assert_eq!(
        backends(
            &m,
            m.frontends[&key("10.96.0.20", Protocol::Tcp, 80)].action
        ),
        ["10.244.1.5:8080"]
    );
    let m = build(ProxyInput {
        services: &[s],
        slices: &[web_slice()],
        node: "c",
        node_ips: NODE_IPS,
    });
    assert_eq!(
        m.frontends[&key("10.96.0.20", Protocol::Tcp, 80)].action,
        Action::Drop
    );
}

#[test]
fn affinity_selection_and_external_ips() {
    let mut s = web(json!({"sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 30}},
        "externalIPs": ["198.51.100.7", "not-an-ip"]}));
    s.metadata.annotations =
        Some([(LOAD_BALANCING_ANNOTATION.to_string(), "maglev".to_string())].into());
    let m = model(&[s], &[web_slice()]);
    let f = &m.frontends[&key("198.51.100.7", Protocol::Tcp, 80)];
    assert_eq!(f.kind, FrontendKind::ExternalIp);
    let Action::Balance(id) = f.action else {
        panic!("{f:?}")
    };
    assert_eq!(m.sets[&id].affinity, Some(Duration::from_secs(30)));
    assert_eq!(m.sets[&id].selection, Selection::Maglev);
    assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    assert!(
        m.warnings[0].contains("spec.externalIPs[1]"),
        "{:?}",
        m.warnings
    );
}

#[test]
fn set_ids_are_stable_and_distinct() {
    let r = |p: &str| ServicePortRef {
        namespace: "default".into(),
        name: "web".into(),
        port: p.into(),
        protocol: Protocol::Tcp,
    };
    assert_eq!(
        set_id(&r("http"), Scope::Cluster),
        set_id(&r("http"), Scope::Cluster)
    );
    assert_ne!(
        set_id(&r("http"), Scope::Cluster),
        set_id(&r("http"), Scope::Local)
    );
    assert_ne!(
        set_id(&r("http"), Scope::Cluster),
        set_id(&r("dns"), Scope::Cluster)
    );
}
