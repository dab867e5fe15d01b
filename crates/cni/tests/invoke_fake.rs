//! The runtime side against fake plugins (shell scripts written per test): environment,
//! stdin, outputs, errors, timeouts, chain order, prevResult chaining, caching, GC,
//! STATUS, version probing and config loading. No root needed.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use podnet_cni::invoke::{config_files, exec_plugin, load_conflist, ChainRunner, RuntimeEnv};
use podnet_cni::protocol::{ErrorCode, GcAttachment, HasErrorCode, NetworkConfigList};
use podnet_cni::{Attachment, Command, InvokeError};

/// A directory of fake plugins plus a log directory they write to.
struct Fakes {
    _tmp: tempfile::TempDir,
    bin: PathBuf,
    log: PathBuf,
    cache: PathBuf,
}

/// What a fake plugin does for one command: print `stdout`, exit with `code`.
struct Reply {
    stdout: String,
    code: i32,
}

fn ok(stdout: Value) -> Reply {
    Reply {
        stdout: stdout.to_string(),
        code: 0,
    }
}
fn silent() -> Reply {
    Reply {
        stdout: String::new(),
        code: 0,
    }
}
fn fail(stdout: &str, code: i32) -> Reply {
    Reply {
        stdout: stdout.to_string(),
        code,
    }
}

fn versions(list: &[&str]) -> Reply {
    ok(json!({"cniVersion": "1.1.0", "supportedVersions": list}))
}

impl Fakes {
    fn new() -> Fakes {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        let log = tmp.path().join("log");
        let cache = tmp.path().join("cache");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&log).unwrap();
        Fakes {
            _tmp: tmp,
            bin,
            log,
            cache,
        }
    }

    /// Writes plugin `name`: it logs "<name> <command>" to `order`, its environment and
    /// stdin to files, then replies as told (commands not listed: exit 0, no output).
    fn plugin(&self, name: &str, replies: Vec<(&str, Reply)>) {
        let mut script = format!(
            "#!/bin/sh\nLOG='{log}'\nNAME='{name}'\n\
             echo \"$NAME $CNI_COMMAND\" >> \"$LOG/order\"\n\
             tr '\\0' '\\n' < /proc/$$/environ > \"$LOG/$NAME-$CNI_COMMAND.env\"\n\
             cat > \"$LOG/$NAME-$CNI_COMMAND.json\"\n\
             case \"$CNI_COMMAND\" in\n",
            log = self.log.display()
        );
        for (cmd, reply) in replies {
            script.push_str(&format!(
                "  {cmd})\n    cat <<'PODNET_EOF'\n{}\nPODNET_EOF\n    exit {};;\n",
                reply.stdout, reply.code
            ));
        }
        script.push_str("esac\nexit 0\n");
        self.raw_plugin(name, &script);
    }

    fn raw_plugin(&self, name: &str, script: &str) {
        let path = self.bin.join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn dirs(&self) -> Vec<PathBuf> {
        vec![self.bin.clone()]
    }

    fn runner(&self) -> ChainRunner {
        ChainRunner::new(vec![self.bin.clone()], &self.cache)
    }

    fn order(&self) -> Vec<String> {
        std::fs::read_to_string(self.log.join("order"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.ends_with(" VERSION"))
            .map(str::to_string)
            .collect()
    }

    fn stdin_of(&self, name: &str, cmd: &str) -> Value {
        let text = std::fs::read_to_string(self.log.join(format!("{name}-{cmd}.json")))
            .unwrap_or_else(|e| panic!("{name} {cmd} never ran: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    fn env_of(&self, name: &str, cmd: &str) -> BTreeMap<String, String> {
        std::fs::read_to_string(self.log.join(format!("{name}-{cmd}.env")))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

fn result_a() -> Value {
    json!({"cniVersion": "1.0.0",
           "interfaces": [{"name": "br0"}, {"name": "eth0", "sandbox": "/run/netns/p1"}],
           "ips": [{"interface": 1, "address": "10.250.0.2/24", "gateway": "10.250.0.1"}]})
}

fn result_b() -> Value {
    let mut b = result_a();
    b["dns"] = json!({"nameservers": ["10.96.0.10"]});
    b
}

fn two_plugin_list() -> NetworkConfigList {
    NetworkConfigList::from_value(json!({
        "cniVersion": "1.1.0", "cniVersions": ["0.4.0", "1.0.0", "1.1.0"], "name": "fakenet",
        "plugins": [
            {"type": "first", "opt": 1, "capabilities": {"portMappings": true}},
            {"type": "second", "capabilities": {"bandwidth": true}}
        ]
    }))
    .unwrap()
}

fn attachment() -> Attachment {
    Attachment::new("ctr1", "/run/netns/p1", "eth0")
        .with_arg("K8S_POD_NAME", "web")
        .with_capability(
            "portMappings",
            json!([{"hostPort": 80, "containerPort": 8080}]),
        )
        .with_capability("mac", json!("aa:bb:cc:dd:ee:ff"))
}

#[test]
fn exec_gives_only_cni_vars_and_path_and_the_config_on_stdin() {
    let f = Fakes::new();
    f.plugin("first", vec![("ADD", ok(result_a()))]);
    let env = RuntimeEnv::for_attachment("ctr1", Some("/run/netns/p1".into()), "eth0");
    let config = json!({"cniVersion": "1.0.0", "name": "n", "type": "first"});
    let out = exec_plugin(&f.dirs(), "first", Command::Add, &env, &config).unwrap();
    assert_eq!(out, Some(result_a()));
    assert_eq!(f.stdin_of("first", "ADD"), config);
    let seen = f.env_of("first", "ADD");
    let keys: Vec<&str> = seen.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "CNI_ARGS",
            "CNI_COMMAND",
            "CNI_CONTAINERID",
            "CNI_IFNAME",
            "CNI_NETNS",
            "CNI_PATH",
            "PATH"
        ]
    );
    assert_eq!(seen["CNI_PATH"], f.bin.display().to_string());
    assert_eq!(seen["CNI_NETNS"], "/run/netns/p1");
}

#[test]
fn exec_prefix_wraps_the_plugin() {
    let f = Fakes::new();
    f.plugin("first", vec![("VERSION", versions(&["1.0.0"]))]);
    let env = RuntimeEnv {
        exec_prefix: vec!["env".into(), "PODNET_WRAPPED=yes".into()],
        ..RuntimeEnv::default()
    };
    let out = exec_plugin(
        &f.dirs(),
        "first",
        Command::Version,
        &env,
        &json!({"cniVersion": "1.0.0"}),
    )
    .unwrap()
    .unwrap();
    assert_eq!(out["supportedVersions"], json!(["1.0.0"]));
    assert_eq!(f.env_of("first", "VERSION")["PODNET_WRAPPED"], "yes");
}

#[test]
fn exec_outcomes_for_errors_silence_and_garbage() {
    let f = Fakes::new();
    let err_obj =
        r#"{"cniVersion":"1.0.0","code":7,"msg":"bad subnet","details":"10.0.0.0/31 too small"}"#;
    f.plugin(
        "p",
        vec![
            ("ADD", fail(err_obj, 1)),
            ("CHECK", fail("panic: something broke", 2)),
            ("DEL", silent()),
            ("STATUS", ok(json!({}))),
            ("GC", fail("{not json", 0)),
        ],
    );
    let dirs = [f.bin.clone()];
    let env = RuntimeEnv::for_attachment("c", Some("/run/netns/x".into()), "eth0");
    let cfg = json!({"cniVersion": "1.0.0", "name": "n", "type": "p"});

    let err = exec_plugin(&dirs, "p", Command::Add, &env, &cfg).unwrap_err();
    match &err {
        InvokeError::Plugin { error, .. } => {
            assert_eq!(error.code, ErrorCode::InvalidNetworkConfig);
            assert_eq!(error.details.as_deref(), Some("10.0.0.0/31 too small"));
        }
        other => panic!("expected a plugin error object, found {other:?}"),
    }
    assert_eq!(err.error_code(), ErrorCode::InvalidNetworkConfig);

    let err = exec_plugin(&dirs, "p", Command::Check, &env, &cfg).unwrap_err();
    assert!(
        matches!(err, InvokeError::Failed { ref stdout, .. } if stdout.contains("panic")),
        "{err}"
    );

    assert_eq!(
        exec_plugin(&dirs, "p", Command::Del, &env, &cfg).unwrap(),
        None
    );
    assert_eq!(
        exec_plugin(&dirs, "p", Command::Status, &RuntimeEnv::default(), &cfg).unwrap(),
        Some(json!({}))
    );
    let err = exec_plugin(&dirs, "p", Command::Gc, &RuntimeEnv::default(), &cfg).unwrap_err();
    assert!(matches!(err, InvokeError::Decode { .. }), "{err}");

    // ADD that prints nothing is an error; VERSION too.
    f.plugin("quiet", vec![]);
    let err = exec_plugin(&dirs, "quiet", Command::Add, &env, &cfg).unwrap_err();
    assert!(matches!(err, InvokeError::MissingOutput { .. }), "{err}");
}

#[test]
fn exec_refuses_missing_plugins_and_bad_attachments_before_running() {
    let f = Fakes::new();
    std::fs::write(f.bin.join("notexec"), "#!/bin/sh\n").unwrap();
    let env = RuntimeEnv::for_attachment("c", Some("/run/netns/x".into()), "eth0");
    let cfg = json!({});
    for name in ["absent", "notexec"] {
        let err = exec_plugin(&f.dirs(), name, Command::Add, &env, &cfg).unwrap_err();
        assert!(matches!(err, InvokeError::NotFound { .. }), "{name}: {err}");
        assert!(
            err.to_string().contains(&f.bin.display().to_string()),
            "{err}"
        );
    }
    let err = exec_plugin(&f.dirs(), "../bin/sh", Command::Add, &env, &cfg).unwrap_err();
    assert!(matches!(err, InvokeError::Config(_)), "{err}");

    f.plugin("p", vec![]);
    let bad = RuntimeEnv::for_attachment("a/../b", Some("/run/netns/x".into()), "eth0");
    let err = exec_plugin(&f.dirs(), "p", Command::Add, &bad, &cfg).unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::InvalidEnvironment, "{err}");
    let long = RuntimeEnv::for_attachment("c", Some("/run/netns/x".into()), "averyverylongname0");
    let err = exec_plugin(&f.dirs(), "p", Command::Add, &long, &cfg).unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::InvalidEnvironment, "{err}");
    assert!(
        !f.log.join("order").exists(),
        "nothing may run for invalid input"
    );
}

#[test]
fn exec_kills_a_plugin_that_overruns_its_timeout() {
    let f = Fakes::new();
    f.raw_plugin("slow", "#!/bin/sh\nexec sleep 30\n");
    let env = RuntimeEnv {
        timeout: Duration::from_millis(300),
        ..RuntimeEnv::default()
    };
    let started = Instant::now();
    let err = exec_plugin(&f.dirs(), "slow", Command::Status, &env, &json!({})).unwrap_err();
    assert!(matches!(err, InvokeError::Timeout { .. }), "{err}");
    assert_eq!(err.error_code(), ErrorCode::TryAgainLater);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

/// Two plugins that report 0.4.0 and 1.0.0 only, each replying with a fixed result.
fn chain_fakes() -> Fakes {
    let f = Fakes::new();
    f.plugin(
        "first",
        vec![
            ("VERSION", versions(&["0.4.0", "1.0.0"])),
            ("ADD", ok(result_a())),
        ],
    );
    f.plugin(
        "second",
        vec![
            ("VERSION", versions(&["0.3.1", "0.4.0", "1.0.0"])),
            ("ADD", ok(result_b())),
        ],
    );
    f
}

#[test]
fn add_chains_prev_results_caches_and_check_and_del_use_the_cache() {
    let f = chain_fakes();
    let runner = f.runner();
    let list = two_plugin_list();
    let att = attachment();

    let result = runner.add_network_list(&list, &att).unwrap();
    assert_eq!(
        result.dns.nameservers,
        vec!["10.96.0.10"],
        "final result is the last plugin's"
    );
    assert_eq!(f.order(), ["first ADD", "second ADD"]);

    // Negotiated with the plugins' VERSION: 1.0.0, not the list's 1.1.0.
    let first = f.stdin_of("first", "ADD");
    assert_eq!(first["cniVersion"], "1.0.0");
    assert_eq!(first["name"], "fakenet");
    assert_eq!(first["opt"], 1);
    assert!(
        first.get("prevResult").is_none(),
        "the first plugin gets no prevResult"
    );
    assert_eq!(
        first["runtimeConfig"],
        json!({"portMappings": [{"hostPort": 80, "containerPort": 8080}]})
    );
    let second = f.stdin_of("second", "ADD");
    assert_eq!(second["prevResult"], result_a());
    assert!(
        second.get("runtimeConfig").is_none(),
        "bandwidth was not offered"
    );
    assert_eq!(f.env_of("first", "ADD")["CNI_ARGS"], "K8S_POD_NAME=web");

    let cached = runner
        .cache()
        .load("fakenet", "ctr1", "eth0")
        .unwrap()
        .expect("cached");
    assert_eq!(cached.result, result_b());
    assert_eq!(cached.netns, Some(PathBuf::from("/run/netns/p1")));

    runner.check_network_list(&list, &att).unwrap();
    assert_eq!(f.stdin_of("first", "CHECK")["prevResult"], result_b());
    assert_eq!(f.stdin_of("second", "CHECK")["prevResult"], result_b());

    runner.del_network_list(&list, &att).unwrap();
    assert_eq!(
        f.order(),
        [
            "first ADD",
            "second ADD",
            "first CHECK",
            "second CHECK",
            "second DEL",
            "first DEL"
        ]
    );
    assert_eq!(f.stdin_of("first", "DEL")["prevResult"], result_b());
    assert!(
        runner
            .cache()
            .load("fakenet", "ctr1", "eth0")
            .unwrap()
            .is_none(),
        "DEL removes the cache"
    );

    // DEL again: idempotent, no prevResult now; CHECK without a cache is refused.
    runner.del_network_list(&list, &att).unwrap();
    assert!(f.stdin_of("first", "DEL").get("prevResult").is_none());
    let err = runner.check_network_list(&list, &att).unwrap_err();
    assert!(matches!(err, InvokeError::NoCachedResult { .. }), "{err}");
}

#[test]
fn add_stops_at_the_first_failing_plugin_and_caches_nothing() {
    let f = Fakes::new();
    f.plugin(
        "first",
        vec![
            ("VERSION", versions(&["1.0.0"])),
            ("ADD", fail(r#"{"code":11,"msg":"busy"}"#, 1)),
        ],
    );
    f.plugin(
        "second",
        vec![("VERSION", versions(&["1.0.0"])), ("ADD", ok(result_b()))],
    );
    let runner = f.runner();
    let err = runner
        .add_network_list(&two_plugin_list(), &attachment())
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::TryAgainLater, "{err}");
    assert_eq!(f.order(), ["first ADD"]);
    assert!(runner
        .cache()
        .load("fakenet", "ctr1", "eth0")
        .unwrap()
        .is_none());
}

#[test]
fn results_in_another_version_are_converted_for_the_next_plugin() {
    let f = Fakes::new();
    let old = json!({"cniVersion": "0.4.0", "interfaces": [{"name": "eth0", "sandbox": "/run/netns/p1"}],
                     "ips": [{"version": "4", "interface": 0, "address": "10.250.0.2/24"}]});
    f.plugin(
        "first",
        vec![("VERSION", versions(&["0.4.0", "1.0.0"])), ("ADD", ok(old))],
    );
    f.plugin(
        "second",
        vec![("VERSION", versions(&["1.0.0"])), ("ADD", ok(result_b()))],
    );
    f.runner()
        .add_network_list(&two_plugin_list(), &attachment())
        .unwrap();
    assert_eq!(
        f.stdin_of("second", "ADD")["prevResult"],
        json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/run/netns/p1"}],
               "ips": [{"interface": 0, "address": "10.250.0.2/24"}]})
    );
}

#[test]
fn no_common_version_with_the_plugins_is_code_1() {
    let f = Fakes::new();
    f.plugin("first", vec![("VERSION", versions(&["0.3.0"]))]);
    f.plugin("second", vec![("VERSION", versions(&["1.0.0"]))]);
    let err = f
        .runner()
        .add_network_list(&two_plugin_list(), &attachment())
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::IncompatibleVersion, "{err}");
    assert!(f.order().is_empty(), "no ADD may run");
    // Without probing, the list's own highest version is used.
    let f2 = Fakes::new();
    f2.plugin("first", vec![("ADD", ok(result_a()))]);
    f2.plugin("second", vec![("ADD", ok(json!({"cniVersion": "1.1.0"})))]);
    f2.runner()
        .with_version_probing(false)
        .add_network_list(&two_plugin_list(), &attachment())
        .unwrap();
    assert_eq!(f2.stdin_of("first", "ADD")["cniVersion"], "1.1.0");
}

#[test]
fn disable_check_skips_plugins() {
    let f = chain_fakes();
    let mut list = two_plugin_list();
    list.disable_check = true;
    f.runner().check_network_list(&list, &attachment()).unwrap();
    assert!(f.order().is_empty());
}

fn v11_fakes(first_gc: Reply, first_status: Reply) -> Fakes {
    let f = Fakes::new();
    f.plugin(
        "first",
        vec![
            ("VERSION", versions(&["1.0.0", "1.1.0"])),
            ("ADD", ok(result_a())),
            ("GC", first_gc),
            ("STATUS", first_status),
        ],
    );
    f.plugin(
        "second",
        vec![("VERSION", versions(&["1.1.0"])), ("ADD", ok(result_b()))],
    );
    f
}

#[test]
fn gc_runs_every_plugin_past_errors_and_prunes_the_cache() {
    let f = v11_fakes(
        fail(r#"{"cniVersion":"1.1.0","code":5,"msg":"disk"}"#, 1),
        silent(),
    );
    let runner = f.runner();
    let list = two_plugin_list();
    let keep = Attachment::new("keep", "/run/netns/a", "eth0");
    let stale = Attachment::new("stale", "/run/netns/b", "eth0");
    runner.add_network_list(&list, &keep).unwrap();
    runner.add_network_list(&list, &stale).unwrap();
    assert_eq!(runner.cache().list("fakenet").unwrap().len(), 2);

    let valid = [GcAttachment {
        container_id: "keep".into(),
        ifname: "eth0".into(),
    }];
    let err = runner.gc_network_list(&list, &valid).unwrap_err();
    match &err {
        InvokeError::Gc { errors, .. } => assert_eq!(errors.len(), 1, "{err}"),
        other => panic!("expected aggregated GC errors, found {other}"),
    }
    assert_eq!(err.error_code(), ErrorCode::IoFailure);
    assert!(
        f.order()
            .ends_with(&["first GC".to_string(), "second GC".to_string()]),
        "{:?}",
        f.order()
    );
    let gc_in = f.stdin_of("second", "GC");
    assert_eq!(
        gc_in["cni.dev/valid-attachments"],
        json!([{"containerID": "keep", "ifname": "eth0"}])
    );
    assert_eq!(gc_in["cniVersion"], "1.1.0");
    let left: Vec<String> = runner
        .cache()
        .list("fakenet")
        .unwrap()
        .into_iter()
        .map(|c| c.container_id)
        .collect();
    assert_eq!(left, ["keep"]);
    // GC gets no container variables.
    assert!(!f.env_of("second", "GC").contains_key("CNI_CONTAINERID"));

    let mut off = list.clone();
    off.disable_gc = true;
    let before = f.order().len();
    runner.gc_network_list(&off, &[]).unwrap();
    assert_eq!(f.order().len(), before, "disableGC runs nothing");
}

#[test]
fn status_reports_plugin_unavailability_and_is_skipped_before_110() {
    let f = v11_fakes(
        silent(),
        fail(r#"{"cniVersion":"1.1.0","code":50,"msg":"no daemon"}"#, 1),
    );
    let err = f
        .runner()
        .status_network_list(&two_plugin_list())
        .unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::PluginNotAvailable, "{err}");
    assert_eq!(f.order(), ["first STATUS"], "stops at the first failure");

    let old = chain_fakes(); // plugins speak at most 1.0.0
    old.runner()
        .status_network_list(&two_plugin_list())
        .unwrap();
    assert!(old.order().is_empty(), "no STATUS below 1.1.0");
}

#[test]
fn cache_refuses_names_that_could_escape_its_directory() {
    let f = Fakes::new();
    let runner = f.runner();
    for (net, cid, ifname) in [
        ("../x", "c", "eth0"),
        ("n", "../../etc", "eth0"),
        ("n", "c", "a/b"),
        ("n", "c", "a:b"),
    ] {
        assert!(
            runner.cache().path_for(net, cid, ifname).is_err(),
            "{net} {cid} {ifname}"
        );
    }
    runner
        .cache()
        .remove("n", "c", "eth0")
        .expect("removing nothing is fine");
    assert!(runner.cache().list("n").unwrap().is_empty());
}

fn write(dir: &Path, name: &str, value: &Value) {
    std::fs::write(dir.join(name), serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

#[test]
fn load_conflist_picks_the_lexically_first_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let err = load_conflist(dir).unwrap_err();
    assert!(matches!(err, InvokeError::NoConfig { .. }), "{err}");

    write(
        dir,
        "20-other.conflist",
        &json!({"cniVersion": "1.0.0", "name": "other", "plugins": [{"type": "x"}]}),
    );
    write(
        dir,
        "10-single.conf",
        &json!({"cniVersion": "0.4.0", "name": "single", "type": "bridge"}),
    );
    std::fs::write(dir.join("00-readme.txt"), "not a config").unwrap();
    let files: Vec<String> = config_files(dir)
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["10-single.conf", "20-other.conflist"]);
    let list = load_conflist(dir).unwrap();
    assert_eq!(list.name, "single", "a bare .conf is wrapped into a list");
    assert_eq!(list.plugins[0].plugin_type, "bridge");

    write(
        dir,
        "05-list.conflist",
        &json!({"cniVersion": "1.0.0", "name": "first", "plugins": [{"type": "y"}]}),
    );
    assert_eq!(load_conflist(dir).unwrap().name, "first");

    std::fs::write(dir.join("01-broken.conflist"), "{").unwrap();
    let err = load_conflist(dir).unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::DecodeFailure, "{err}");
}
