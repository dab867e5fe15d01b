//! ADD, CHECK and DEL of the real plugin binary, run as a runtime would inside a test
//! "node" namespace against pod namespaces; asserts on what the kernel and the store
//! hold and on packets that arrive.

mod plugin_support;

use plugin_support::{addresses, ping, Lab};
use serde_json::json;

const CIDR: &str = "10.244.7.0/24";

#[test]
fn add_check_del_lifecycle() {
    let mut lab = Lab::new(Some(CIDR));
    let pod = lab.pod();
    let pod_ns = Lab::ns_of(&pod).to_string();

    let r = lab.add("ctr1", &pod).ok().json();
    assert_eq!(r["cniVersion"], "1.1.0", "{r}");
    assert_eq!(r["ips"][0]["address"], "10.244.7.2/24", "{r}");
    assert_eq!(r["ips"][0]["gateway"], "10.244.7.1", "{r}");
    assert_eq!(r["ips"][0]["interface"], 2, "{r}");
    assert!(
        r["ips"][0].get("version").is_none(),
        "1.x results carry no ip version: {r}"
    );
    assert_eq!(r["interfaces"][0]["name"], "cni0", "{r}");
    let host_veth = r["interfaces"][1]["name"].as_str().unwrap().to_string();
    assert!(
        host_veth.starts_with("veth") && host_veth.len() <= 15,
        "{r}"
    );
    assert!(r["interfaces"][1]["mac"].is_string(), "{r}");
    assert_eq!(r["interfaces"][2]["name"], "eth0", "{r}");
    assert_eq!(r["interfaces"][2]["sandbox"], pod.as_str(), "{r}");
    assert_eq!(r["interfaces"][2]["mac"], "0a:58:0a:f4:07:02", "{r}");
    assert_eq!(
        r["interfaces"][2]["mtu"], 1450,
        "vxlan default: 1500 - 50: {r}"
    );
    assert_eq!(
        r["routes"],
        json!([{"dst": "0.0.0.0/0", "gw": "10.244.7.1"}]),
        "{r}"
    );

    // The kernel: the pod has the address, the bridge the gateway, and packets flow.
    assert_eq!(addresses(&pod_ns, "eth0"), vec!["10.244.7.2/24"]);
    assert_eq!(addresses(&lab.node_ns, "cni0"), vec!["10.244.7.1/24"]);
    assert!(lab.node_links().contains(&host_veth));
    assert!(ping(&pod_ns, "10.244.7.1"), "pod cannot ping its gateway");
    assert_eq!(
        lab.keys("/registry/podnet.io/ipam/node-1/"),
        vec!["/registry/podnet.io/ipam/node-1/10.244.7.2"]
    );
    assert_eq!(
        lab.keys("/registry/podnet.io/ipam-attachments/node-1/"),
        vec!["/registry/podnet.io/ipam-attachments/node-1/ctr1/eth0"]
    );

    // ADD again for the same attachment: the same address, and the intact wiring is
    // left alone (same link).
    let index_before = ifindex(&lab.node_ns, &host_veth);
    let again = lab.add("ctr1", &pod).ok().json();
    assert_eq!(again["ips"][0]["address"], "10.244.7.2/24", "{again}");
    assert_eq!(again, r, "a repeated ADD returns the same result");
    assert_eq!(ifindex(&lab.node_ns, &host_veth), index_before);
    assert!(
        ping(&pod_ns, "10.244.7.1"),
        "pod cannot ping its gateway after ADD again"
    );

    // Broken wiring (the veth deleted behind the plugin's back) is rebuilt by ADD.
    plugin_support::run_ok(&["ip", "-n", &lab.node_ns, "link", "del", &host_veth]);
    assert!(!ping(&pod_ns, "10.244.7.1"));
    let rebuilt = lab.add("ctr1", &pod).ok().json();
    assert_eq!(rebuilt["ips"][0]["address"], "10.244.7.2/24", "{rebuilt}");
    assert!(
        ping(&pod_ns, "10.244.7.1"),
        "pod cannot ping its gateway after the rebuild"
    );

    // CHECK passes, then fails once the pod's address is gone.
    let mut cfg = lab.config();
    cfg["prevResult"] = again.clone();
    lab.exec("CHECK", "ctr1", &pod, "eth0", "", &cfg).ok();
    Lab::in_ns(
        &pod_ns,
        &["ip", "addr", "del", "10.244.7.2/24", "dev", "eth0"],
    );
    let msg = lab.exec("CHECK", "ctr1", &pod, "eth0", "", &cfg).err(104);
    assert!(msg.contains("lacks address 10.244.7.2/24"), "{msg}");

    // DEL releases both keys and removes the veth; a second DEL and one without a
    // netns succeed.
    lab.del("ctr1", &pod).ok();
    assert!(lab.ipam_keys().is_empty(), "{:?}", lab.ipam_keys());
    assert!(!lab.node_links().contains(&host_veth));
    assert!(!plugin_support::link_names(&pod_ns).contains(&"eth0".to_string()));
    lab.del("ctr1", &pod).ok();
    lab.exec("DEL", "ctr1", "", "eth0", "", &lab.config()).ok();
    lab.exec(
        "DEL",
        "gone",
        "/run/netns/pncni-does-not-exist",
        "eth0",
        "",
        &lab.config(),
    )
    .ok();
}

fn ifindex(ns: &str, dev: &str) -> u64 {
    let out = plugin_support::run_ok(&["ip", "-n", ns, "-j", "link", "show", dev]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["ifindex"].as_u64().unwrap()
}

#[test]
fn two_pods_get_distinct_addresses_and_reach_each_other() {
    let mut lab = Lab::new(Some(CIDR));
    let (a, b) = (lab.pod(), lab.pod());
    let ra = lab.add("ctr-a", &a).ok().json();
    let rb = lab.add("ctr-b", &b).ok().json();
    let ip_a = ra["ips"][0]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let ip_b = rb["ips"][0]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(ip_a, ip_b);
    assert!(
        ping(Lab::ns_of(&a), &ip_b),
        "pod a cannot ping pod b at {ip_b}"
    );
    assert!(
        ping(Lab::ns_of(&b), &ip_a),
        "pod b cannot ping pod a at {ip_a}"
    );
    // Hairpin is on for every host port.
    let host = rb["interfaces"][1]["name"].as_str().unwrap();
    let out = plugin_support::run_ok(&["ip", "-n", &lab.node_ns, "-d", "-j", "link", "show", host]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["linkinfo"]["info_slave_data"]["hairpin"], true, "{v}");
    assert_eq!(v[0]["master"], "cni0", "{v}");
    lab.del("ctr-a", &a).ok();
    lab.del("ctr-b", &b).ok();
    assert!(lab.ipam_keys().is_empty());
    assert!(lab.node_veths().is_empty(), "{:?}", lab.node_veths());
}

#[test]
fn result_in_0_4_0_shape() {
    let mut lab = Lab::new(Some(CIDR));
    let pod = lab.pod();
    let r = lab
        .exec("ADD", "old", &pod, "eth0", "", &lab.config_version("0.4.0"))
        .ok()
        .json();
    assert_eq!(r["cniVersion"], "0.4.0", "{r}");
    assert_eq!(r["ips"][0]["version"], "4", "{r}");
    assert_eq!(r["ips"][0]["address"], "10.244.7.2/24", "{r}");
    assert!(
        r["interfaces"][2].get("mtu").is_none(),
        "no mtu before 1.1.0: {r}"
    );
    lab.exec("DEL", "old", &pod, "eth0", "", &lab.config_version("0.4.0"))
        .ok();
}

#[test]
fn requested_ip_is_honoured_or_refused() {
    let mut lab = Lab::new(Some(CIDR));
    let (a, b, c) = (lab.pod(), lab.pod(), lab.pod());
    let mut cfg = lab.config();
    cfg["runtimeConfig"] = json!({"ips": ["10.244.7.50/24"]});
    let r = lab.exec("ADD", "want50", &a, "eth0", "", &cfg).ok().json();
    assert_eq!(r["ips"][0]["address"], "10.244.7.50/24", "{r}");
    assert_eq!(addresses(Lab::ns_of(&a), "eth0"), vec!["10.244.7.50/24"]);

    // Taken: a clear error, and nothing left behind for that container.
    let veths_before = lab.node_veths();
    let msg = lab.exec("ADD", "also50", &b, "eth0", "", &cfg).err(102);
    assert!(
        msg.contains("already allocated to container want50"),
        "{msg}"
    );
    assert_eq!(lab.node_veths(), veths_before);
    assert!(addresses(Lab::ns_of(&b), "eth0").is_empty());

    // CNI_ARGS IP= works too; outside the CIDR is refused.
    let r = lab
        .exec("ADD", "arg", &b, "eth0", "IP=10.244.7.77", &lab.config())
        .ok()
        .json();
    assert_eq!(r["ips"][0]["address"], "10.244.7.77/24", "{r}");
    let msg = lab
        .exec("ADD", "outside", &c, "eth0", "IP=10.9.9.9", &lab.config())
        .err(102);
    assert!(msg.contains("outside the node's pod cidr"), "{msg}");
    assert_eq!(lab.keys("/registry/podnet.io/ipam-attachments/").len(), 2);
}

#[test]
fn mtu_comes_from_the_cluster_config_and_dns_from_the_config() {
    let mut lab = Lab::new(Some(CIDR));
    let cc: podnet_model::ClusterConfig = serde_json::from_value(json!({
        "apiVersion": "podnet.io/v1alpha1",
        "kind": "ClusterConfig",
        "metadata": {"name": "default"},
        "spec": {"mtu": 9000, "overlay": {"mode": "host-gw"}}
    }))
    .unwrap();
    lab.rt
        .block_on(
            podnet_store::Api::new(lab.store.clone()).put(&podnet_model::Object::ClusterConfig(cc)),
        )
        .unwrap();
    let pod = lab.pod();
    let mut cfg = lab.config();
    cfg["dns"] = json!({"nameservers": ["10.96.0.10"], "search": ["default.svc.cluster.local"]});
    let r = lab.exec("ADD", "mtu", &pod, "eth0", "", &cfg).ok().json();
    assert_eq!(
        r["interfaces"][2]["mtu"], 9000,
        "host-gw: the underlay mtu: {r}"
    );
    assert_eq!(r["dns"]["nameservers"], json!(["10.96.0.10"]), "{r}");
    let out = plugin_support::run_ok(&["ip", "-n", Lab::ns_of(&pod), "-j", "link", "show", "eth0"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["mtu"], 9000, "{v}");

    // An explicit "mtu" wins.
    let pod2 = lab.pod();
    let mut cfg = lab.config();
    cfg["mtu"] = json!(1400);
    let r = lab.exec("ADD", "mtu2", &pod2, "eth0", "", &cfg).ok().json();
    assert_eq!(r["interfaces"][2]["mtu"], 1400, "{r}");
}
