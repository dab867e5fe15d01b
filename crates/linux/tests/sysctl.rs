//! Kernel tests: net.* sysctls are read and written inside one namespace
//! and nowhere else.

mod common;

use std::path::Path;

use common::Namespaces;
use podnet_linux::sysctl::{self, SysctlError};

#[test]
fn sysctls_are_per_namespace() {
    let mut guard = Namespaces::new();
    let (name, one) = guard.create("sysctl-1");
    let (_, other) = guard.create("sysctl-2");

    assert_eq!(sysctl::get(&one, "net.ipv4.ip_forward").unwrap(), "0");
    sysctl::set(&one, "net.ipv4.ip_forward", "1").unwrap();
    assert_eq!(sysctl::get(&one, "net.ipv4.ip_forward").unwrap(), "1");
    // Another namespace is untouched.
    assert_eq!(sysctl::get(&other, "net.ipv4.ip_forward").unwrap(), "0");

    sysctl::set_all(
        &one,
        &[
            ("net.ipv4.conf.all.rp_filter", "2"),
            ("net.ipv6.conf.all.disable_ipv6", "1"),
        ],
    )
    .unwrap();
    assert_eq!(
        sysctl::get(&one, "net.ipv4.conf.all.rp_filter").unwrap(),
        "2"
    );
    assert_eq!(
        sysctl::get(&one, "net/ipv6/conf/all/disable_ipv6").unwrap(),
        "1"
    );
    assert_eq!(
        sysctl::get(&other, "net.ipv6.conf.all.disable_ipv6").unwrap(),
        "0"
    );

    // Global sysctls are refused: they would change the host.
    let err = sysctl::set(&one, "kernel.hostname", "x").unwrap_err();
    assert!(matches!(err, SysctlError::InvalidKey { .. }), "{err:?}");

    let err = sysctl::get(&one, "net.ipv4.conf.nosuch0.rp_filter").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("sysctl net.ipv4.conf.nosuch0.rp_filter does not exist in netns {name}")
    );
}

#[test]
fn bridge_netfilter_sysctl_works_or_says_the_module_is_missing() {
    let mut guard = Namespaces::new();
    let (_, ns) = guard.create("brnf");
    let key = "net.bridge.bridge-nf-call-iptables";
    let in_ns = ns
        .run(|| Path::new("/proc/sys/net/bridge").exists())
        .unwrap();
    match sysctl::set(&ns, key, "1") {
        Ok(()) => {
            assert!(in_ns);
            assert_eq!(sysctl::get(&ns, key).unwrap(), "1");
        }
        Err(err) => {
            assert!(!in_ns, "the sysctl exists but setting it failed: {err}");
            assert!(err.to_string().contains("br_netfilter module"), "{err}");
        }
    }
}
