//! Results: reading, writing, and conversion between spec versions; error objects;
//! VERSION results.

use serde_json::json;

use podnet_cni::protocol::{
    CniError, CniResult, ErrorCode, HasErrorCode, SpecVersion, VersionInfo,
};

/// A 1.1.0 result using every field.
fn full_v110() -> serde_json::Value {
    json!({
        "cniVersion": "1.1.0",
        "interfaces": [
            {"name": "cni0", "mac": "00:11:22:33:44:55", "mtu": 1500},
            {"name": "veth3243", "mac": "55:44:33:22:11:11"},
            {"name": "eth0", "mac": "99:88:77:66:55:44", "mtu": 1450, "sandbox": "/var/run/netns/blue",
             "socketPath": "/run/vhost.sock", "pciID": "0000:04:00.5"}
        ],
        "ips": [
            {"interface": 2, "address": "10.1.0.5/16", "gateway": "10.1.0.1"},
            {"interface": 2, "address": "2001:db8::5/64"}
        ],
        "routes": [
            {"dst": "0.0.0.0/0"},
            {"dst": "10.2.0.0/16", "gw": "10.1.0.254", "mtu": 1400, "advmss": 1360, "priority": 10, "table": 100, "scope": 0}
        ],
        "dns": {"nameservers": ["10.1.0.1"], "domain": "example.local", "search": ["a.example"], "options": ["ndots:5"]}
    })
}

#[test]
fn a_full_v110_result_round_trips_exactly() {
    let input = full_v110();
    let result = CniResult::from_value(&input, None).unwrap();
    assert_eq!(result.cni_version, SpecVersion::V1_1_0);
    assert_eq!(result.interfaces.len(), 3);
    assert_eq!(result.interfaces[2].mtu, Some(1450));
    assert_eq!(result.ips[0].gateway, Some("10.1.0.1".parse().unwrap()));
    assert_eq!(result.routes[1].table, Some(100));
    assert_eq!(result.dns.domain.as_deref(), Some("example.local"));
    let sandboxed: Vec<usize> = result.sandbox_interfaces().map(|(i, _)| i).collect();
    assert_eq!(sandboxed, vec![2]);
    assert_eq!(result.ips_of(2).count(), 2);
    assert_eq!(result.to_value(), input);
    // serde goes through the same shape.
    let via_serde: CniResult = serde_json::from_value(input.clone()).unwrap();
    assert_eq!(serde_json::to_value(&via_serde).unwrap(), input);
}

#[test]
fn converting_down_to_040_adds_ip_versions_and_drops_newer_fields() {
    let result = CniResult::from_value(&full_v110(), None).unwrap();
    let old = result.to_version("0.4.0").unwrap();
    assert_eq!(
        old.to_value(),
        json!({
            "cniVersion": "0.4.0",
            "interfaces": [
                {"name": "cni0", "mac": "00:11:22:33:44:55"},
                {"name": "veth3243", "mac": "55:44:33:22:11:11"},
                {"name": "eth0", "mac": "99:88:77:66:55:44", "sandbox": "/var/run/netns/blue"}
            ],
            "ips": [
                {"version": "4", "interface": 2, "address": "10.1.0.5/16", "gateway": "10.1.0.1"},
                {"version": "6", "interface": 2, "address": "2001:db8::5/64"}
            ],
            "routes": [
                {"dst": "0.0.0.0/0"},
                {"dst": "10.2.0.0/16", "gw": "10.1.0.254"}
            ],
            "dns": {"nameservers": ["10.1.0.1"], "domain": "example.local", "search": ["a.example"], "options": ["ndots:5"]}
        })
    );
    // 0.3.x has the same shape as 0.4.0.
    for v in ["0.3.0", "0.3.1"] {
        let mut want = old.to_value();
        want["cniVersion"] = json!(v);
        assert_eq!(result.to_version(v).unwrap().to_value(), want, "{v}");
    }
    // 1.0.0: no IP versions, but also none of 1.1.0's additions.
    let v100 = result.to_version("1.0.0").unwrap().to_value();
    assert_eq!(
        v100["ips"][0],
        json!({"interface": 2, "address": "10.1.0.5/16", "gateway": "10.1.0.1"})
    );
    assert!(v100["interfaces"][2].get("mtu").is_none());
    assert!(v100["routes"][1].get("table").is_none());
}

#[test]
fn converting_up_from_040_drops_ip_versions_and_loses_nothing() {
    let old = json!({
        "cniVersion": "0.4.0",
        "interfaces": [{"name": "eth0", "mac": "aa:bb:cc:dd:ee:ff", "sandbox": "/run/netns/p"}],
        "ips": [{"version": "4", "interface": 0, "address": "10.22.0.5/24", "gateway": "10.22.0.1"}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.22.0.1"}],
        "dns": {}
    });
    let result = CniResult::from_value(&old, None).unwrap();
    let new = result.to_version("1.1.0").unwrap();
    assert_eq!(
        new.to_value(),
        json!({
            "cniVersion": "1.1.0",
            "interfaces": [{"name": "eth0", "mac": "aa:bb:cc:dd:ee:ff", "sandbox": "/run/netns/p"}],
            "ips": [{"interface": 0, "address": "10.22.0.5/24", "gateway": "10.22.0.1"}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.22.0.1"}]
        })
    );
    // And back down again gives the original (empty dns is omitted).
    let mut want = old;
    want.as_object_mut().unwrap().remove("dns");
    assert_eq!(new.to_version("0.4.0").unwrap().to_value(), want);
}

#[test]
fn ipam_results_without_interfaces_read_fine() {
    let ipam = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1"}],
                      "routes": [{"dst": "0.0.0.0/0"}], "dns": {"nameservers": ["10.1.0.1"]}});
    let r = CniResult::from_value(&ipam, None).unwrap();
    assert!(r.interfaces.is_empty());
    assert_eq!(r.ips[0].interface, None);
    assert_eq!(r.to_value(), ipam);
}

#[test]
fn bad_results_map_to_codes() {
    let cases: Vec<(&str, serde_json::Value, Option<&str>, u32)> = vec![
        (
            "unsupported version",
            json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.0.0.1/24"}}),
            None,
            1,
        ),
        ("unknown version", json!({"cniVersion": "3.0.0"}), None, 1),
        ("no version and no default", json!({"ips": []}), None, 6),
        (
            "040 ip without version",
            json!({"cniVersion": "0.4.0", "ips": [{"address": "10.0.0.1/24"}]}),
            None,
            6,
        ),
        (
            "040 ip with wrong version",
            json!({"cniVersion": "0.4.0", "ips": [{"version": "6", "address": "10.0.0.1/24"}]}),
            None,
            6,
        ),
        (
            "address not cidr",
            json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.1"}]}),
            None,
            6,
        ),
        (
            "gateway not an ip",
            json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.1/24", "gateway": "x"}]}),
            None,
            6,
        ),
        (
            "interface index out of range",
            json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0"}], "ips": [{"interface": 1, "address": "10.0.0.1/24"}]}),
            None,
            6,
        ),
        (
            "interfaces wrong type",
            json!({"cniVersion": "1.0.0", "interfaces": {"name": "eth0"}}),
            None,
            6,
        ),
        ("not an object", json!("result"), Some("1.0.0"), 6),
    ];
    for (what, input, default, code) in cases {
        let err = CniResult::from_value(&input, default).expect_err(what);
        assert_eq!(err.error_code().as_u32(), code, "{what}: {err}");
    }
    assert_eq!(
        CniResult::from_json(b"{not json", None)
            .unwrap_err()
            .error_code(),
        ErrorCode::DecodeFailure
    );
    let r = CniResult::from_value(&full_v110(), None).unwrap();
    assert_eq!(
        r.to_version("0.2.0").unwrap_err().error_code(),
        ErrorCode::IncompatibleVersion
    );
}

#[test]
fn error_codes_map_both_ways() {
    let table = [
        (1, ErrorCode::IncompatibleVersion),
        (2, ErrorCode::UnsupportedField),
        (3, ErrorCode::ContainerUnknown),
        (4, ErrorCode::InvalidEnvironment),
        (5, ErrorCode::IoFailure),
        (6, ErrorCode::DecodeFailure),
        (7, ErrorCode::InvalidNetworkConfig),
        (11, ErrorCode::TryAgainLater),
        (50, ErrorCode::PluginNotAvailable),
        (51, ErrorCode::PluginNotAvailableLimitedConnectivity),
        (8, ErrorCode::Reserved(8)),
        (99, ErrorCode::Reserved(99)),
        (100, ErrorCode::Plugin(100)),
        (4242, ErrorCode::Plugin(4242)),
    ];
    for (n, code) in table {
        assert_eq!(ErrorCode::from_u32(n), code);
        assert_eq!(code.as_u32(), n);
        assert!(!code.description().is_empty());
    }
}

#[test]
fn error_objects_serialise_as_the_spec_shows() {
    let err = CniError::new(
        "1.1.0",
        ErrorCode::InvalidNetworkConfig,
        "Invalid Configuration",
    )
    .with_details("Network 192.168.0.0/31 too small to allocate from.");
    let value: serde_json::Value = serde_json::from_str(&err.to_json()).unwrap();
    assert_eq!(
        value,
        json!({"cniVersion": "1.1.0", "code": 7, "msg": "Invalid Configuration",
               "details": "Network 192.168.0.0/31 too small to allocate from."})
    );
    let back: CniError = serde_json::from_value(value).unwrap();
    assert_eq!(back, err);
    assert_eq!(
        err.to_string(),
        "cni error 7: Invalid Configuration (Network 192.168.0.0/31 too small to allocate from.)"
    );
    // Older plugins omit cniVersion and details.
    let old: CniError = serde_json::from_str(r#"{"code": 11, "msg": "busy"}"#).unwrap();
    assert_eq!(old.code, ErrorCode::TryAgainLater);
    assert_eq!(old.cni_version, "");
    let plain = serde_json::to_value(CniError::new("1.1.0", ErrorCode::Plugin(101), "x")).unwrap();
    assert_eq!(
        plain,
        json!({"cniVersion": "1.1.0", "code": 101, "msg": "x"})
    );
}

#[test]
fn version_result_lists_podnets_versions() {
    let v = VersionInfo::podnet(Some("1.0.0"));
    assert_eq!(
        serde_json::to_value(&v).unwrap(),
        json!({"cniVersion": "1.0.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
    );
    assert_eq!(VersionInfo::podnet(None).cni_version, "1.1.0");
    assert!(v.supports(SpecVersion::V1_1_0));
    assert!(!v.supports(SpecVersion::new(0, 2, 0)));
}

#[test]
fn versions_parse_strictly_and_order_numerically() {
    for ok in ["0.3.0", "1.1.0", "10.20.30"] {
        assert_eq!(ok.parse::<SpecVersion>().unwrap().to_string(), ok);
    }
    for bad in [
        "",
        "1",
        "1.1",
        "1.1.0.0",
        "v1.1.0",
        "1.1.0-rc1",
        "1..0",
        "a.b.c",
        " 1.0.0",
    ] {
        let err = bad.parse::<SpecVersion>().expect_err(bad);
        assert_eq!(err.error_code(), ErrorCode::IncompatibleVersion);
    }
    assert!("0.10.0".parse::<SpecVersion>().unwrap() > "0.9.0".parse().unwrap());
    assert!(SpecVersion::V0_4_0.has_check() && !SpecVersion::V0_3_1.has_check());
    assert!(SpecVersion::V1_1_0.has_status_and_gc() && !SpecVersion::V1_0_0.has_status_and_gc());
}
