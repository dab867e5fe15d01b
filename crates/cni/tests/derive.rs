//! Section 3: deriving each plugin's request configuration from a list, checked against
//! the spec's appendix examples.

use serde_json::{json, Map, Value};

use podnet_cni::protocol::derive::{derive_request, plugin_order, RequestParams};
use podnet_cni::protocol::{GcAttachment, NetworkConfigList, SpecVersion};
use podnet_cni::Command;

fn spec_list() -> NetworkConfigList {
    NetworkConfigList::from_value(json!({
        "cniVersion": "1.1.0",
        "name": "dbnet",
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "keyA": ["some more", "plugin specific", "configuration"],
             "ipam": {"type": "host-local", "subnet": "10.1.0.0/16", "gateway": "10.1.0.1"},
             "dns": {"nameservers": ["10.1.0.1"]}},
            {"type": "tuning", "capabilities": {"mac": true}, "sysctl": {"net.core.somaxconn": "500"}},
            {"type": "portmap", "capabilities": {"portMappings": true, "bandwidth": false}}
        ]
    }))
    .unwrap()
}

fn capability_args() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "portMappings".into(),
        json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
    );
    m.insert("mac".into(), json!("00:11:22:33:44:66"));
    m.insert("bandwidth".into(), json!({"ingressRate": 1}));
    m
}

fn prev() -> Value {
    json!({"ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 2}],
           "routes": [{"dst": "0.0.0.0/0"}],
           "interfaces": [{"name": "cni0"}, {"name": "veth3243"}, {"name": "eth0", "sandbox": "/var/run/netns/blue"}]})
}

fn params<'a>(
    command: Command,
    caps: &'a Map<String, Value>,
    prev: Option<&'a Value>,
) -> RequestParams<'a> {
    RequestParams {
        command,
        cni_version: SpecVersion::V1_1_0,
        capability_args: caps,
        prev_result: prev,
        valid_attachments: &[],
    }
}

#[test]
fn add_matches_the_spec_appendix() {
    let list = spec_list();
    let caps = capability_args();
    // 1) bridge: first in the chain, no prevResult, no capabilities declared.
    assert_eq!(
        derive_request(
            &list.name,
            &list.plugins[0],
            &params(Command::Add, &caps, None)
        ),
        json!({
            "cniVersion": "1.1.0", "name": "dbnet", "type": "bridge", "bridge": "cni0",
            "keyA": ["some more", "plugin specific", "configuration"],
            "ipam": {"type": "host-local", "subnet": "10.1.0.0/16", "gateway": "10.1.0.1"},
            "dns": {"nameservers": ["10.1.0.1"]}
        })
    );
    // 2) tuning: only the mac capability, plus prevResult; capabilities removed.
    let p = prev();
    assert_eq!(
        derive_request(
            &list.name,
            &list.plugins[1],
            &params(Command::Add, &caps, Some(&p))
        ),
        json!({
            "cniVersion": "1.1.0", "name": "dbnet", "type": "tuning",
            "sysctl": {"net.core.somaxconn": "500"},
            "runtimeConfig": {"mac": "00:11:22:33:44:66"},
            "prevResult": p
        })
    );
    // 3) portmap: portMappings only (bandwidth is declared false).
    let got = derive_request(
        &list.name,
        &list.plugins[2],
        &params(Command::Add, &caps, Some(&p)),
    );
    assert_eq!(
        got["runtimeConfig"],
        json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]})
    );
    assert!(got.get("capabilities").is_none());
}

#[test]
fn del_and_check_carry_the_add_result_and_del_runs_in_reverse() {
    let list = spec_list();
    let caps = capability_args();
    let p = prev();
    for cmd in [Command::Del, Command::Check] {
        for plugin in &list.plugins {
            let got = derive_request(&list.name, plugin, &params(cmd, &caps, Some(&p)));
            assert_eq!(got["prevResult"], p, "{cmd} {}", plugin.plugin_type);
        }
    }
    assert_eq!(plugin_order(Command::Del, 3), vec![2, 1, 0]);
    for cmd in [Command::Add, Command::Check, Command::Gc, Command::Status] {
        assert_eq!(plugin_order(cmd, 3), vec![0, 1, 2], "{cmd}");
    }
}

#[test]
fn no_overlap_means_no_runtime_config_and_written_reserved_keys_go() {
    let list = NetworkConfigList::from_value(json!({
        "cniVersion": "1.0.0", "name": "n",
        "plugins": [{"type": "x", "capabilities": {"ips": true},
                     "prevResult": {"stale": true}, "cni.dev/foo": 1, "keep": "me"}]
    }))
    .unwrap();
    let caps = capability_args(); // no "ips"
    let got = derive_request(
        &list.name,
        &list.plugins[0],
        &params(Command::Add, &caps, None),
    );
    assert_eq!(
        got,
        json!({"cniVersion": "1.1.0", "name": "n", "type": "x", "keep": "me"})
    );
}

#[test]
fn gc_gets_the_valid_attachments_under_both_keys_and_no_runtime_config() {
    let list = spec_list();
    let caps = capability_args();
    let valid = vec![GcAttachment {
        container_id: "c1".into(),
        ifname: "eth0".into(),
    }];
    let params = RequestParams {
        command: Command::Gc,
        cni_version: SpecVersion::V1_1_0,
        capability_args: &caps,
        prev_result: None,
        valid_attachments: &valid,
    };
    let got = derive_request(&list.name, &list.plugins[1], &params);
    let want = json!([{"containerID": "c1", "ifname": "eth0"}]);
    assert_eq!(got["cni.dev/valid-attachments"], want);
    assert_eq!(got["cni.dev/attachments"], want);
    assert!(got.get("runtimeConfig").is_none());
    assert!(got.get("prevResult").is_none());
}

#[test]
fn status_gets_version_and_name_only_added() {
    let list = spec_list();
    let caps = capability_args();
    let got = derive_request(
        &list.name,
        &list.plugins[2],
        &params(Command::Status, &caps, None),
    );
    assert_eq!(
        got,
        json!({"cniVersion": "1.1.0", "name": "dbnet", "type": "portmap"})
    );
}
