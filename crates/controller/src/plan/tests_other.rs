use serde_json::json;

use super::conditions::POD_CIDR_ALLOCATED;
use super::gc::{holds, OwnerObject};
use super::pod_cidr::plan_node;
use super::schedule::{candidates, schedule};
use super::service::{Ctx, Planned};
use super::slices::{desired_slices, slice_name};
use super::test_util::*;
use crate::alloc::{AllocKey, Allocations, Owner};
use crate::cache::pods::SlimPod;
use podnet_model::k8s_openapi::api::core::v1::{Node, Pod};
use podnet_model::Kind;

fn web_pod(name: &str, ip: &str, ready: bool, extra: serde_json::Value) -> Pod {
    let mut v = json!({
        "metadata": {"name": name, "namespace": "shop", "uid": format!("u-{name}"), "labels": {"app": "web"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [
            {"name": "http", "containerPort": 8080},
            {"name": "metrics", "containerPort": 9090, "protocol": "UDP"}]}]},
        "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
    });
    if let Some(m) = extra.as_object() {
        for (k, val) in m {
            match k.as_str() {
                "deletionTimestamp" => v["metadata"]["deletionTimestamp"] = val.clone(),
                "phase" => v["status"]["phase"] = val.clone(),
                "containerPort" => {
                    v["spec"]["containers"][0]["ports"][0]["containerPort"] = val.clone()
                }
                _ => unreachable!(),
            }
        }
    }
    pod(v)
}

fn web_svc(extra: serde_json::Value) -> podnet_model::k8s_openapi::api::core::v1::Service {
    let mut spec = json!({"selector": {"app": "web"}, "clusterIP": "10.96.0.50",
        "ports": [{"name": "http", "port": 80, "targetPort": "http"}, {"name": "raw", "port": 81, "targetPort": 7000}]});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    service(
        json!({"metadata": {"name": "web", "namespace": "shop", "uid": "svc-uid", "labels": {"team": "a"}}, "spec": spec}),
    )
}

fn slim(p: &Pod) -> SlimPod {
    SlimPod::from_pod(p)
}

#[test]
fn slices_resolve_named_ports_per_pod_and_carry_kube_metadata() {
    let a = slim(&web_pod("a", "10.244.0.5", true, json!({})));
    let b = slim(&web_pod(
        "b",
        "10.244.1.5",
        true,
        json!({"containerPort": 8081}),
    ));
    let svc = web_svc(json!({}));
    let slices = desired_slices(&svc, &[&a, &b], 100);
    assert_eq!(
        slices.len(),
        2,
        "different resolutions go into different slices"
    );
    for s in &slices {
        assert_eq!(s.address_type, "IPv4");
        let l = s.metadata.labels.as_ref().unwrap();
        assert_eq!(l["kubernetes.io/service-name"], "web");
        assert_eq!(
            l["endpointslice.kubernetes.io/managed-by"],
            "endpointslice-controller.k8s.io"
        );
        assert_eq!(l["team"], "a");
        let o = &s.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (
                o.kind.as_str(),
                o.uid.as_str(),
                o.controller,
                o.block_owner_deletion
            ),
            ("Service", "svc-uid", Some(true), Some(true))
        );
        assert_eq!(s.endpoints.len(), 1);
        let ports = s.ports.as_ref().unwrap();
        assert_eq!(ports[1].port, Some(7000));
        let http = ports[0].port.unwrap();
        let ep = &s.endpoints[0];
        let pod = &ep.target_ref.as_ref().unwrap().name.clone().unwrap();
        assert_eq!(http, if pod == "a" { 8080 } else { 8081 });
        assert_eq!(ep.node_name.as_deref(), Some("n1"));
        assert!(s.metadata.name.as_ref().unwrap().starts_with("web-"));
        assert_eq!(s.metadata.name.as_ref().unwrap().len(), "web-".len() + 5);
    }
    // planning again gives identical names and content
    assert_eq!(desired_slices(&svc, &[&b, &a], 100), slices);
}

#[test]
fn named_port_missing_on_a_pod_is_left_out() {
    let svc = web_svc(json!({"ports": [{"name": "m", "port": 9, "targetPort": "metrics"}]}));
    // "metrics" is UDP on the pod; the service port is TCP: no match
    let a = slim(&web_pod("a", "10.244.0.5", true, json!({})));
    let s = desired_slices(&svc, &[&a], 100);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].ports, Some(vec![]));
    assert_eq!(s[0].endpoints.len(), 1);
}

#[test]
fn conditions_follow_kube() {
    let svc = web_svc(json!({}));
    let ready = slim(&web_pod("a", "10.244.0.1", true, json!({})));
    let not_ready = slim(&web_pod("b", "10.244.0.2", false, json!({})));
    let terminating = slim(&web_pod(
        "c",
        "10.244.0.3",
        true,
        json!({"deletionTimestamp": "2024-01-01T00:00:00Z"}),
    ));
    let done = slim(&web_pod(
        "d",
        "10.244.0.4",
        true,
        json!({"phase": "Succeeded"}),
    ));
    let no_ip = slim(&pod(
        json!({"metadata": {"name": "e", "namespace": "shop", "labels": {"app": "web"}}, "spec": {"containers": []}}),
    ));
    let s = desired_slices(
        &svc,
        &[&ready, &not_ready, &terminating, &done, &no_ip],
        100,
    );
    assert_eq!(s.len(), 1);
    let conds: Vec<(String, bool, bool, bool)> = s[0]
        .endpoints
        .iter()
        .map(|e| {
            let c = e.conditions.clone().unwrap();
            (
                e.target_ref.as_ref().unwrap().name.clone().unwrap(),
                c.ready.unwrap(),
                c.serving.unwrap(),
                c.terminating.unwrap(),
            )
        })
        .collect();
    assert_eq!(
        conds,
        vec![
            ("a".into(), true, true, false),
            ("b".into(), false, false, false),
            ("c".into(), false, true, true),
        ]
    );
    let publish = web_svc(json!({"publishNotReadyAddresses": true}));
    let s = desired_slices(&publish, &[&not_ready, &terminating], 100);
    assert!(s[0]
        .endpoints
        .iter()
        .all(|e| e.conditions.as_ref().unwrap().ready == Some(true)));
}

#[test]
fn at_most_max_endpoints_per_slice_and_placeholder_when_empty() {
    let svc = web_svc(json!({}));
    let pods: Vec<SlimPod> = (0..250)
        .map(|i| {
            slim(&web_pod(
                &format!("p{i:03}"),
                &format!("10.244.{}.{}", i / 200, i % 200 + 1),
                true,
                json!({}),
            ))
        })
        .collect();
    let refs: Vec<&SlimPod> = pods.iter().collect();
    let s = desired_slices(&svc, &refs, 100);
    assert_eq!(
        s.iter().map(|s| s.endpoints.len()).collect::<Vec<_>>(),
        vec![100, 100, 50]
    );
    let names: std::collections::HashSet<_> = s.iter().map(|s| s.metadata.name.clone()).collect();
    assert_eq!(names.len(), 3);
    let empty = desired_slices(&svc, &[], 100);
    assert_eq!(empty.len(), 1);
    assert!(empty[0].endpoints.is_empty());
    assert_eq!(
        empty[0].metadata.name.as_deref(),
        Some(slice_name("web", &[], 0).as_str())
    );
    let no_selector = web_svc(json!({"selector": {}}));
    assert!(desired_slices(&no_selector, &refs, 100).is_empty());
    let headless = web_svc(json!({"clusterIP": "None"}));
    let h = desired_slices(&headless, &refs[..1], 100);
    assert!(h[0]
        .metadata
        .labels
        .as_ref()
        .unwrap()
        .contains_key("service.kubernetes.io/headless"));
}

fn n(name: &str, extra: serde_json::Value) -> Node {
    let mut v =
        json!({"metadata": {"name": name, "uid": format!("u-{name}"), "labels": {"zone": "a"}}});
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    node(v)
}

fn unbound(name: &str, selector: serde_json::Value) -> Pod {
    pod(
        json!({"metadata": {"name": name, "namespace": "d"}, "spec": {"containers": [], "nodeSelector": selector}}),
    )
}

#[test]
fn scheduler_spreads_by_pod_count_then_name_and_honours_selectors() {
    let nodes = [
        n("b", json!({})),
        n("a", json!({})),
        n(
            "c",
            json!({"metadata": {"name": "c", "labels": {"zone": "b"}}}),
        ),
        n("cordoned", json!({"spec": {"unschedulable": true}})),
        n(
            "sick",
            json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
        ),
    ];
    let cands = candidates(nodes.iter(), |name| if name == "c" { 1 } else { 0 });
    assert_eq!(cands.len(), 3);
    let pods: Vec<Pod> = (0..4)
        .map(|i| unbound(&format!("p{i}"), json!({})))
        .collect();
    let zoned = unbound("z", json!({"zone": "b"}));
    let nowhere = unbound("x", json!({"zone": "mars"}));
    let (bound, unplaced) = schedule(pods.iter().chain([&zoned, &nowhere]), cands, &time());
    let placed: Vec<(String, String)> = bound
        .iter()
        .map(|p| {
            (
                p.metadata.name.clone().unwrap(),
                p.spec.as_ref().unwrap().node_name.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        placed,
        vec![
            ("p0".into(), "a".into()),
            ("p1".into(), "b".into()),
            ("p2".into(), "a".into()),
            ("p3".into(), "b".into()),
            ("z".into(), "c".into()),
        ]
    );
    assert_eq!(unplaced.len(), 1);
    let cond = &bound[0]
        .status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap()[0];
    assert_eq!(
        (cond.type_.as_str(), cond.status.as_str()),
        ("PodScheduled", "True")
    );
}

fn plan_commit_node(node: &Node, allocs: &mut Allocations) -> Node {
    let cfg = cfg();
    let ctx = Ctx {
        cfg: &cfg,
        pools: &[],
        now: time(),
    };
    commit(plan_node(node, &ctx, allocs, &mut rng()), node, allocs, 1).0
}

fn pod_cidr(n: &Node) -> Option<String> {
    n.spec.as_ref()?.pod_cidr.clone()
}

#[test]
fn pod_cidrs_lowest_free_first_explicit_honoured_or_reported() {
    let mut allocs = Allocations::new();
    let explicit = plan_commit_node(
        &n("x", json!({"spec": {"podCIDR": "10.244.0.0/24"}})),
        &mut allocs,
    );
    assert_eq!(
        explicit.spec.unwrap().pod_cidrs,
        Some(vec!["10.244.0.0/24".to_string()])
    );
    let a = plan_commit_node(&n("a", json!({})), &mut allocs);
    assert_eq!(pod_cidr(&a).as_deref(), Some("10.244.1.0/24"));
    let b = plan_commit_node(&n("b", json!({})), &mut allocs);
    assert_eq!(pod_cidr(&b).as_deref(), Some("10.244.2.0/24"));
    // idempotent
    let cfg = cfg();
    let ctx = Ctx {
        cfg: &cfg,
        pools: &[],
        now: time(),
    };
    let Planned::Plan(p) = plan_node(&b, &ctx, &mut allocs, &mut rng()) else {
        panic!()
    };
    assert!(p.is_noop());
    let dup = plan_commit_node(
        &n("dup", json!({"spec": {"podCIDR": "10.244.1.0/24"}})),
        &mut allocs,
    );
    let c = &dup.status.unwrap().conditions.unwrap()[0];
    assert_eq!(c.type_, POD_CIDR_ALLOCATED);
    assert_eq!(c.reason.as_deref(), Some("AlreadyAllocated"));
    let bad = plan_commit_node(
        &n("bad", json!({"spec": {"podCIDR": "10.0.0.0/24"}})),
        &mut allocs,
    );
    assert_eq!(
        bad.status.unwrap().conditions.unwrap()[0].reason.as_deref(),
        Some("Invalid")
    );
    // release of a deleted node's block lets the next node reuse the lowest
    allocs.remove(AllocKey::PodCidr("10.244.1.0/24".parse().unwrap()));
    let d = plan_commit_node(&n("d", json!({})), &mut allocs);
    assert_eq!(pod_cidr(&d).as_deref(), Some("10.244.1.0/24"));
}

#[test]
fn pod_cidr_exhaustion() {
    let mut allocs = Allocations::new();
    let mut cfg = cfg();
    cfg.cluster_cidr = "10.244.0.0/23".parse().unwrap();
    let ctx = Ctx {
        cfg: &cfg,
        pools: &[],
        now: time(),
    };
    for i in 0..3 {
        let node = n(&format!("n{i}"), json!({}));
        let (out, _) = commit(
            plan_node(&node, &ctx, &mut allocs, &mut rng()),
            &node,
            &mut allocs,
            1,
        );
        if i < 2 {
            assert!(pod_cidr(&out).is_some());
        } else {
            assert_eq!(
                out.status.unwrap().conditions.unwrap()[0].reason.as_deref(),
                Some("Exhausted")
            );
        }
    }
}

#[test]
fn gc_holds_only_what_the_owner_refers_to() {
    let svc = web_svc(json!({}));
    let owner = Owner::new(Kind::Service, Some("shop"), "web", "svc-uid");
    let ip = AllocKey::ServiceIp("10.96.0.50".parse().unwrap());
    assert!(holds(&ip, &owner, OwnerObject::Service(&svc)));
    assert!(!holds(&ip, &owner, OwnerObject::Absent));
    let other = AllocKey::ServiceIp("10.96.0.51".parse().unwrap());
    assert!(!holds(&other, &owner, OwnerObject::Service(&svc)));
    let old_owner = Owner::new(Kind::Service, Some("shop"), "web", "previous-uid");
    assert!(!holds(&ip, &old_owner, OwnerObject::Service(&svc)));
    let np = AllocKey::NodePort(crate::alloc::Protocol::Tcp, 30080);
    let mut with_np = web_svc(json!({"type": "NodePort"}));
    with_np.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].node_port = Some(30080);
    assert!(holds(&np, &owner, OwnerObject::Service(&with_np)));
    with_np.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
    assert!(!holds(&np, &owner, OwnerObject::Service(&with_np)));
}
