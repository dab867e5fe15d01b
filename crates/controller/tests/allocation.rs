//! End to end over the embedded store: objects in through the typed API, the
//! controller running in the background, assertions on what it stored.

mod common;

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use common::*;
use podnet_model::{Kind, Object};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

async fn wait_ip(store: &std::sync::Arc<dyn podnet_store::Store>, ns: &str, name: &str) -> String {
    eventually(&format!("a cluster IP for {ns}/{name}"), WAIT, || async {
        cluster_ip(&get(store, Kind::Service, Some(ns), name).await?)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_nodes_and_slices_are_allocated_released_and_stable_across_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(&tmp.path().join("s.db"));
    for n in ["node-1", "node-2"] {
        put(&store, node_json(n)).await;
    }
    put(&store, svc_json("kube-system", "kube-dns", json!({"selector": {"k8s-app": "kube-dns"},
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}))).await;
    put(
        &store,
        svc_json(
            "shop",
            "web",
            json!({"type": "NodePort", "selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}),
        ),
    )
    .await;
    put(&store, svc_json("shop", "db", json!({"clusterIP": "10.96.100.100", "selector": {"app": "db"}, "ports": [{"port": 5432}]}))).await;
    for i in 0..20 {
        put(
            &store,
            svc_json(
                "many",
                &format!("s{i}"),
                json!({"selector": {"i": format!("{i}")}, "ports": [{"port": 80}]}),
            ),
        )
        .await;
    }
    put(
        &store,
        pod_json("shop", "web-1", json!({"app": "web"}), "10.244.0.5", true),
    )
    .await;
    put(
        &store,
        pod_json("shop", "web-2", json!({"app": "web"}), "10.244.1.5", false),
    )
    .await;
    put(
        &store,
        pod_json(
            "kube-system",
            "coredns",
            json!({"k8s-app": "kube-dns"}),
            "10.244.0.2",
            true,
        ),
    )
    .await;

    let ctrl = start(store.clone(), options("a"));

    assert_eq!(
        wait_ip(&store, "kube-system", "kube-dns").await,
        "10.96.0.10"
    );
    assert_eq!(wait_ip(&store, "shop", "db").await, "10.96.100.100");
    let mut seen = HashSet::new();
    for i in 0..20 {
        let ip: IpAddr = wait_ip(&store, "many", &format!("s{i}"))
            .await
            .parse()
            .unwrap();
        assert!("10.96.0.0/12"
            .parse::<ipnet::IpNet>()
            .unwrap()
            .contains(&ip));
        assert!(seen.insert(ip));
    }
    let web = eventually("web's node port", WAIT, || async {
        let o = get(&store, Kind::Service, Some("shop"), "web").await?;
        let p = service(&o).spec.as_ref()?.ports.as_ref()?[0].node_port?;
        Some((o, p))
    })
    .await;
    assert!((30000..=32767).contains(&web.1));
    let web_uid = service(&web.0).metadata.uid.clone().expect("uid given");

    // nodes got the two lowest pod CIDRs
    let cidrs: HashSet<String> = eventually("pod CIDRs", WAIT, || async {
        let nodes = list(&store, Kind::Node).await;
        nodes
            .iter()
            .map(|o| match o {
                Object::Node(n) => n.spec.as_ref()?.pod_cidr.clone(),
                _ => None,
            })
            .collect::<Option<HashSet<_>>>()
    })
    .await;
    assert_eq!(
        cidrs,
        HashSet::from(["10.244.0.0/24".to_string(), "10.244.1.0/24".to_string()])
    );

    // web's slice: two endpoints, the named port resolved, conditions as kube
    let slice = eventually("web's slice with 2 endpoints", WAIT, || async {
        list(&store, Kind::EndpointSlice)
            .await
            .into_iter()
            .find_map(|o| match o {
                Object::EndpointSlice(s)
                    if s.metadata
                        .labels
                        .as_ref()?
                        .get("kubernetes.io/service-name")?
                        == "web"
                        && s.endpoints.len() == 2 =>
                {
                    Some(s)
                }
                _ => None,
            })
    })
    .await;
    assert_eq!(slice.metadata.namespace.as_deref(), Some("shop"));
    assert_eq!(
        slice.metadata.owner_references.as_ref().unwrap()[0].uid,
        web_uid
    );
    assert_eq!(slice.ports.as_ref().unwrap()[0].port, Some(8080));
    let ready: Vec<(String, bool)> = slice
        .endpoints
        .iter()
        .map(|e| {
            (
                e.addresses[0].clone(),
                e.conditions.as_ref().unwrap().ready.unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ready,
        vec![("10.244.0.5".into(), true), ("10.244.1.5".into(), false)]
    );

    // an explicit address held by another service: condition, no address
    put(
        &store,
        svc_json(
            "shop",
            "db-copy",
            json!({"clusterIP": "10.96.100.100", "ports": [{"port": 1}]}),
        ),
    )
    .await;
    let cond = eventually("AlreadyAllocated on db-copy", WAIT, || async {
        let o = get(&store, Kind::Service, Some("shop"), "db-copy").await?;
        let c = service(&o)
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .first()?
            .clone();
        Some(c)
    })
    .await;
    assert_eq!(
        (
            cond.type_.as_str(),
            cond.status.as_str(),
            cond.reason.as_str()
        ),
        ("podnet.io/ClusterIPAllocated", "False", "AlreadyAllocated")
    );
    assert!(cond.message.contains("Service shop/db"), "{}", cond.message);
    assert_no_duplicates(&store).await;

    // a pod goes away: the slice follows
    delete(&store, Kind::Pod, Some("shop"), "web-2").await;
    eventually("web's slice shrinks", WAIT, || async {
        list(&store, Kind::EndpointSlice)
            .await
            .into_iter()
            .find_map(|o| match o {
                Object::EndpointSlice(s)
                    if s.metadata
                        .labels
                        .as_ref()?
                        .get("kubernetes.io/service-name")?
                        == "web"
                        && s.endpoints.len() == 1 =>
                {
                    Some(())
                }
                _ => None,
            })
    })
    .await;

    // restart: nothing is rewritten
    ctrl.stop().await;
    let before = store.revision().await.unwrap();
    let snapshot = store.range("/registry/").await.unwrap().kvs;
    let ctrl = start(store.clone(), options("b"));
    eventually("the restarted controller leads", WAIT, || async {
        (leader(&store).await.as_deref() == Some("b")).then_some(())
    })
    .await;
    // a sentinel node written after the restart is planned with (or after) the first
    // full pass, in the node phase that follows the service and slice phases of its
    // batch: once it has its pod CIDR, that pass is done
    put(&store, node_json("node-sentinel")).await;
    eventually("the sentinel's pod CIDR", WAIT, || async {
        match get(&store, Kind::Node, None, "node-sentinel").await? {
            Object::Node(n) => n.spec?.pod_cidr,
            _ => None,
        }
    })
    .await;
    let sentinel_keys = [
        "/registry/minions/node-sentinel".to_string(),
        "/registry/podnet.io/allocations/podcidrs/10.244.2.0_24".to_string(),
    ];
    let after: Vec<_> = store
        .range("/registry/")
        .await
        .unwrap()
        .kvs
        .into_iter()
        .filter(|kv| kv.key != podnet_controller::LEADER_KEY)
        .collect();
    let before_kvs: Vec<_> = snapshot
        .into_iter()
        .filter(|kv| kv.key != podnet_controller::LEADER_KEY)
        .collect();
    let changed: Vec<&String> = after
        .iter()
        .filter(|kv| kv.mod_revision > before)
        .map(|kv| &kv.key)
        .filter(|k| !sentinel_keys.contains(k))
        .collect();
    assert!(changed.is_empty(), "restart rewrote {changed:?}");
    assert_eq!(after.len(), before_kvs.len() + 2);

    // deleting the holder frees the address; the waiting service then gets it
    delete(&store, Kind::Service, Some("shop"), "db").await;
    eventually("db-copy gets 10.96.100.100", WAIT, || async {
        let o = get(&store, Kind::Service, Some("shop"), "db-copy").await?;
        let s = service(&o);
        (s.spec.as_ref()?.cluster_ips.as_deref() == Some(&["10.96.100.100".to_string()][..])
            && s.status
                .as_ref()
                .and_then(|st| st.conditions.as_ref())
                .is_none())
        .then_some(())
    })
    .await;

    // deleting a service releases everything it held and removes its slices
    delete(&store, Kind::Service, Some("shop"), "web").await;
    eventually("web's allocations and slices gone", WAIT, || async {
        let allocs = allocations(&store).await;
        let owned = allocs
            .values()
            .any(|o| o["name"] == "web" && o["namespace"] == "shop");
        let slices = list(&store, Kind::EndpointSlice)
            .await
            .into_iter()
            .any(|o| {
                o.namespace() == Some("shop")
                    && o.meta()
                        .labels
                        .as_ref()
                        .and_then(|l| l.get("kubernetes.io/service-name"))
                        .map(String::as_str)
                        == Some("web")
            });
        (!owned && !slices).then_some(())
    })
    .await;
    // a deleted node gives its block back
    delete(&store, Kind::Node, None, "node-2").await;
    eventually("node-2's pod CIDR released", WAIT, || async {
        let allocs = allocations(&store).await;
        (!allocs.values().any(|o| o["name"] == "node-2")).then_some(())
    })
    .await;
    assert_no_duplicates(&store).await;
    ctrl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_binds_pending_pods_to_the_least_loaded_node() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(&tmp.path().join("s.db"));
    put(&store, node_json("node-a")).await;
    put(&store, node_json("node-b")).await;
    put(&store, json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-c"}, "spec": {"unschedulable": true}})).await;
    for i in 0..4 {
        put(&store, json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("p{i}"), "namespace": "d"},
            "spec": {"containers": [{"name": "c"}]}})).await;
    }
    put(&store, json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "picky", "namespace": "d"},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": "node-b"}, "containers": [{"name": "c"}]}})).await;
    let ctrl = start(store.clone(), options("s"));
    let placed = eventually("all pods bound", WAIT, || async {
        let pods = list(&store, Kind::Pod).await;
        pods.iter()
            .map(|o| match o {
                Object::Pod(p) => Some((o.name().to_string(), p.spec.as_ref()?.node_name.clone()?)),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
    })
    .await;
    let on = |n: &str| placed.iter().filter(|(_, node)| node == n).count();
    assert_eq!(on("node-c"), 0);
    assert!(placed.contains(&("picky".to_string(), "node-b".to_string())));
    assert!(on("node-a").abs_diff(on("node-b")) <= 1, "{placed:?}");
    ctrl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_config_from_the_store_drives_ranges_and_pools() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(&tmp.path().join("s.db"));
    put(&store, json!({"apiVersion": "podnet.io/v1alpha1", "kind": "ClusterConfig", "metadata": {"name": "default"},
        "spec": {"serviceCIDR": "10.100.0.0/16", "nodePortRange": "31000-31010",
            "loadBalancerPools": [{"name": "lab", "addresses": ["192.0.2.10-192.0.2.11"]}]}}))
    .await;
    put(
        &store,
        svc_json(
            "d",
            "lb",
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
        "selector": {"app": "x"}, "ports": [{"port": 80}]}),
        ),
    )
    .await;
    put(
        &store,
        svc_json(
            "kube-system",
            "kube-dns",
            json!({"ports": [{"port": 53, "protocol": "UDP"}]}),
        ),
    )
    .await;
    let ctrl = start(store.clone(), options("cfg"));
    assert_eq!(
        wait_ip(&store, "kube-system", "kube-dns").await,
        "10.100.0.10"
    );
    let lb = eventually("the LB address", WAIT, || async {
        let o = get(&store, Kind::Service, Some("d"), "lb").await?;
        let s = service(&o).clone();
        s.status
            .as_ref()?
            .load_balancer
            .as_ref()?
            .ingress
            .as_ref()?
            .first()?
            .ip
            .as_ref()?;
        Some(s)
    })
    .await;
    let spec = lb.spec.clone().unwrap();
    assert!(spec.cluster_ip.unwrap().starts_with("10.100."));
    assert!((31000..=31010).contains(&spec.ports.unwrap()[0].node_port.unwrap()));
    assert!((31000..=31010).contains(&spec.health_check_node_port.unwrap()));
    let ip = lb.status.unwrap().load_balancer.unwrap().ingress.unwrap()[0]
        .ip
        .clone();
    assert_eq!(ip.as_deref(), Some("192.0.2.10"));
    let allocs = allocations(&store).await;
    assert!(allocs.contains_key("/registry/podnet.io/allocations/lbips/192.0.2.10"));
    ctrl.stop().await;
}
