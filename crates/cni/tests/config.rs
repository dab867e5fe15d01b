//! Network configurations and configuration lists: reading, validation, error codes.

use serde::Deserialize;
use serde_json::json;

use podnet_cni::protocol::{
    ConfigError, ErrorCode, GcAttachment, HasErrorCode, IpRequest, NetworkConfig,
    NetworkConfigList, PortProtocol, SpecVersion,
};

fn code_of(err: &ConfigError) -> u32 {
    err.error_code().as_u32()
}

#[test]
fn reads_every_well_known_key_and_keeps_the_rest() {
    let input = json!({
        "cniVersion": "1.1.0",
        "name": "podnet",
        "type": "bridge",
        "bridge": "cni0",
        "isGateway": true,
        "args": {"cni": {"labels": [{"key": "app", "value": "web"}]}},
        "ipMasq": false,
        "ipam": {"type": "host-local", "subnet": "10.1.0.0/16", "routes": [{"dst": "0.0.0.0/0"}]},
        "dns": {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]},
        "runtimeConfig": {
            "portMappings": [
                {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                {"hostPort": 53, "containerPort": 53, "protocol": "UDP", "hostIP": ""},
                {"hostPort": 9000, "containerPort": 9000, "hostIP": "127.0.0.1"}
            ],
            "ips": ["10.1.0.5/16", "2001:db8::5"],
            "mac": "c2:11:22:33:44:55",
            "dns": {"servers": ["10.96.0.10"], "searches": ["cluster.local"], "options": ["ndots:5"]},
            "bandwidth": {"ingressRate": 2048, "ingressBurst": 1600, "egressRate": 4096, "egressBurst": 1600},
            "deviceID": "0000:04:00.5"
        }
    });
    let cfg = NetworkConfig::from_value(input.clone()).expect("valid config");
    assert_eq!(cfg.cni_version, "1.1.0");
    assert_eq!(cfg.spec_version().unwrap(), SpecVersion::V1_1_0);
    assert_eq!(cfg.name, "podnet");
    assert_eq!(cfg.plugin_type, "bridge");
    assert_eq!(cfg.ip_masq, Some(false));
    let ipam = cfg.ipam.as_ref().unwrap();
    assert_eq!(ipam.plugin_type, "host-local");
    assert_eq!(ipam.options["subnet"], "10.1.0.0/16");
    assert_eq!(cfg.dns.as_ref().unwrap().nameservers, vec!["10.96.0.10"]);
    assert_eq!(cfg.extra["bridge"], "cni0");
    assert_eq!(cfg.extra["isGateway"], true);
    assert!(cfg.args.as_ref().unwrap().contains_key("cni"));

    let rc = cfg.runtime_config.as_ref().unwrap();
    let pm = rc.port_mappings.as_ref().unwrap();
    assert_eq!(pm[0].host_port, 8080);
    assert_eq!(pm[1].protocol, PortProtocol::Udp);
    assert_eq!(pm[1].host_ip, None, "empty hostIP means every address");
    assert_eq!(
        pm[2].protocol,
        PortProtocol::Tcp,
        "protocol defaults to tcp"
    );
    assert_eq!(pm[2].host_ip, Some("127.0.0.1".parse().unwrap()));
    let ips = rc.ips.as_ref().unwrap();
    assert_eq!(ips[0], "10.1.0.5/16".parse::<IpRequest>().unwrap());
    assert_eq!(ips[1].prefix, None);
    assert_eq!(rc.mac.as_deref(), Some("c2:11:22:33:44:55"));
    assert_eq!(rc.dns.as_ref().unwrap().options, vec!["ndots:5"]);
    assert_eq!(rc.bandwidth.unwrap().egress_rate, Some(4096));
    assert_eq!(rc.other["deviceID"], "0000:04:00.5");

    // Plugin-specific options read through the plugin's own type.
    #[derive(Deserialize)]
    struct BridgeOptions {
        bridge: String,
        #[serde(rename = "isGateway")]
        is_gateway: bool,
    }
    let opts: BridgeOptions = cfg.plugin_options().unwrap();
    assert_eq!(opts.bridge, "cni0");
    assert!(opts.is_gateway);

    // Writing it back reproduces the input, unknown keys included.
    let mut expected = input;
    // hostIP "" is normalised away; protocol defaults are written out.
    expected["runtimeConfig"]["portMappings"] = json!([
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 53, "containerPort": 53, "protocol": "udp"},
        {"hostPort": 9000, "containerPort": 9000, "protocol": "tcp", "hostIP": "127.0.0.1"}
    ]);
    assert_eq!(cfg.to_value(), expected);
}

#[test]
fn unknown_top_level_keys_are_ignored_not_rejected() {
    let cfg = NetworkConfig::from_value(json!({
        "cniVersion": "1.0.0", "name": "n", "type": "t",
        "someFutureKey": {"x": 1}, "capabilities": {"mac": true}
    }))
    .expect("unknown keys are fine");
    assert_eq!(cfg.extra["someFutureKey"]["x"], 1);
}

#[test]
fn bad_configs_map_to_the_spec_error_codes() {
    let base = || json!({"cniVersion": "1.1.0", "name": "net", "type": "bridge"});
    let with = |k: &str, v: serde_json::Value| {
        let mut b = base();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = base();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    type Input<'a> = Result<serde_json::Value, &'a [u8]>;
    let cases: Vec<(&str, Input<'_>, u32)> = vec![
        (
            "malformed json",
            Err(b"{\"cniVersion\": \"1.1.0\", ".as_slice()),
            6,
        ),
        ("not json at all", Err(b"cniVersion=1.1.0".as_slice()), 6),
        ("an array", Ok(json!([1, 2])), 6),
        ("name of wrong type", Ok(with("name", json!(5))), 6),
        ("ipMasq of wrong type", Ok(with("ipMasq", json!("yes"))), 6),
        (
            "ipam not an object",
            Ok(with("ipam", json!("host-local"))),
            6,
        ),
        (
            "dns nameservers not a list",
            Ok(with("dns", json!({"nameservers": "1.1.1.1"}))),
            6,
        ),
        (
            "port out of range",
            Ok(with(
                "runtimeConfig",
                json!({"portMappings": [{"hostPort": 70000, "containerPort": 1}]}),
            )),
            6,
        ),
        (
            "unknown port mapping key",
            Ok(with(
                "runtimeConfig",
                json!({"portMappings": [{"hostPort": 1, "containerPort": 1, "bogus": 1}]}),
            )),
            6,
        ),
        (
            "bad ips capability",
            Ok(with("runtimeConfig", json!({"ips": ["10.0.0.300"]}))),
            6,
        ),
        ("missing type", Ok(without("type")), 7),
        ("missing name", Ok(without("name")), 7),
        ("missing cniVersion", Ok(without("cniVersion")), 7),
        ("name with slash", Ok(with("name", json!("a/b"))), 7),
        ("empty name", Ok(with("name", json!(""))), 7),
        ("type with path", Ok(with("type", json!("../../bin/sh"))), 7),
        (
            "ipam type with path",
            Ok(with("ipam", json!({"type": "/bin/x"}))),
            7,
        ),
        (
            "unknown cniVersion",
            Ok(with("cniVersion", json!("2.0.0"))),
            1,
        ),
        (
            "too old cniVersion",
            Ok(with("cniVersion", json!("0.2.0"))),
            1,
        ),
        (
            "malformed cniVersion",
            Ok(with("cniVersion", json!("1.1"))),
            1,
        ),
        (
            "prevResult with bad version",
            Ok(with("prevResult", json!({"cniVersion": "9.9.9"}))),
            1,
        ),
        (
            "prevResult undecodable",
            Ok(with("prevResult", json!({"ips": [{"address": "nope"}]}))),
            6,
        ),
    ];
    for (what, input, code) in cases {
        let result = match input {
            Ok(v) => NetworkConfig::from_value(v),
            Err(bytes) => NetworkConfig::parse(bytes),
        };
        let err = result.expect_err(what);
        assert_eq!(code_of(&err), code, "{what}: {err}");
        assert!(
            err.to_string().contains("expected") || code == 6,
            "{what}: {err}"
        );
        assert_eq!(err.to_cni_error("1.1.0").code.as_u32(), code, "{what}");
    }
}

#[test]
fn unsupported_field_is_code_2_naming_key_and_value() {
    let err = ConfigError::Unsupported {
        key: "hairpinMode".into(),
        value: "true".into(),
    };
    assert_eq!(err.error_code(), ErrorCode::UnsupportedField);
    assert!(err.to_string().contains("hairpinMode = true"));
}

#[test]
fn prev_result_takes_the_request_version_when_it_has_none() {
    let cfg = NetworkConfig::from_value(json!({
        "cniVersion": "0.4.0", "name": "n", "type": "t",
        "prevResult": {"ips": [{"version": "4", "address": "10.1.0.5/16", "gateway": "10.1.0.1"}]}
    }))
    .unwrap();
    let prev = cfg.prev_result().unwrap().unwrap();
    assert_eq!(prev.cni_version, SpecVersion::V0_4_0);
    assert_eq!(prev.ips[0].address.to_string(), "10.1.0.5/16");

    // The same prevResult is invalid at 0.4.0 without the IP's "version".
    let err = NetworkConfig::from_value(json!({
        "cniVersion": "0.4.0", "name": "n", "type": "t",
        "prevResult": {"ips": [{"address": "10.1.0.5/16"}]}
    }))
    .unwrap_err();
    assert_eq!(code_of(&err), 6, "{err}");
}

#[test]
fn gc_attachments_prefer_the_released_key() {
    let a = |c: &str| GcAttachment {
        container_id: c.into(),
        ifname: "eth0".into(),
    };
    let both = NetworkConfig::from_value(json!({
        "cniVersion": "1.1.0", "name": "n", "type": "t",
        "cni.dev/valid-attachments": [{"containerID": "new", "ifname": "eth0"}],
        "cni.dev/attachments": [{"containerID": "old", "ifname": "eth0"}]
    }))
    .unwrap();
    assert_eq!(both.gc_attachments(), Some(&[a("new")][..]));
    let legacy = NetworkConfig::from_value(json!({
        "cniVersion": "1.1.0", "name": "n", "type": "t",
        "cni.dev/attachments": [{"containerID": "old", "ifname": "eth0"}]
    }))
    .unwrap();
    assert_eq!(legacy.gc_attachments(), Some(&[a("old")][..]));
}

#[test]
fn peek_version_reads_only_cni_version() {
    assert!(NetworkConfig::peek_version(br#"{"cniVersion":"0.4.0","junk":[}"#).is_err());
    assert_eq!(
        NetworkConfig::peek_version(br#"{"cniVersion":"0.4.0","type":5}"#).unwrap(),
        Some("0.4.0".to_string())
    );
    assert_eq!(NetworkConfig::peek_version(b"{}").unwrap(), None);
}

const SPEC_EXAMPLE: &str = r#"{
  "cniVersion": "1.1.0",
  "cniVersions": ["0.3.1", "0.4.0", "1.0.0", "1.1.0"],
  "name": "dbnet",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "keyA": ["some more", "plugin specific", "configuration"],
     "ipam": {"type": "host-local", "subnet": "10.1.0.0/16", "gateway": "10.1.0.1", "routes": [{"dst": "0.0.0.0/0"}]},
     "dns": {"nameservers": ["10.1.0.1"]}},
    {"type": "tuning", "capabilities": {"mac": true}, "sysctl": {"net.core.somaxconn": "500"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}"#;

#[test]
fn reads_the_spec_example_list() {
    let list = NetworkConfigList::parse(SPEC_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(list.name, "dbnet");
    assert_eq!(list.cni_version.as_deref(), Some("1.1.0"));
    assert_eq!(list.cni_versions.len(), 4);
    assert!(!list.disable_check && !list.disable_gc && !list.load_only_inlined_plugins);
    let types: Vec<&str> = list
        .plugins
        .iter()
        .map(|p| p.plugin_type.as_str())
        .collect();
    assert_eq!(types, ["bridge", "tuning", "portmap"]);
    assert!(list.plugins[1].wants("mac"));
    assert!(!list.plugins[1].wants("portMappings"));
    assert_eq!(list.plugins[0].raw["keyA"][1], "plugin specific");
    assert_eq!(list.negotiate(&[]).unwrap(), SpecVersion::V1_1_0);
    // Written back: the same JSON.
    let original: serde_json::Value = serde_json::from_str(SPEC_EXAMPLE).unwrap();
    assert_eq!(list.to_value(), original);
}

#[test]
fn list_flags_accept_booleans_and_boolean_strings() {
    let list = NetworkConfigList::from_value(json!({
        "cniVersion": "1.1.0", "name": "n",
        "disableCheck": "true", "disableGC": true, "loadOnlyInlinedPlugins": "False",
        "plugins": [{"type": "bridge"}]
    }))
    .unwrap();
    assert!(list.disable_check);
    assert!(list.disable_gc);
    assert!(!list.load_only_inlined_plugins);
}

#[test]
fn bad_lists_map_to_the_spec_error_codes() {
    let cases: Vec<(&str, serde_json::Value, u32, &str)> = vec![
        (
            "no plugins key",
            json!({"cniVersion": "1.0.0", "name": "n"}),
            7,
            "plugins",
        ),
        (
            "no name",
            json!({"cniVersion": "1.0.0", "plugins": [{"type": "a"}]}),
            7,
            "name",
        ),
        (
            "no version at all",
            json!({"name": "n", "plugins": [{"type": "a"}]}),
            7,
            "cniVersion",
        ),
        (
            "empty plugins",
            json!({"cniVersion": "1.0.0", "name": "n", "plugins": []}),
            7,
            "plugins",
        ),
        (
            "plugin without type",
            json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "a"}, {"x": 1}]}),
            7,
            "plugins[1].type",
        ),
        (
            "plugin type not a string",
            json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": 3}]}),
            7,
            "plugins[0].type",
        ),
        (
            "plugin type with slash",
            json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "a/b"}]}),
            7,
            "plugins[0].type",
        ),
        (
            "capabilities wrong type",
            json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "a", "capabilities": {"mac": "yes"}}]}),
            6,
            "",
        ),
        (
            "plugins not a list",
            json!({"cniVersion": "1.0.0", "name": "n", "plugins": {"type": "a"}}),
            6,
            "",
        ),
        (
            "disableCheck garbage",
            json!({"cniVersion": "1.0.0", "name": "n", "disableCheck": "maybe", "plugins": [{"type": "a"}]}),
            6,
            "",
        ),
        (
            "only unsupported versions",
            json!({"cniVersion": "0.2.0", "name": "n", "plugins": [{"type": "a"}]}),
            1,
            "0.2.0",
        ),
        (
            "malformed cniVersions entry",
            json!({"cniVersion": "1.0.0", "cniVersions": ["one"], "name": "n", "plugins": [{"type": "a"}]}),
            1,
            "one",
        ),
        (
            "bad network name",
            json!({"cniVersion": "1.0.0", "name": "../x", "plugins": [{"type": "a"}]}),
            7,
            "name",
        ),
    ];
    for (what, input, code, mentions) in cases {
        let err = NetworkConfigList::from_value(input).expect_err(what);
        assert_eq!(code_of(&err), code, "{what}: {err}");
        assert!(
            err.to_string().contains(mentions),
            "{what}: {err} mentions {mentions}"
        );
    }
}

#[test]
fn a_single_config_is_wrapped_into_a_list_of_one() {
    let list = NetworkConfigList::from_single(json!({
        "cniVersion": "0.4.0", "name": "mynet", "type": "bridge", "bridge": "br0",
        "ipam": {"type": "host-local", "subnet": "10.9.0.0/24"}
    }))
    .unwrap();
    assert_eq!(list.name, "mynet");
    assert_eq!(list.cni_version.as_deref(), Some("0.4.0"));
    assert_eq!(list.plugins.len(), 1);
    assert_eq!(list.plugins[0].plugin_type, "bridge");
    assert_eq!(list.plugins[0].raw["bridge"], "br0");
}

#[test]
fn negotiation_picks_the_highest_common_version() {
    let list = |v: Option<&str>, vs: &[&str]| NetworkConfigList {
        cni_version: v.map(str::to_string),
        cni_versions: vs.iter().map(|s| s.to_string()).collect(),
        name: "n".into(),
        disable_check: false,
        disable_gc: false,
        load_only_inlined_plugins: false,
        plugins: vec![],
    };
    let plugin = |vs: &[&str]| {
        (
            "p".to_string(),
            vs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    };
    type Reported = Vec<(String, Vec<String>)>;
    let cases: Vec<(NetworkConfigList, Reported, Option<&str>)> = vec![
        (list(Some("1.0.0"), &[]), vec![], Some("1.0.0")),
        (
            list(Some("1.0.0"), &["0.4.0", "1.1.0"]),
            vec![],
            Some("1.1.0"),
        ),
        (list(None, &["0.3.1", "2.0.0"]), vec![], Some("0.3.1")),
        (
            list(Some("1.1.0"), &["0.4.0", "1.0.0"]),
            vec![plugin(&["0.4.0", "1.0.0"])],
            Some("1.0.0"),
        ),
        (
            list(Some("1.1.0"), &["0.4.0", "1.0.0"]),
            vec![plugin(&["0.3.1", "0.4.0", "1.0.0"]), plugin(&["0.4.0"])],
            Some("0.4.0"),
        ),
        (
            list(Some("1.1.0"), &[]),
            vec![plugin(&["0.4.0", "1.0.0"])],
            None,
        ),
        (list(Some("0.2.0"), &["0.1.0"]), vec![], None),
    ];
    for (l, plugins, want) in cases {
        let got = l.negotiate(&plugins);
        match want {
            Some(v) => assert_eq!(
                got.unwrap().to_string(),
                v,
                "{:?} {:?}",
                l.offered_versions(),
                plugins
            ),
            None => {
                let err = got.unwrap_err();
                assert_eq!(err.error_code(), ErrorCode::IncompatibleVersion);
                assert!(err.to_string().contains("expected"), "{err}");
            }
        }
    }
}
