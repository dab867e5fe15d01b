//! A single-stack IPv6 pod CIDR: the allocator, the pod address, the default route.

mod plugin_support;

use plugin_support::Lab;

#[test]
fn ipv6_pod_cidr() {
    let mut lab = Lab::new(Some("fd00:10:244:1::/64"));
    let pod = lab.pod();
    let r = lab.add("v6", &pod).ok().json();
    assert_eq!(r["ips"][0]["address"], "fd00:10:244:1::2/64", "{r}");
    assert_eq!(r["ips"][0]["gateway"], "fd00:10:244:1::1", "{r}");
    assert_eq!(r["routes"][0]["dst"], "::/0", "{r}");
    let ns = Lab::ns_of(&pod).to_string();
    let out = plugin_support::run_ok(&["ip", "-n", &ns, "-6", "route", "show", "default"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("via fd00:10:244:1::1 dev eth0"), "{text}");
    let mut cfg = lab.config();
    cfg["prevResult"] = r.clone();
    lab.exec("CHECK", "v6", &pod, "eth0", "", &cfg).ok();
    // DAD makes new addresses tentative for a moment; a bounded wait for a reply.
    let reached = (0..20).any(|_| {
        let ok = Lab::in_ns(
            &ns,
            &["ping", "-6", "-c", "1", "-W", "1", "fd00:10:244:1::1"],
        )
        .status
        .success();
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        ok
    });
    assert!(reached, "pod cannot ping its IPv6 gateway");
    lab.del("v6", &pod).ok();
    assert!(lab.ipam_keys().is_empty(), "{:?}", lab.ipam_keys());
}
