use std::net::Ipv4Addr;

use podnet_linux::nft::Op;
use serde_json::json;

use super::*;
use crate::model::{build, ProxyInput};
use crate::ruleset::plan as plan_table;

const NODE: &str = "a";

fn cfg() -> RulesetConfig {
    RulesetConfig {
        cluster_cidr: "10.244.0.0/16".parse().unwrap(),
        service_cidr: "10.96.0.0/12".parse().unwrap(),
    }
}

fn node_ips() -> Vec<Ipv4Addr> {
    vec![Ipv4Addr::new(172, 18, 0, 2)]
}

fn service(name: &str, ip: &str, proto: &str) -> Service {
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"},
        "spec": {"clusterIP": ip, "type": "NodePort",
                 "ports": [{"name": "p", "port": 53, "protocol": proto, "nodePort": 30000 + ip.rsplit('.').next().unwrap().parse::<u16>().unwrap()}]}}))
    .unwrap()
}

fn slice(svc: &str, proto: &str, ips: &[&str]) -> EndpointSlice {
    let eps: Vec<_> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip], "nodeName": "b", "conditions": {"ready": true}}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": format!("{svc}-x"), "namespace": "default", "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4", "endpoints": eps, "ports": [{"name": "p", "port": 5353, "protocol": proto}]
    }))
    .unwrap()
}

fn engine_with(n: usize) -> (Engine, Vec<Service>, Vec<EndpointSlice>) {
    let mut e = Engine::new(cfg(), NODE, node_ips());
    let mut services = Vec::new();
    let mut slices = Vec::new();
    for i in 0..n {
        let s = service(&format!("s{i}"), &format!("10.96.1.{}", i + 1), "UDP");
        let sl = slice(&format!("s{i}"), "UDP", &["10.244.2.5", "10.244.2.6"]);
        e.upsert_service(s.clone());
        e.upsert_slice(sl.clone());
        services.push(s);
        slices.push(sl);
    }
    (e, services, slices)
}

fn from_scratch(services: &[Service], slices: &[EndpointSlice]) -> TableState {
    let m = build(ProxyInput {
        services,
        slices,
        node: NODE,
        node_ips: &node_ips(),
    });
    plan_table(&m, &cfg())
}

fn element_ops(b: &Batch) -> (usize, usize) {
    b.ops.iter().fold((0, 0), |(a, d), op| match op {
        Op::AddElements(_, _, e) => (a + e.len(), d),
        Op::DeleteElements(_, _, e) => (a, d + e.len()),
        _ => (a, d),
    })
}

#[test]
fn first_sync_is_a_full_replace_then_a_change_sends_only_its_elements() {
    let (mut e, services, mut slices) = engine_with(100);
    let p = e.plan();
    assert!(p.full);
    assert_eq!(p.services_planned, 100);
    assert!(matches!(p.batch.ops[0], Op::AddTable(_)));
    e.commit(p);
    assert!(!e.has_pending());

    // one endpoint of one service changes
    slices[42] = slice("s42", "UDP", &["10.244.2.5", "10.244.2.7"]);
    e.upsert_slice(slices[42].clone());
    let p = e.plan();
    assert!(!p.full);
    assert_eq!(p.services_planned, 1);
    // the slot-1 backends of the ClusterIP and of the NodePort frontend: delete + add
    assert_eq!(element_ops(&p.batch), (2, 2), "{:#?}", p.batch.ops);
    let gone = (Ipv4Addr::new(10, 244, 2, 6), 5353);
    assert_eq!(
        p.stale_udp_backends,
        vec![
            ((Ipv4Addr::new(10, 96, 1, 43), 53), gone),
            ((Ipv4Addr::new(172, 18, 0, 2), 30043), gone)
        ]
    );
    e.commit(p);
    assert_eq!(e.desired_state(), from_scratch(&services, &slices));

    // nothing changed: nothing to send
    e.upsert_slice(slices[42].clone());
    let p = e.plan();
    assert!(p.batch.is_empty(), "{:#?}", p.batch.ops);
}

#[test]
fn a_common_new_service_adds_no_chain_and_no_verdict_element() {
    let (mut e, mut services, mut slices) = engine_with(3);
    let p = e.plan();
    e.commit(p);
    let s = service("small", "10.96.2.77", "UDP");
    let sl = slice("small", "UDP", &["10.244.3.1", "10.244.3.2", "10.244.3.3"]);
    e.upsert_service(s.clone());
    e.upsert_slice(sl.clone());
    services.push(s);
    slices.push(sl);
    let p = e.plan();
    // a goto/jump element in a verdict map would make the kernel validate the whole
    // table at commit: a service balanced by the NAT hooks' rules adds none
    for op in &p.batch.ops {
        match op {
            Op::AddChain(..) | Op::AddRule(..) => panic!("unexpected {op}"),
            Op::AddElements(_, set, els) => assert!(
                els.iter()
                    .all(|el| !matches!(el.data, Some(podnet_linux::nft::ElemData::Verdict(_)))),
                "verdict element in {}",
                set.name
            ),
            _ => {}
        }
    }
    let (added, deleted) = element_ops(&p.batch);
    assert_eq!(deleted, 0);
    // 2 frontends x (random-3 + 3 backends) + masquerade marks + cluster-ips
    assert_eq!(added, 2 * 4 + 2 + 1, "{:#?}", p.batch.ops);
    e.commit(p);
    assert_eq!(e.desired_state(), from_scratch(&services, &slices));
}

#[test]
fn a_new_service_adds_its_elements_and_a_chain_only_when_first_used() {
    let (mut e, mut services, mut slices) = engine_with(3);
    let p = e.plan();
    e.commit(p);
    // nine backends: more than the NAT hooks balance directly, so a shared chain
    let s = service("new", "10.96.2.1", "TCP");
    let ips: Vec<String> = (1..=9).map(|i| format!("10.244.3.{i}")).collect();
    let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
    let sl = slice("new", "TCP", &ips);
    e.upsert_service(s.clone());
    e.upsert_slice(sl.clone());
    services.push(s);
    slices.push(sl);
    let p = e.plan();
    let new_chains: Vec<_> = p
        .batch
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::AddChain(_, c) => Some(c.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(new_chains, ["lb-random-9"]);
    // 2 frontends (ClusterIP, NodePort) x (vmap + 9 backends) + masquerade marks + cluster-ips
    let (added, deleted) = element_ops(&p.batch);
    assert_eq!(deleted, 0);
    assert_eq!(added, 2 * 10 + 2 + 1, "{:#?}", p.batch.ops);
    assert!(p.stale_udp_backends.is_empty());
    e.commit(p);
    assert_eq!(e.desired_state(), from_scratch(&services, &slices));

    // removing it removes the chain too (flushed, then deleted after its elements)
    e.remove_service("default", "new");
    e.remove_slice("default", "new-x");
    let p = e.plan();
    let names: Vec<String> = p
        .batch
        .ops
        .iter()
        .map(|op| match op {
            Op::DeleteElements(..) => "del-elements".to_string(),
            Op::FlushChain(_, c) => format!("flush {c}"),
            Op::DeleteChain(_, c) => format!("delete {c}"),
            other => format!("{other}"),
        })
        .collect();
    let flush = names
        .iter()
        .position(|n| n == "flush lb-random-9")
        .expect("flushed");
    assert!(
        names[..flush].iter().all(|n| n == "del-elements"),
        "{names:?}"
    );
    assert_eq!(names.last().unwrap(), "delete lb-random-9");
    e.commit(p);
    assert_eq!(
        e.desired_state(),
        from_scratch(&services[..3], &slices[..3])
    );
}

#[test]
fn shared_elements_stay_while_any_service_needs_them() {
    // two services with endpoints on this node share hairpin elements
    let mut e = Engine::new(cfg(), NODE, node_ips());
    for name in ["x", "y"] {
        e.upsert_service(service(
            name,
            if name == "x" {
                "10.96.3.1"
            } else {
                "10.96.3.2"
            },
            "TCP",
        ));
        let mut sl = slice(name, "TCP", &["10.244.1.9"]);
        sl.endpoints[0].node_name = Some(NODE.into());
        e.upsert_slice(sl);
    }
    let p = e.plan();
    e.commit(p);
    let hairpin = |e: &Engine| e.desired_state().sets["hairpin"].elements.len();
    assert_eq!(hairpin(&e), 1);
    e.remove_service("default", "x");
    let p = e.plan();
    assert!(!p
        .batch
        .ops
        .iter()
        .any(|op| matches!(op, Op::DeleteElements(_, s, _) if s.name == "hairpin")));
    e.commit(p);
    assert_eq!(hairpin(&e), 1);
    e.remove_service("default", "y");
    let p = e.plan();
    assert!(p
        .batch
        .ops
        .iter()
        .any(|op| matches!(op, Op::DeleteElements(_, s, _) if s.name == "hairpin")));
    e.commit(p);
    assert_eq!(hairpin(&e), 0);
}

#[test]
fn a_failed_commit_makes_the_next_sync_full() {
    let (mut e, _, _) = engine_with(2);
    let p = e.plan();
    e.commit(p);
    e.remove_service("default", "s0");
    let p = e.plan();
    assert!(!p.full);
    e.failed(p);
    let p = e.plan();
    assert!(p.full);
    assert!(matches!(p.batch.ops[1], Op::DeleteTable(_)));
}

#[test]
fn the_full_batch_is_the_full_replace_of_the_desired_state() {
    let (mut e, _, _) = engine_with(100);
    let p = e.plan();
    assert!(p.full);
    assert_eq!(p.batch, podnet_linux::nft::full_replace(&e.desired_state()));
    e.commit(p);
    e.request_full_resync();
    let p = e.plan();
    assert_eq!(p.batch, podnet_linux::nft::full_replace(&e.desired_state()));
}

#[test]
fn removing_a_backend_of_an_affinity_service_flushes_remembered_clients() {
    let mut e = Engine::new(cfg(), NODE, node_ips());
    let mut s = service("sticky", "10.96.4.1", "TCP");
    s.spec.as_mut().unwrap().session_affinity = Some("ClientIP".into());
    e.upsert_service(s);
    e.upsert_slice(slice("sticky", "TCP", &["10.244.2.5", "10.244.2.6"]));
    let p = e.plan();
    e.commit(p);
    let flushes = |b: &Batch| {
        b.ops
            .iter()
            .filter(|op| matches!(op, Op::FlushSet(_, s) if s == "affinity"))
            .count()
    };
    // a new backend: remembered clients stay
    e.upsert_slice(slice(
        "sticky",
        "TCP",
        &["10.244.2.5", "10.244.2.6", "10.244.2.7"],
    ));
    let p = e.plan();
    assert_eq!(flushes(&p.batch), 0, "{:#?}", p.batch.ops);
    e.commit(p);
    // a removed one: they re-balance
    e.upsert_slice(slice("sticky", "TCP", &["10.244.2.5", "10.244.2.7"]));
    let p = e.plan();
    assert_eq!(flushes(&p.batch), 1, "{:#?}", p.batch.ops);
    e.commit(p);
    // without affinity, no flush
    let (mut e, _, mut slices) = engine_with(2);
    let p = e.plan();
    e.commit(p);
    slices[0] = slice("s0", "UDP", &["10.244.2.5"]);
    e.upsert_slice(slices[0].clone());
    assert_eq!(flushes(&e.plan().batch), 0);
}

/// What the kernel holds after `batch` (as it applies one: strictly, so a batch
/// that adds an existing element or deletes a missing one fails the test).
fn apply(kernel: &mut Option<TableState>, batch: &Batch) {
    for op in &batch.ops {
        match op {
            Op::AddTable(t) => {
                kernel.get_or_insert_with(|| TableState::new(t.clone()));
            }
            Op::DeleteTable(_) => *kernel = None,
            op => {
                let k = kernel.as_mut().expect("a table");
                match op {
                    Op::AddChain(_, c) => {
                        assert!(!k.chains.contains_key(&c.name), "{op}");
                        k.add_chain(c.clone(), Vec::new());
                    }
                    Op::AddRule(_, c, r) => k.push_rule(c, r.clone()),
                    Op::FlushChain(_, c) => k.chains.get_mut(c).expect("chain").rules.clear(),
                    Op::DeleteChain(_, c) => {
                        let gone = k.chains.remove(c).expect("chain");
                        assert!(gone.rules.is_empty(), "{op}");
                    }
                    Op::AddSet(_, s) => {
                        k.add_set(s.clone());
                    }
                    Op::FlushSet(_, s) => k.sets.get_mut(s).expect("set").elements.clear(),
                    Op::AddElements(_, s, els) => {
                        let set = k.sets.get_mut(&s.name).expect("set");
                        for e in els {
                            assert!(!set.elements.contains_key(&e.key), "{op}: {e:?}");
                            set.insert(e.clone());
                        }
                    }
                    Op::DeleteElements(_, s, els) => {
                        let set = k.sets.get_mut(&s.name).expect("set");
                        for e in els {
                            assert_eq!(set.elements.remove(&e.key).as_ref(), Some(e), "{op}");
                        }
                    }
                    other => panic!("unexpected {other}"),
                }
            }
        }
    }
}

#[test]
fn random_changes_keep_the_kernel_equal_to_planning_from_scratch() {
    // a small deterministic generator (no dependency)
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut e = Engine::new(cfg(), NODE, node_ips());
    let mut ips = node_ips();
    let mut services: BTreeMap<String, Service> = BTreeMap::new();
    let mut slices: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut kernel: Option<TableState> = None;
    let mut fulls = 0;
    for round in 0..400 {
        for _ in 0..=rnd(3) {
            let i = rnd(12);
            let name = format!("s{i}");
            match rnd(10) {
                0..=2 => {
                    let proto = ["TCP", "UDP"][rnd(2) as usize];
                    let mut s = service(&name, &format!("10.96.5.{}", i + 1), proto);
                    let spec = s.spec.as_mut().unwrap();
                    if rnd(3) == 0 {
                        spec.session_affinity = Some("ClientIP".into());
                    }
                    if rnd(3) == 0 {
                        spec.external_traffic_policy = Some("Local".into());
                    }
                    e.upsert_service(s.clone());
                    services.insert(name, s);
                }
                3 => {
                    e.remove_service("default", &name);
                    services.remove(&name);
                }
                4..=6 => {
                    // the slice's protocol may differ from the service's (then unused)
                    let proto = ["TCP", "UDP"][rnd(2) as usize];
                    let eps: Vec<String> = (0..rnd(4))
                        .map(|_| format!("10.244.{}.{}", 1 + rnd(2), 2 + rnd(6)))
                        .collect();
                    let eps: Vec<&str> = eps.iter().map(String::as_str).collect();
                    let mut sl = slice(&name, proto, &eps);
                    for ep in &mut sl.endpoints {
                        if ep.addresses[0].starts_with("10.244.1.") {
                            ep.node_name = Some(NODE.into());
                        }
                    }
                    e.upsert_slice(sl.clone());
                    slices.insert(name, sl);
                }
                7 => {
                    e.remove_slice("default", &format!("{name}-x"));
                    slices.remove(&name);
                }
                8 => {
                    ips = if ips.len() == 1 {
                        vec![ips[0], Ipv4Addr::new(172, 18, 0, 3)]
                    } else {
                        node_ips()
                    };
                    e.set_node_ips(ips.clone());
                }
                _ => {
                    // a relist
                    e.clear_services();
                    e.clear_slices();
                    for s in services.values() {
                        e.upsert_service(s.clone());
                    }
                    for s in slices.values() {
                        e.upsert_slice(s.clone());
                    }
                }
            }
        }
        if rnd(20) == 0 {
            e.request_full_resync();
        }
        let p = e.plan();
        fulls += usize::from(p.full);
        if rnd(15) == 0 && round > 0 {
            e.failed(p);
            continue;
        }
        apply(&mut kernel, &p.batch);
        e.commit(p);
        let services: Vec<Service> = services.values().cloned().collect();
        let slices: Vec<EndpointSlice> = slices.values().cloned().collect();
        let m = build(ProxyInput {
            services: &services,
            slices: &slices,
            node: NODE,
            node_ips: &ips,
        });
        let want = plan_table(&m, &cfg());
        assert_eq!(e.desired_state(), want, "round {round}");
        assert_eq!(kernel.as_ref(), Some(&want), "round {round}");
    }
    assert!(fulls > 5 && fulls < 100, "{fulls} full replaces");
}

#[test]
fn a_plan_neither_committed_nor_failed_makes_the_next_sync_full() {
    let (mut e, _, _) = engine_with(2);
    let p = e.plan();
    e.commit(p);
    e.remove_service("default", "s0");
    let p = e.plan();
    assert!(!p.full);
    drop(p);
    e.remove_service("default", "s1");
    assert!(e.plan().full);
}

#[test]
fn warnings_come_with_the_plan_that_re_planned_their_service() {
    let mut e = Engine::new(cfg(), NODE, node_ips());
    let mut s = service("bad", "10.96.5.1", "TCP");
    s.spec.as_mut().unwrap().external_ips = Some(vec!["not-an-ip".into()]);
    e.upsert_service(s.clone());
    let p = e.plan();
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(
        p.warnings[0].contains("spec.externalIPs[0]"),
        "{:?}",
        p.warnings
    );
    e.commit(p);
    // an unrelated change: the bad service is not re-planned, its warning not repeated
    e.upsert_service(service("good", "10.96.5.2", "TCP"));
    let p = e.plan();
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}
