//! Many ADDs and DELs at once, from separate processes sharing one store: every pod
//! gets its own address, the bridge is created once, and everything is released.

mod plugin_support;

use std::collections::HashSet;

use plugin_support::{ping, Lab};

const PODS: usize = 12;

#[test]
fn parallel_adds_get_distinct_addresses() {
    let mut lab = Lab::new(Some("10.244.14.0/24"));
    let pods: Vec<String> = (0..PODS).map(|_| lab.pod()).collect();
    let results: Vec<serde_json::Value> = std::thread::scope(|s| {
        let handles: Vec<_> = pods
            .iter()
            .enumerate()
            .map(|(i, pod)| {
                let lab = &lab;
                s.spawn(move || lab.add(&format!("par{i}"), pod).ok().json())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("ADD thread"))
            .collect()
    });
    let ips: HashSet<String> = results
        .iter()
        .map(|r| r["ips"][0]["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ips.len(), PODS, "duplicate addresses: {ips:?}");
    assert_eq!(lab.keys("/registry/podnet.io/ipam/").len(), PODS);
    assert_eq!(lab.node_veths().len(), PODS);
    // The first and the last pod reach each other through the bridge.
    let last = results[PODS - 1]["ips"][0]["address"].as_str().unwrap();
    let last_ip = last.split('/').next().unwrap();
    assert!(ping(Lab::ns_of(&pods[0]), last_ip), "no path to {last_ip}");

    std::thread::scope(|s| {
        for (i, pod) in pods.iter().enumerate() {
            let lab = &lab;
            s.spawn(move || lab.del(&format!("par{i}"), pod).ok());
        }
    });
    assert!(lab.ipam_keys().is_empty(), "{:?}", lab.ipam_keys());
    assert!(lab.node_veths().is_empty(), "{:?}", lab.node_veths());
}
