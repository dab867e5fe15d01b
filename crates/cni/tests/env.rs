//! `CNI_*` environment: parsing, per-command requirements, validation (code 4).

use std::path::PathBuf;

use podnet_cni::protocol::env::plugin_env_vars;
use podnet_cni::protocol::{
    parse_cni_args, render_cni_args, AttachmentEnv, EnvError, ErrorCode, HasErrorCode, PluginEnv,
};
use podnet_cni::Command;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn add_env(overrides: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
    let mut base = vec![
        ("CNI_COMMAND", Some("ADD")),
        ("CNI_CONTAINERID", Some("ctr1")),
        ("CNI_NETNS", Some("/run/netns/pod1")),
        ("CNI_IFNAME", Some("eth0")),
        ("CNI_PATH", Some("/opt/cni/bin:/usr/lib/cni")),
        ("HOME", Some("/root")),
    ];
    for (k, v) in overrides {
        match base.iter_mut().find(|(bk, _)| bk == k) {
            Some(entry) => entry.1 = *v,
            None => base.push((k, *v)),
        }
    }
    base.into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v.to_string())))
        .collect()
}

#[test]
fn parses_a_complete_add_environment() {
    let env = PluginEnv::from_vars(add_env(&[(
        "CNI_ARGS",
        Some("K8S_POD_NAME=web;IgnoreUnknown=1;"),
    )]))
    .expect("valid env");
    assert_eq!(env.command, Command::Add);
    let att = env.attachment.as_ref().expect("attachment");
    assert_eq!(att.container_id, "ctr1");
    assert_eq!(att.netns, Some(PathBuf::from("/run/netns/pod1")));
    assert_eq!(att.ifname, "eth0");
    assert_eq!(
        env.args,
        vec![
            ("K8S_POD_NAME".to_string(), "web".to_string()),
            ("IgnoreUnknown".to_string(), "1".to_string())
        ]
    );
    assert_eq!(env.arg("K8S_POD_NAME"), Some("web"));
    assert_eq!(
        env.path,
        vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")]
    );
}

#[test]
fn every_command_parses_from_cni_command() {
    for (text, cmd) in [
        ("ADD", Command::Add),
        ("DEL", Command::Del),
        ("CHECK", Command::Check),
        ("STATUS", Command::Status),
        ("GC", Command::Gc),
        ("VERSION", Command::Version),
    ] {
        assert_eq!(text.parse::<Command>().unwrap(), cmd);
        assert_eq!(cmd.to_string(), text);
    }
    for bad in ["add", "", "DELETE", " ADD"] {
        assert!(bad.parse::<Command>().is_err(), "{bad:?} should not parse");
    }
}

#[test]
fn commands_without_attachment_need_no_container_vars() {
    for (pairs, cmd) in [
        (vars(&[("CNI_COMMAND", "VERSION")]), Command::Version),
        (vars(&[("CNI_COMMAND", "STATUS")]), Command::Status),
        (
            vars(&[("CNI_COMMAND", "GC"), ("CNI_PATH", "/usr/lib/cni")]),
            Command::Gc,
        ),
        // Container vars, even invalid ones, are ignored for these commands.
        (
            vars(&[("CNI_COMMAND", "STATUS"), ("CNI_CONTAINERID", "../x")]),
            Command::Status,
        ),
    ] {
        let env = PluginEnv::from_vars(pairs).expect("valid");
        assert_eq!(env.command, cmd);
        assert!(env.attachment.is_none());
    }
}

#[test]
fn del_tolerates_an_absent_or_empty_netns() {
    for netns in [None, Some("")] {
        let env = PluginEnv::from_vars(add_env(&[
            ("CNI_COMMAND", Some("DEL")),
            ("CNI_NETNS", netns),
        ]))
        .expect("DEL without netns is valid");
        assert_eq!(env.attachment.unwrap().netns, None);
    }
}

/// Each case: the overrides applied to a valid ADD env, and the variable the error names.
#[test]
fn invalid_environments_are_code_4_naming_the_variable() {
    let long = "abcdefghijklmnop"; // 16 bytes
    type Overrides<'a> = Vec<(&'a str, Option<&'a str>)>;
    let cases: Vec<(&str, Overrides<'_>, &str)> = vec![
        ("no command", vec![("CNI_COMMAND", None)], "CNI_COMMAND"),
        (
            "unknown command",
            vec![("CNI_COMMAND", Some("FROB"))],
            "CNI_COMMAND",
        ),
        (
            "lower-case command",
            vec![("CNI_COMMAND", Some("add"))],
            "CNI_COMMAND",
        ),
        (
            "no container id",
            vec![("CNI_CONTAINERID", None)],
            "CNI_CONTAINERID",
        ),
        (
            "empty container id",
            vec![("CNI_CONTAINERID", Some(""))],
            "CNI_CONTAINERID",
        ),
        (
            "slash in id",
            vec![("CNI_CONTAINERID", Some("a/b"))],
            "CNI_CONTAINERID",
        ),
        (
            "dot-dot id",
            vec![("CNI_CONTAINERID", Some(".."))],
            "CNI_CONTAINERID",
        ),
        (
            "traversal id",
            vec![("CNI_CONTAINERID", Some("../etc"))],
            "CNI_CONTAINERID",
        ),
        (
            "space in id",
            vec![("CNI_CONTAINERID", Some("a b"))],
            "CNI_CONTAINERID",
        ),
        (
            "leading dash id",
            vec![("CNI_CONTAINERID", Some("-abc"))],
            "CNI_CONTAINERID",
        ),
        (
            "leading dot id",
            vec![("CNI_CONTAINERID", Some(".abc"))],
            "CNI_CONTAINERID",
        ),
        ("no netns on ADD", vec![("CNI_NETNS", None)], "CNI_NETNS"),
        (
            "empty netns on ADD",
            vec![("CNI_NETNS", Some(""))],
            "CNI_NETNS",
        ),
        (
            "no netns on CHECK",
            vec![("CNI_COMMAND", Some("CHECK")), ("CNI_NETNS", None)],
            "CNI_NETNS",
        ),
        ("no ifname", vec![("CNI_IFNAME", None)], "CNI_IFNAME"),
        ("empty ifname", vec![("CNI_IFNAME", Some(""))], "CNI_IFNAME"),
        (
            "ifname too long",
            vec![("CNI_IFNAME", Some(long))],
            "CNI_IFNAME",
        ),
        ("ifname dot", vec![("CNI_IFNAME", Some("."))], "CNI_IFNAME"),
        (
            "ifname dot-dot",
            vec![("CNI_IFNAME", Some(".."))],
            "CNI_IFNAME",
        ),
        (
            "ifname slash",
            vec![("CNI_IFNAME", Some("eth/0"))],
            "CNI_IFNAME",
        ),
        (
            "ifname colon",
            vec![("CNI_IFNAME", Some("eth0:1"))],
            "CNI_IFNAME",
        ),
        (
            "ifname space",
            vec![("CNI_IFNAME", Some("eth 0"))],
            "CNI_IFNAME",
        ),
        (
            "ifname tab",
            vec![("CNI_IFNAME", Some("eth\t0"))],
            "CNI_IFNAME",
        ),
        (
            "args without =",
            vec![("CNI_ARGS", Some("FOO"))],
            "CNI_ARGS",
        ),
        ("args empty key", vec![("CNI_ARGS", Some("=v"))], "CNI_ARGS"),
        (
            "args bad key",
            vec![("CNI_ARGS", Some("A B=1"))],
            "CNI_ARGS",
        ),
        (
            "GC without path",
            vec![("CNI_COMMAND", Some("GC")), ("CNI_PATH", None)],
            "CNI_PATH",
        ),
    ];
    for (what, overrides, var) in cases {
        let err = PluginEnv::from_vars(add_env(&overrides)).expect_err(what);
        assert_eq!(err.var(), var, "{what}: {err}");
        assert_eq!(err.error_code(), ErrorCode::InvalidEnvironment, "{what}");
        let msg = err.to_string();
        assert!(msg.contains(var), "{what}: message {msg:?} names {var}");
        assert!(
            msg.contains("expected"),
            "{what}: message {msg:?} says what was expected"
        );
        let obj = err.to_cni_error("1.1.0");
        assert_eq!(obj.code.as_u32(), 4, "{what}");
        assert_eq!(obj.cni_version, "1.1.0");
    }
}

#[test]
fn valid_ids_and_names_at_the_limits() {
    for id in ["a", "A1_b.c-d", "a..b", "0123456789abcdef0123456789abcdef"] {
        let env = PluginEnv::from_vars(add_env(&[("CNI_CONTAINERID", Some(id))]));
        assert!(env.is_ok(), "{id:?}: {env:?}");
    }
    for ifname in ["e", "abcdefghijklmno", "eth0.100", "veth-x_y", "é0"] {
        let env = PluginEnv::from_vars(add_env(&[("CNI_IFNAME", Some(ifname))]));
        assert!(env.is_ok(), "{ifname:?}: {env:?}");
    }
    // 8 characters but 16 bytes: the limit is in bytes.
    let env = PluginEnv::from_vars(add_env(&[("CNI_IFNAME", Some("éééééééé"))]));
    assert!(env.is_err(), "16 bytes of UTF-8 is too long");
}

#[test]
fn cni_args_and_path_parse_and_render() {
    assert_eq!(parse_cni_args("").unwrap(), vec![]);
    assert_eq!(
        parse_cni_args("A=1;B=;C=x=y").unwrap(),
        vec![
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), String::new()),
            ("C".to_string(), "x=y".to_string())
        ]
    );
    let pairs = vec![
        ("A".to_string(), "1".to_string()),
        ("B_2".to_string(), "v".to_string()),
    ];
    let text = render_cni_args(&pairs).unwrap();
    assert_eq!(text, "A=1;B_2=v");
    assert_eq!(parse_cni_args(&text).unwrap(), pairs);
    assert!(render_cni_args(&[("A".into(), "x;y".into())]).is_err());
    assert!(render_cni_args(&[("A=".into(), "x".into())]).is_err());

    let env = PluginEnv::from_vars(add_env(&[("CNI_PATH", Some(":/a::/b:"))])).unwrap();
    assert_eq!(env.path, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
}

#[test]
fn runtime_rendering_round_trips_through_plugin_parsing() {
    let att = AttachmentEnv {
        container_id: "ctr-9".into(),
        netns: Some("/run/netns/p".into()),
        ifname: "eth1".into(),
    };
    let args = vec![("K".to_string(), "V".to_string())];
    let dirs = vec![PathBuf::from("/usr/lib/cni"), PathBuf::from("/opt/cni/bin")];
    for cmd in [Command::Add, Command::Check, Command::Del] {
        let rendered = plugin_env_vars(cmd, Some(&att), &args, &dirs).unwrap();
        let parsed = PluginEnv::from_vars(rendered).unwrap();
        assert_eq!(parsed.command, cmd);
        assert_eq!(parsed.attachment.as_ref(), Some(&att));
        assert_eq!(parsed.args, args);
        assert_eq!(parsed.path, dirs);
    }
    for cmd in [Command::Version, Command::Status, Command::Gc] {
        let rendered = plugin_env_vars(cmd, Some(&att), &args, &dirs).unwrap();
        let keys: Vec<&str> = rendered.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, vec!["CNI_COMMAND", "CNI_PATH"], "{cmd}");
    }
    // DEL without a namespace renders an empty CNI_NETNS.
    let gone = AttachmentEnv {
        netns: None,
        ..att.clone()
    };
    let rendered = plugin_env_vars(Command::Del, Some(&gone), &[], &dirs).unwrap();
    assert!(rendered
        .iter()
        .any(|(k, v)| *k == "CNI_NETNS" && v.is_empty()));
    // ADD without one, or with a bad ID, is refused before anything runs.
    assert!(matches!(
        plugin_env_vars(Command::Add, Some(&gone), &[], &dirs),
        Err(EnvError::Missing {
            var: "CNI_NETNS",
            ..
        })
    ));
    let bad = AttachmentEnv {
        container_id: "x/../y".into(),
        ..att
    };
    assert!(plugin_env_vars(Command::Add, Some(&bad), &[], &dirs).is_err());
    assert!(plugin_env_vars(Command::Add, None, &[], &dirs).is_err());
}
