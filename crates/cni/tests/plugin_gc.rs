//! GC against the runtime's list of valid attachments, and crash safety: a plugin
//! killed at any step (failpoints) leaves nothing that DEL or GC cannot reclaim.

mod plugin_support;

use plugin_support::{addresses, ping, Lab};
use serde_json::{json, Value};

const CIDR: &str = "10.244.12.0/24";

fn gc(lab: &Lab, key: &str, valid: Value) -> plugin_support::Run {
    let mut cfg = lab.config();
    cfg[key] = valid;
    lab.exec_raw(
        &[("CNI_COMMAND", "GC"), ("CNI_PATH", "/nonexistent")],
        cfg.to_string().as_bytes(),
    )
}

#[test]
fn gc_releases_what_is_not_valid() {
    let mut lab = Lab::new(Some(CIDR));
    let (a, b, c) = (lab.pod(), lab.pod(), lab.pod());
    let ra = lab.add("keep", &a).ok().json();
    lab.add("drop1", &b).ok();
    lab.add("drop2", &c).ok();
    assert_eq!(lab.node_veths().len(), 3);

    gc(
        &lab,
        "cni.dev/valid-attachments",
        json!([{"containerID": "keep", "ifname": "eth0"}]),
    )
    .ok();
    assert_eq!(
        lab.keys("/registry/podnet.io/ipam-attachments/"),
        vec!["/registry/podnet.io/ipam-attachments/node-1/keep/eth0"]
    );
    assert_eq!(lab.keys("/registry/podnet.io/ipam/").len(), 1);
    assert_eq!(
        lab.node_veths(),
        vec![ra["interfaces"][1]["name"].as_str().unwrap().to_string()]
    );
    assert!(addresses(Lab::ns_of(&b), "eth0").is_empty());
    assert!(
        ping(Lab::ns_of(&a), "10.244.12.1"),
        "the kept pod lost connectivity"
    );

    // The legacy key works too; GC without any list is refused rather than releasing all.
    gc(&lab, "cni.dev/attachments", json!([])).ok();
    assert!(lab.ipam_keys().is_empty(), "{:?}", lab.ipam_keys());
    assert!(lab.node_veths().is_empty());
    let msg = lab
        .exec_raw(
            &[("CNI_COMMAND", "GC"), ("CNI_PATH", "/nonexistent")],
            lab.config().to_string().as_bytes(),
        )
        .err(7);
    assert!(msg.contains("valid-attachments"), "{msg}");
}

#[test]
fn crash_at_each_step_is_reclaimed_by_del() {
    for fp in ["after-alloc", "after-bridge", "after-veth"] {
        let mut lab = Lab::new(Some(CIDR));
        let pod = lab.pod();
        let cfg = lab.config();
        let run = lab.exec_fp("ADD", "crash", &pod, "eth0", "", &cfg, Some(fp));
        assert_eq!(
            run.code, -1,
            "{fp}: the plugin should have been killed: {run:?}"
        );
        assert!(run.stdout.is_empty(), "{fp}: {run:?}");
        // The allocation is whole (both keys) or absent; here it was made.
        assert_eq!(lab.ipam_keys().len(), 2, "{fp}: {:?}", lab.ipam_keys());
        if fp == "after-veth" {
            assert_eq!(lab.node_veths().len(), 1, "{fp}");
        }
        // The runtime retries ADD: same address, working pod.
        let r = lab.add("crash", &pod).ok().json();
        assert_eq!(r["ips"][0]["address"], "10.244.12.2/24", "{fp}: {r}");
        assert!(
            ping(Lab::ns_of(&pod), "10.244.12.1"),
            "{fp}: no connectivity"
        );
        lab.del("crash", &pod).ok();
        assert!(lab.ipam_keys().is_empty(), "{fp}: {:?}", lab.ipam_keys());
        assert!(lab.node_veths().is_empty(), "{fp}: {:?}", lab.node_veths());

        // Crash again, and this time the runtime gives up on the pod: DEL cleans up.
        let run = lab.exec_fp("ADD", "crash2", &pod, "eth0", "", &cfg, Some(fp));
        assert_ne!(run.code, 0);
        lab.del("crash2", &pod).ok();
        assert!(lab.ipam_keys().is_empty(), "{fp}: {:?}", lab.ipam_keys());
        assert!(lab.node_veths().is_empty(), "{fp}: {:?}", lab.node_veths());
    }
}

#[test]
fn crash_then_gc_reclaims() {
    let mut lab = Lab::new(Some(CIDR));
    let pod = lab.pod();
    let cfg = lab.config();
    let run = lab.exec_fp("ADD", "lost", &pod, "eth0", "", &cfg, Some("after-veth"));
    assert_ne!(run.code, 0);
    assert_eq!(lab.node_veths().len(), 1);
    gc(&lab, "cni.dev/valid-attachments", json!([])).ok();
    assert!(lab.ipam_keys().is_empty(), "{:?}", lab.ipam_keys());
    assert!(lab.node_veths().is_empty(), "{:?}", lab.node_veths());
}
