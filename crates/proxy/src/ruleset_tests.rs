use std::net::Ipv4Addr;

use podnet_linux::nft::{ElemData, Stmt, TableState, Value, Verdict};
use podnet_model::k8s_openapi::api::core::v1::Service;
use podnet_model::k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use super::*;
use crate::model::{build, ProxyInput};

const NODE_IPS: &[Ipv4Addr] = &[Ipv4Addr::new(172, 18, 0, 2)];

fn cfg() -> RulesetConfig {
    RulesetConfig {
        cluster_cidr: "10.244.0.0/16".parse().unwrap(),
        service_cidr: "10.96.0.0/12".parse().unwrap(),
    }
}

fn service(name: &str, ip: &str, extra: serde_json::Value) -> Service {
    let mut v = json!({"metadata": {"name": name, "namespace": "default"},
        "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80}]}});
    for (k, x) in extra.as_object().unwrap() {
        v["spec"][k] = x.clone();
    }
    serde_json::from_value(v).unwrap()
}

fn slice(svc: &str, ips: &[&str]) -> EndpointSlice {
    let eps: Vec<_> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip], "nodeName": "a", "conditions": {"ready": true}}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": format!("{svc}-x"), "namespace": "default", "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4", "endpoints": eps, "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    }))
    .unwrap()
}

fn table(services: &[Service], slices: &[EndpointSlice]) -> TableState {
    plan(
        &build(ProxyInput {
            services,
            slices,
            node: "a",
            node_ips: NODE_IPS,
        }),
        &cfg(),
    )
}

fn fe(ip: &str, proto: u8, port: u16) -> Vec<Value> {
    vec![
        Value::Ipv4(ip.parse().unwrap()),
        Value::Proto(proto),
        Value::Port(port),
    ]
}

fn verdict(t: &TableState, set: &str, key: &[Value]) -> Option<Verdict> {
    match &t.sets[set].elements.get(key)?.data {
        Some(ElemData::Verdict(v)) => Some(v.clone()),
        other => panic!("{other:?}"),
    }
}

fn backends(t: &TableState, map: &str, key: &[Value]) -> Vec<String> {
    t.sets[map]
        .elements
        .values()
        .filter(|e| e.key[..3] == *key)
        .map(|e| match &e.data {
            Some(ElemData::Values(v)) => match (&e.key[3], &v[0], &v[1]) {
                (Value::U32(s), Value::Ipv4(ip), Value::Port(p)) => format!("{s}={ip}:{p}"),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        })
        .collect()
}

fn in_set_of(t: &TableState, set: &str, key: &[Value]) -> bool {
    t.sets[set].elements.contains_key(key)
}

/// The DNAT statement of `rule`, as (map, slot field).
fn dnat_slot(rule: &Rule) -> (String, Field) {
    rule.exprs
        .iter()
        .find_map(|s| match s {
            Stmt::Dnat {
                to:
                    NatTarget::Map {
                        fields,
                        map,
                        remember: None,
                        ..
                    },
                ..
            } => Some((map.clone(), fields[3].clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no dnat in {rule:?}"))
}

#[test]
fn common_frontends_are_balanced_by_the_nat_hooks_without_a_verdict_element() {
    let s = service(
        "web",
        "10.96.0.20",
        json!({"type": "NodePort", "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}),
    );
    let t = table(&[s], &[slice("web", &["10.244.1.5", "10.244.1.6"])]);
    let cip = fe("10.96.0.20", 6, 80);
    let np = fe("172.18.0.2", 6, 30080);
    for key in [&cip, &np] {
        assert!(in_set_of(&t, "random-2", key), "{key:?}");
        assert_eq!(verdict(&t, "frontends", key), None);
    }
    assert!(!t.chains.keys().any(|c| c.starts_with("lb")), "no chain");
    assert_eq!(
        backends(&t, "backends", &cip),
        ["0=10.244.1.5:8080", "1=10.244.1.6:8080"]
    );
    assert_eq!(
        backends(&t, "backends", &np),
        ["0=10.244.1.5:8080", "1=10.244.1.6:8080"]
    );
    assert!(t.sets["masquerade-off-cluster"].elements.contains_key(&cip));
    assert!(t.sets["masquerade-always"].elements.contains_key(&np));
    // both NAT hooks: the internal map, one rule per count 1..=8, then the verdict map
    for chain in ["nat-prerouting", "nat-output"] {
        let rules = &t.chains[chain].rules;
        assert_eq!(rules.len(), DIRECT_MAX + 2, "{chain}");
        for (i, rule) in rules[1..=DIRECT_MAX].iter().enumerate() {
            let n = u32::try_from(i + 1).unwrap();
            assert!(rule.exprs.iter().any(|s| matches!(s,
                Stmt::InSet { set, negate: false, .. } if *set == format!("random-{n}"))));
            assert_eq!(
                dnat_slot(rule),
                (
                    "backends".to_string(),
                    Field::NumgenRandom {
                        modulus: n,
                        offset: 0
                    }
                )
            );
        }
    }
    let hairpin: Vec<_> = t.sets["hairpin"].elements.keys().cloned().collect();
    assert_eq!(hairpin.len(), 2);
}

#[test]
fn larger_backend_sets_share_one_balancing_chain_per_backend_count() {
    let ips: Vec<String> = (1..=9).map(|i| format!("10.244.1.{i}")).collect();
    let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
    let t = table(
        &[
            service("a", "10.96.0.20", json!({})),
            service("b", "10.96.0.21", json!({})),
        ],
        &[slice("a", &ips), slice("b", &ips)],
    );
    for ip in ["10.96.0.20", "10.96.0.21"] {
        let key = fe(ip, 6, 80);
        assert_eq!(
            verdict(&t, "frontends", &key),
            Some(Verdict::Goto("lb-random-9".into()))
        );
        assert!(!(1..=8).any(|n| in_set_of(&t, &format!("random-{n}"), &key)));
        assert_eq!(backends(&t, "backends", &key).len(), 9);
    }
    let lb = &t.chains["lb-random-9"].rules;
    assert_eq!(lb.len(), 1);
    assert_eq!(
        dnat_slot(&lb[0]),
        (
            "backends".to_string(),
            Field::NumgenRandom {
                modulus: 9,
                offset: 0
            }
        )
    );
    assert_eq!(t.chains.keys().filter(|c| c.starts_with("lb")).count(), 1);
}

#[test]
fn chains_do_not_grow_with_services() {
    let few = table(
        &[service("a", "10.96.0.20", json!({}))],
        &[slice("a", &["10.244.1.5", "10.244.1.6"])],
    );
    let services: Vec<Service> = (0..500)
        .map(|i| {
            service(
                &format!("s{i}"),
                &format!("10.96.{}.{}", 1 + i / 200, 1 + i % 200),
                json!({}),
            )
        })
        .collect();
    let slices: Vec<EndpointSlice> = (0..500)
        .map(|i| slice(&format!("s{i}"), &["10.244.1.5", "10.244.2.6"]))
        .collect();
    let many = table(&services, &slices);
    assert_eq!(few.chains.len(), many.chains.len());
    assert_eq!(many.sets["random-2"].elements.len(), 500);
    assert_eq!(many.sets["backends"].elements.len(), 1000);
}

#[test]
fn a_service_without_endpoints_rejects_and_local_policy_without_local_ones_drops() {
    let lonely = service("lonely", "10.96.0.30", json!({}));
    let local = service(
        "local",
        "10.96.0.31",
        json!({"internalTrafficPolicy": "Local"}),
    );
    let mut remote = slice("local", &["10.244.2.9"]);
    remote.endpoints[0].node_name = Some("b".into());
    let t = table(&[lonely, local], &[remote]);
    assert!(in_set_of(
        &t,
        "no-endpoints-reject",
        &fe("10.96.0.30", 6, 80)
    ));
    assert!(in_set_of(&t, "no-endpoints-drop", &fe("10.96.0.31", 6, 80)));
    assert_eq!(t.sets["no-endpoints-reject"].elements.len(), 1);
    assert_eq!(t.sets["no-endpoints-drop"].elements.len(), 1);
    assert!(t.sets["frontends"].elements.is_empty());
    assert!((1..=8).all(|n| t.sets[&format!("random-{n}")].elements.is_empty()));
    assert_eq!(t.sets["cluster-ips"].elements.len(), 2);
    assert!(!t.chains.keys().any(|c| c.starts_with("lb")));
}

#[test]
fn one_endpoint_change_changes_only_that_services_elements() {
    let services: Vec<Service> = (0..50)
        .map(|i| service(&format!("s{i}"), &format!("10.96.1.{}", i + 1), json!({})))
        .collect();
    let mut slices: Vec<EndpointSlice> = (0..50)
        .map(|i| slice(&format!("s{i}"), &["10.244.1.5", "10.244.2.6"]))
        .collect();
    let before = table(&services, &slices);
    slices[7] = slice("s7", &["10.244.1.5", "10.244.2.7"]);
    let after = table(&services, &slices);
    assert_eq!(before.chains, after.chains);
    let changed: Vec<_> = after.sets["backends"]
        .elements
        .iter()
        .filter(|(k, e)| before.sets["backends"].elements.get(*k) != Some(*e))
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0][..3], fe("10.96.1.8", 6, 80)[..]);
}

#[test]
fn maglev_and_affinity_get_their_own_shared_chains() {
    let mut mag = service("mag", "10.96.0.40", json!({}));
    mag.metadata.annotations = Some(
        [(
            crate::model::LOAD_BALANCING_ANNOTATION.to_string(),
            "maglev".to_string(),
        )]
        .into(),
    );
    let aff = service(
        "aff",
        "10.96.0.41",
        json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 30}}}),
    );
    let t = table(
        &[mag, aff],
        &[
            slice("mag", &["10.244.1.5", "10.244.1.6"]),
            slice("aff", &["10.244.1.5", "10.244.1.6"]),
        ],
    );
    assert_eq!(
        verdict(&t, "frontends", &fe("10.96.0.40", 6, 80)),
        Some(Verdict::Goto("lb-maglev-251".into()))
    );
    assert_eq!(
        backends(&t, "backends", &fe("10.96.0.40", 6, 80)).len(),
        251
    );
    let chain = "lb-random-2-affinity-30";
    assert_eq!(
        verdict(&t, "frontends", &fe("10.96.0.41", 6, 80)),
        Some(Verdict::Goto(chain.into()))
    );
    let rules = &t.chains[chain].rules;
    assert_eq!(rules.len(), 2);
    match &rules[0].exprs[0] {
        Stmt::Dnat {
            to:
                NatTarget::Map {
                    map,
                    remember: None,
                    ..
                },
            ..
        } => assert_eq!(map, "affinity"),
        other => panic!("{other:?}"),
    }
    // the backend is recorded after DNAT, with the service's timeout
    assert_eq!(
        verdict(&t, "affinity-frontends", &fe("10.96.0.41", 6, 80)),
        Some(Verdict::Jump("remember-30".into()))
    );
    match &t.chains["remember-30"].rules[0].exprs[0] {
        Stmt::DynsetUpdate {
            set,
            timeout,
            data: Some(_),
            ..
        } => {
            assert_eq!(set, "affinity");
            assert_eq!(*timeout, Some(std::time::Duration::from_secs(30)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn source_ranges_become_interval_elements() {
    let s: Service = serde_json::from_value(json!({"metadata": {"name": "lb", "namespace": "default"},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.50", "loadBalancerSourceRanges": ["172.18.0.100/32"],
                 "ports": [{"name": "http", "port": 80, "nodePort": 30081}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "172.18.255.200"}]}}}))
    .unwrap();
    let t = table(&[s], &[slice("lb", &["10.244.1.5"])]);
    let lb = fe("172.18.255.200", 6, 80);
    assert!(t.sets["source-restricted"].elements.contains_key(&lb));
    let allowed: Vec<_> = t.sets["source-allowed"].elements.values().collect();
    assert_eq!(allowed.len(), 1);
    assert_eq!(
        allowed[0].key[3],
        Value::Ipv4("172.18.0.100".parse().unwrap())
    );
    assert_eq!(
        allowed[0].key_end.as_ref().unwrap()[3],
        Value::Ipv4("172.18.0.100".parse().unwrap())
    );
}
