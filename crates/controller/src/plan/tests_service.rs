use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::json;

use super::conditions::{CLUSTER_IP_ALLOCATED, LOAD_BALANCER_IP_ALLOCATED, NODE_PORT_ALLOCATED};
use super::service::{plan_service, Ctx, Planned};
use super::test_util::*;
use crate::alloc::ranges::{parse_pools, Pool};
use crate::alloc::{AllocKey, Allocations, Protocol};
use podnet_model::k8s_openapi::api::core::v1::Service;
use podnet_model::ClusterConfigSpec;

fn ctx_parts(cfg: &ClusterConfigSpec) -> Vec<Pool> {
    parse_pools(&cfg.load_balancer_pools).0
}

fn plan_commit(svc: &Service, cfg: &ClusterConfigSpec, allocs: &mut Allocations) -> Service {
    let pools = ctx_parts(cfg);
    let ctx = Ctx {
        cfg,
        pools: &pools,
        now: time(),
    };
    let planned = plan_service(svc, &ctx, allocs, &mut rng());
    commit(planned, svc, allocs, 1).0
}

fn cluster_ip(s: &Service) -> Option<String> {
    s.spec.as_ref()?.cluster_ip.clone()
}

fn condition(s: &Service, type_: &str) -> Option<(String, String)> {
    s.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.reason.clone(), c.message.clone()))
}

fn svc(ns: &str, name: &str, spec: serde_json::Value) -> Service {
    service(
        json!({"metadata": {"name": name, "namespace": ns, "uid": format!("uid-{ns}-{name}")}, "spec": spec}),
    )
}

#[test]
fn kube_dns_gets_the_tenth_address_and_kubernetes_the_first() {
    let cfg = cfg();
    let mut allocs = Allocations::new();
    let dns = plan_commit(
        &svc("kube-system", "kube-dns", json!({"ports": [{"port": 53}]})),
        &cfg,
        &mut allocs,
    );
    assert_eq!(cluster_ip(&dns).as_deref(), Some("10.96.0.10"));
    let spec = dns.spec.unwrap();
    assert_eq!(spec.cluster_ips, Some(vec!["10.96.0.10".to_string()]));
    assert_eq!(spec.ip_families, Some(vec!["IPv4".to_string()]));
    assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
    let k = plan_commit(&svc("default", "kubernetes", json!({})), &cfg, &mut allocs);
    assert_eq!(cluster_ip(&k).as_deref(), Some("10.96.0.1"));
}

#[test]
fn random_addresses_are_unique_in_range_and_skip_reserved() {
    let cfg = cfg();
    let pools = ctx_parts(&cfg);
    let ctx = Ctx {
        cfg: &cfg,
        pools: &pools,
        now: time(),
    };
    let mut allocs = Allocations::new();
    let mut rng = rng();
    let mut seen = HashSet::new();
    // one batch: reservations keep them apart before anything is committed
    for i in 0..2000 {
        let s = svc(
            "default",
            &format!("s{i}"),
            json!({"ports": [{"port": 80}]}),
        );
        let Planned::Plan(p) = plan_service(&s, &ctx, &mut allocs, &mut rng) else {
            panic!()
        };
        let ip: IpAddr = cluster_ip(p.object.as_ref().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert!(cfg.service_cidr.contains(&ip));
        assert!(!["10.96.0.0", "10.96.0.1", "10.96.0.10", "10.111.255.255"]
            .contains(&ip.to_string().as_str()));
        assert!(seen.insert(ip), "{ip} handed out twice");
        assert_eq!(p.claims, vec![AllocKey::ServiceIp(ip)]);
    }
}

#[test]
fn explicit_address_is_honoured_when_free_and_reported_when_taken() {
    let cfg = cfg();
    let mut allocs = Allocations::new();
    let a = plan_commit(
        &svc("shop", "db", json!({"clusterIP": "10.96.100.100"})),
        &cfg,
        &mut allocs,
    );
    assert_eq!(cluster_ip(&a).as_deref(), Some("10.96.100.100"));
    assert!(condition(&a, CLUSTER_IP_ALLOCATED).is_none());

    let b_in = svc("shop", "db2", json!({"clusterIP": "10.96.100.100"}));
    let pools = ctx_parts(&cfg);
    let ctx = Ctx {
        cfg: &cfg,
        pools: &pools,
        now: time(),
    };
    let Planned::Plan(p) = plan_service(&b_in, &ctx, &mut allocs, &mut rng()) else {
        panic!()
    };
    assert!(
        p.claims.is_empty(),
        "no other address is given: {:?}",
        p.claims
    );
    let b = p.object.unwrap();
    let (reason, message) = condition(&b, CLUSTER_IP_ALLOCATED).unwrap();
    assert_eq!(reason, "AlreadyAllocated");
    assert!(
        message.contains("10.96.100.100") && message.contains("Service shop/db"),
        "{message}"
    );
    assert_eq!(b.spec.as_ref().unwrap().cluster_ips, None);
    // planning again changes nothing (the condition keeps its time)
    let Planned::Plan(again) = plan_service(&b, &ctx, &mut allocs, &mut rng()) else {
        panic!()
    };
    assert!(again.is_noop(), "{again:?}");

    // once the holder is gone, the waiting service gets it and the condition goes
    allocs.remove(AllocKey::ServiceIp("10.96.100.100".parse().unwrap()));
    let b2 = plan_commit(&b, &cfg, &mut allocs);
    assert!(condition(&b2, CLUSTER_IP_ALLOCATED).is_none());
    assert_eq!(
        b2.spec.unwrap().cluster_ips,
        Some(vec!["10.96.100.100".to_string()])
    );
}

#[test]
fn out_of_range_address_is_invalid() {
    let mut allocs = Allocations::new();
    let s = plan_commit(
        &svc("a", "b", json!({"clusterIP": "192.168.0.1"})),
        &cfg(),
        &mut allocs,
    );
    let (reason, msg) = condition(&s, CLUSTER_IP_ALLOCATED).unwrap();
    assert_eq!(reason, "Invalid");
    assert!(
        msg.contains("expected a cluster IP inside 10.96.0.0/12"),
        "{msg}"
    );
    assert!(allocs.is_empty());
}

#[test]
fn headless_and_external_name_get_no_address() {
    let mut allocs = Allocations::new();
    let h = plan_commit(
        &svc(
            "a",
            "h",
            json!({"clusterIP": "None", "selector": {"a": "b"}}),
        ),
        &cfg(),
        &mut allocs,
    );
    assert_eq!(cluster_ip(&h).as_deref(), Some("None"));
    assert_eq!(h.spec.unwrap().cluster_ips, Some(vec!["None".to_string()]));
    let e = plan_commit(
        &svc(
            "a",
            "e",
            json!({"type": "ExternalName", "externalName": "x.example"}),
        ),
        &cfg(),
        &mut allocs,
    );
    assert_eq!(cluster_ip(&e), None);
    assert!(allocs.is_empty());
}

#[test]
fn service_cidr_exhaustion_is_reported() {
    let mut cfg = cfg();
    cfg.service_cidr = "10.0.0.0/29".parse().unwrap(); // 8 addresses: 0,1,7 reserved (10 is outside)
    let mut allocs = Allocations::new();
    let mut got = 0;
    for i in 0..6 {
        let s = plan_commit(&svc("d", &format!("s{i}"), json!({})), &cfg, &mut allocs);
        if cluster_ip(&s).is_some() {
            got += 1;
        } else {
            let (reason, _) = condition(&s, CLUSTER_IP_ALLOCATED).unwrap();
            assert_eq!(reason, "Exhausted");
        }
    }
    assert_eq!(got, 5);
}

#[test]
fn released_when_deleted_from_the_service_and_kept_on_reapply() {
    let cfg = cfg();
    let mut allocs = Allocations::new();
    let s = plan_commit(
        &svc(
            "d",
            "web",
            json!({"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}),
        ),
        &cfg,
        &mut allocs,
    );
    let ip = cluster_ip(&s).unwrap();
    let ports: Vec<i32> = s
        .spec
        .as_ref()
        .unwrap()
        .ports
        .iter()
        .flatten()
        .filter_map(|p| p.node_port)
        .collect();
    assert_eq!(ports.len(), 2);
    assert!(ports.iter().all(|p| (30000..=32767).contains(p)));
    assert_eq!(allocs.len(), 3);

    // re-applied without the allocated fields: the same ones come back
    let again = plan_commit(
        &svc(
            "d",
            "web",
            json!({"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}),
        ),
        &cfg,
        &mut allocs,
    );
    assert_eq!(cluster_ip(&again).unwrap(), ip);
    let ports2: Vec<i32> = again
        .spec
        .as_ref()
        .unwrap()
        .ports
        .iter()
        .flatten()
        .filter_map(|p| p.node_port)
        .collect();
    assert_eq!(
        ports2.iter().collect::<HashSet<_>>(),
        ports.iter().collect::<HashSet<_>>()
    );

    // NodePort -> ClusterIP: node ports cleared and released, address kept
    let mut ci = again.clone();
    ci.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
    let pools = ctx_parts(&cfg);
    let ctx = Ctx {
        cfg: &cfg,
        pools: &pools,
        now: time(),
    };
    let (after, plan) = commit(
        plan_service(&ci, &ctx, &mut allocs, &mut rng()),
        &ci,
        &mut allocs,
        2,
    );
    assert_eq!(plan.releases.len(), 2);
    assert!(after
        .spec
        .unwrap()
        .ports
        .unwrap()
        .iter()
        .all(|p| p.node_port.is_none()));
    assert_eq!(allocs.len(), 1);
}

#[test]
fn node_ports_explicit_taken_and_exhausted() {
    let mut cfg = cfg();
    cfg.node_port_range = "30000-30002".into();
    let mut allocs = Allocations::new();
    let a = plan_commit(
        &svc(
            "d",
            "a",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30001}]}),
        ),
        &cfg,
        &mut allocs,
    );
    assert!(condition(&a, NODE_PORT_ALLOCATED).is_none());
    let b = plan_commit(
        &svc(
            "d",
            "b",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30001}]}),
        ),
        &cfg,
        &mut allocs,
    );
    let (reason, msg) = condition(&b, NODE_PORT_ALLOCATED).unwrap();
    assert_eq!(reason, "AlreadyAllocated");
    assert!(
        msg.contains("node port 30001/TCP is already allocated to Service d/a"),
        "{msg}"
    );
    // UDP 30001 is a different item
    let u = plan_commit(
        &svc(
            "d",
            "u",
            json!({"type": "NodePort", "ports": [{"port": 53, "protocol": "UDP", "nodePort": 30001}]}),
        ),
        &cfg,
        &mut allocs,
    );
    assert!(condition(&u, NODE_PORT_ALLOCATED).is_none());
    // two TCP ports left: 30000 and 30002; the third port finds none
    let c = plan_commit(
        &svc(
            "d",
            "c",
            json!({"type": "NodePort", "ports": [{"port": 1}, {"port": 2}, {"port": 3}]}),
        ),
        &cfg,
        &mut allocs,
    );
    let (reason, _) = condition(&c, NODE_PORT_ALLOCATED).unwrap();
    assert_eq!(reason, "Exhausted");
    let out = plan_commit(
        &svc(
            "d",
            "x",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}),
        ),
        &cfg,
        &mut allocs,
    );
    assert_eq!(condition(&out, NODE_PORT_ALLOCATED).unwrap().0, "Invalid");
}

#[test]
fn tcp_and_udp_of_one_port_share_the_number() {
    let mut allocs = Allocations::new();
    let s = plan_commit(
        &svc(
            "kube-system",
            "dns-np",
            json!({"type": "NodePort", "ports": [
        {"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}),
        ),
        &cfg(),
        &mut allocs,
    );
    let ports = s.spec.unwrap().ports.unwrap();
    assert_eq!(ports[0].node_port, ports[1].node_port);
    let n = ports[0].node_port.unwrap() as u16;
    assert!(allocs.get(&AllocKey::NodePort(Protocol::Udp, n)).is_some());
    assert!(allocs.get(&AllocKey::NodePort(Protocol::Tcp, n)).is_some());
}

#[test]
fn load_balancer_gets_pool_address_node_ports_and_health_check_port() {
    let mut cfg = cfg();
    cfg.load_balancer_pools
        .push(podnet_model::config::AddressPool {
            name: "manual".into(),
            addresses: vec!["192.0.2.0/30".into()],
            auto_assign: false,
        });
    let mut allocs = Allocations::new();
    let lb = plan_commit(
        &svc(
            "d",
            "lb",
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}),
        ),
        &cfg,
        &mut allocs,
    );
    let ingress = lb
        .status
        .as_ref()
        .unwrap()
        .load_balancer
        .as_ref()
        .unwrap()
        .ingress
        .clone()
        .unwrap();
    assert_eq!(ingress[0].ip.as_deref(), Some("172.18.255.200"));
    let spec = lb.spec.unwrap();
    assert!(spec.health_check_node_port.is_some());
    assert!(spec.ports.unwrap()[0].node_port.is_some());

    let mut ann = svc(
        "d",
        "lb2",
        json!({"type": "LoadBalancer", "ports": [{"port": 80}]}),
    );
    ann.metadata.annotations =
        Some([("podnet.io/address-pool".to_string(), "manual".to_string())].into());
    let lb2 = plan_commit(&ann, &cfg, &mut allocs);
    let ip = lb2.status.unwrap().load_balancer.unwrap().ingress.unwrap()[0]
        .ip
        .clone();
    assert_eq!(ip.as_deref(), Some("192.0.2.0"));

    let req = plan_commit(
        &svc(
            "d",
            "lb3",
            json!({"type": "LoadBalancer", "loadBalancerIP": "172.18.255.240", "ports": [{"port": 80}]}),
        ),
        &cfg,
        &mut allocs,
    );
    let ip = req
        .status
        .clone()
        .unwrap()
        .load_balancer
        .unwrap()
        .ingress
        .unwrap()[0]
        .ip
        .clone();
    assert_eq!(ip.as_deref(), Some("172.18.255.240"));

    let taken = plan_commit(
        &svc(
            "d",
            "lb4",
            json!({"type": "LoadBalancer", "loadBalancerIP": "172.18.255.240", "ports": [{"port": 80}]}),
        ),
        &cfg,
        &mut allocs,
    );
    assert_eq!(
        condition(&taken, LOAD_BALANCER_IP_ALLOCATED).unwrap().0,
        "AlreadyAllocated"
    );
    let outside = plan_commit(
        &svc(
            "d",
            "lb5",
            json!({"type": "LoadBalancer", "loadBalancerIP": "10.1.1.1", "ports": [{"port": 80}]}),
        ),
        &cfg,
        &mut allocs,
    );
    assert_eq!(
        condition(&outside, LOAD_BALANCER_IP_ALLOCATED).unwrap().0,
        "Invalid"
    );

    // back to ClusterIP: ingress cleared, LB address and node ports released
    let mut back = req.clone();
    back.spec = Some(podnet_model::k8s_openapi::api::core::v1::ServiceSpec {
        type_: Some("ClusterIP".into()),
        ..back.spec.clone().unwrap_or_default()
    });
    let before = allocs.len();
    let after = plan_commit(&back, &cfg, &mut allocs);
    assert!(after.status.and_then(|s| s.load_balancer).is_none());
    assert_eq!(allocs.len(), before - 2);
}

#[test]
fn missing_uid_is_given_or_adopted() {
    let cfg = cfg();
    let mut allocs = Allocations::new();
    let s = service(json!({"metadata": {"name": "n", "namespace": "d"}, "spec": {}}));
    let first = plan_commit(&s, &cfg, &mut allocs);
    let uid = first.metadata.uid.clone().unwrap();
    assert_eq!(uid.len(), 36);
    // re-applied without uid and without clusterIP: same uid and same address
    let again = plan_commit(&s, &cfg, &mut allocs);
    assert_eq!(again.metadata.uid.as_deref(), Some(uid.as_str()));
    assert_eq!(cluster_ip(&again), cluster_ip(&first));
}
