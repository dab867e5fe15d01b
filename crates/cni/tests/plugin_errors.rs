//! Bad input, unavailable stores and STATUS/VERSION: each failing ADD returns the
//! right error object and leaves no veth, address or store key behind.

mod plugin_support;

use plugin_support::{addresses, Lab};
use serde_json::json;

/// (what, CNI_* variables, stdin, expected code, a word the message must hold)
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, u64, &'a str);

#[test]
fn bad_input_table() {
    let mut lab = Lab::new(Some("10.244.8.0/24"));
    let pod = lab.pod();
    let pod_ns = Lab::ns_of(&pod).to_string();
    let cfg = lab.config().to_string();
    let long_if = "eth0123456789abcdef";
    let cases: Vec<Case<'_>> = vec![
        (
            "malformed json",
            vec![("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "c1"), ("CNI_NETNS", &pod), ("CNI_IFNAME", "eth0")],
            "{\"cniVersion\": \"1.1.0\",".to_string(),
            6,
            "decode",
        ),
        (
            "missing CNI_COMMAND",
            vec![("CNI_CONTAINERID", "c1"), ("CNI_NETNS", &pod), ("CNI_IFNAME", "eth0")],
            cfg.clone(),
            4,
            "CNI_COMMAND",
        ),
        (
            "missing CNI_CONTAINERID",
            vec![("CNI_COMMAND", "ADD"), ("CNI_NETNS", &pod), ("CNI_IFNAME", "eth0")],
            cfg.clone(),
            4,
            "CNI_CONTAINERID",
        ),
        (
            "missing CNI_IFNAME",
            vec![("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "c1"), ("CNI_NETNS", &pod)],
            cfg.clone(),
            4,
            "CNI_IFNAME",
        ),
        (
            "container id with a slash",
            vec![("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "a/b"), ("CNI_NETNS", &pod), ("CNI_IFNAME", "eth0")],
            cfg.clone(),
            4,
            "CNI_CONTAINERID",
        ),
        (
            "container id ..",
            vec![("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", ".."), ("CNI_NETNS", &pod), ("CNI_IFNAME", "eth0")],
            cfg.clone(),
            4,
            "CNI_CONTAINERID",
        ),
        (
            "ifname too long",
            vec![("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "c1"), ("CNI_NETNS", &pod), ("CNI_IFNAME", long_if)],
            cfg.clone(),
            4,
            "CNI_IFNAME",
        ),
        (
            "netns not a namespace",
            vec![("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "c1"), ("CNI_NETNS", "/etc/hostname"), ("CNI_IFNAME", "eth0")],
            cfg.clone(),
            4,
            "not a network namespace",
        ),
        (
            "netns missing",
            vec![("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "c1"), ("CNI_NETNS", "/run/netns/pncni-nope"), ("CNI_IFNAME", "eth0")],
            cfg.clone(),
            3,
            "does not exist",
        ),
        (
            "config without store",
            vec![("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "c1"), ("CNI_NETNS", &pod), ("CNI_IFNAME", "eth0")],
            json!({"cniVersion":"1.1.0","name":"podnet","type":"podnet","node":"node-1"}).to_string(),
            7,
            "store",
        ),
        (
            "unsupported cniVersion",
            vec![("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "c1"), ("CNI_NETNS", &pod), ("CNI_IFNAME", "eth0")],
            json!({"cniVersion":"9.9.9","name":"podnet","type":"podnet","store":"/x","node":"node-1"}).to_string(),
            1,
            "9.9.9",
        ),
        (
            "store unreachable",
            vec![("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "c1"), ("CNI_NETNS", &pod), ("CNI_IFNAME", "eth0")],
            json!({"cniVersion":"1.1.0","name":"podnet","type":"podnet","store":"/etc/hostname/state.db","node":"node-1"}).to_string(),
            11,
            "store",
        ),
        (
            "etcd unreachable",
            vec![
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "c1"),
                ("CNI_NETNS", &pod),
                ("CNI_IFNAME", "eth0"),
            ],
            json!({"cniVersion":"1.1.0","name":"podnet","type":"podnet","store":"etcd://127.0.0.1:1","node":"node-1"}).to_string(),
            11,
            "store unavailable",
        ),
        (
            "unknown node",
            vec![("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "c1"), ("CNI_NETNS", &pod), ("CNI_IFNAME", "eth0")],
            {
                let mut c = lab.config();
                c["node"] = json!("node-9");
                c.to_string()
            },
            101,
            "node node-9 not found",
        ),
    ];
    for (name, vars, stdin, code, needle) in cases {
        let run = lab.exec_raw(&vars, stdin.as_bytes());
        let msg = run.err(code);
        assert!(
            msg.contains(needle),
            "{name}: {msg:?} should mention {needle:?}"
        );
        assert!(
            lab.node_veths().is_empty(),
            "{name}: left {:?}",
            lab.node_veths()
        );
        assert!(
            addresses(&pod_ns, "eth0").is_empty(),
            "{name}: pod has an address"
        );
        assert!(
            lab.ipam_keys().is_empty(),
            "{name}: left {:?}",
            lab.ipam_keys()
        );
    }
}

#[test]
fn exhausted_pod_cidr() {
    let mut lab = Lab::new(Some("10.244.9.0/30"));
    let (a, b) = (lab.pod(), lab.pod());
    let r = lab.add("first", &a).ok().json();
    assert_eq!(r["ips"][0]["address"], "10.244.9.2/30", "{r}");
    let veths = lab.node_veths();
    let msg = lab.add("second", &b).err(103);
    assert!(
        msg.contains("10.244.9.0/30") && msg.contains("exhausted"),
        "{msg}"
    );
    assert_eq!(lab.node_veths(), veths, "the failed ADD left a veth");
    assert_eq!(lab.keys("/registry/podnet.io/ipam-attachments/").len(), 1);
    assert!(plugin_support::link_names(Lab::ns_of(&b)) == vec!["lo".to_string()]);
}

#[test]
fn ifname_taken_in_pod_is_undone() {
    let mut lab = Lab::new(Some("10.244.10.0/24"));
    let pod = lab.pod();
    let ns = Lab::ns_of(&pod).to_string();
    // Something else already called eth0 in the pod.
    plugin_support::run_ok(&[
        "ip", "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", "other0",
    ]);
    let msg = lab.add("c1", &pod).err(100);
    assert!(msg.contains("eth0"), "{msg}");
    assert!(lab.node_veths().is_empty(), "{:?}", lab.node_veths());
    assert!(lab.ipam_keys().is_empty(), "{:?}", lab.ipam_keys());
}

#[test]
fn status_and_version() {
    let lab = Lab::new(Some("10.244.11.0/24"));
    let status = |cfg: &serde_json::Value| {
        lab.exec_raw(&[("CNI_COMMAND", "STATUS")], cfg.to_string().as_bytes())
    };
    let ok = status(&lab.config()).ok();
    assert!(ok.stdout.is_empty(), "{ok:?}");

    lab.put_node(None);
    let msg = status(&lab.config()).err(50);
    assert!(msg.contains("no spec.podCIDR"), "{msg}");
    let mut other = lab.config();
    other["node"] = json!("node-missing");
    let msg = status(&other).err(51);
    assert!(msg.contains("not found"), "{msg}");
    let mut bad = lab.config();
    bad["store"] = json!("/etc/hostname/state.db");
    status(&bad).err(50);

    // VERSION answers in the requested version and lists what podnet speaks.
    let v = lab
        .exec_raw(&[("CNI_COMMAND", "VERSION")], br#"{"cniVersion":"1.0.0"}"#)
        .ok()
        .json();
    assert_eq!(v["cniVersion"], "1.0.0", "{v}");
    let versions: Vec<&str> = v["supportedVersions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert!(
        versions.contains(&"1.1.0") && versions.contains(&"0.4.0"),
        "{v}"
    );
}
