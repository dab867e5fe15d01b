//! The `podnet` binary end to end against a temporary embedded store: apply, get,
//! delete, error reporting, and the controller allocating what was applied.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Cli {
    _dir: tempfile::TempDir,
    store: String,
}

impl Cli {
    fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("state.db").display().to_string();
        Cli { _dir: dir, store }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_podnet"))
            .args(args)
            .env("PODNET_STORE", &self.store)
            .current_dir(repo())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "podnet {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    fn controller(&self) -> Killer {
        Killer(
            Command::new(env!("CARGO_BIN_EXE_podnet"))
                .args(["controller", "--id", "cli-test"])
                .env("PODNET_STORE", &self.store)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}

/// Kills the child it holds (started by this test, by PID) when dropped.
struct Killer(Child);

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn apply_get_delete_round_trip() {
    let cli = Cli::new();
    let out = cli.ok(&["apply", "-f", "examples/allocation/"]);
    assert!(out.contains("namespace/shop created"), "{out}");
    assert!(out.contains("service/web created"), "{out}");
    // Applying again changes nothing.
    let again = cli.ok(&["apply", "-f", "examples/allocation/"]);
    assert!(again.contains("service/web unchanged"), "{again}");
    assert!(!again.contains("created"), "{again}");

    let table = cli.ok(&["get", "svc", "-n", "shop"]);
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("NAME"), "{table}");
    for col in ["TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"] {
        assert!(header.contains(col), "{header}");
    }
    assert!(
        table.contains("upstream") && table.contains("api.example.org"),
        "{table}"
    );

    let all = cli.ok(&["get", "svc", "-A"]);
    assert!(
        all.lines().next().unwrap().starts_with("NAMESPACE"),
        "{all}"
    );
    assert!(
        all.contains("kube-system") && all.contains("kube-dns"),
        "{all}"
    );

    let web_pods = cli.json(&["get", "po", "-n", "shop", "-l", "app=web"]);
    assert_eq!(web_pods["kind"], "List");
    assert_eq!(web_pods["items"].as_array().unwrap().len(), 3);
    let none = cli.ok(&["get", "po", "-n", "shop", "-l", "app in (db)", "-o", "name"]);
    assert_eq!(none, "");

    let one = cli.json(&["get", "svc", "web", "-n", "shop"]);
    assert_eq!(one["kind"], "Service");
    assert!(one["metadata"]["uid"].is_string());
    assert!(one["metadata"]["resourceVersion"].is_string());

    let yaml = cli.ok(&["get", "ns", "shop", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Namespace") && yaml.contains("phase: Active"),
        "{yaml}"
    );

    let del = cli.ok(&["delete", "svc", "web", "-n", "shop"]);
    assert!(del.contains("service \"web\" deleted"), "{del}");
    let missing = cli.run(&["get", "svc", "web", "-n", "shop"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));

    // Deleting a namespace deletes what is in it.
    let del = cli.ok(&["delete", "ns", "shop"]);
    assert!(del.contains("deleted"), "{del}");
    assert_eq!(cli.ok(&["get", "po", "-n", "shop", "-o", "name"]), "");
}

#[test]
fn three_mistakes_three_messages_and_nothing_changes() {
    let cli = Cli::new();
    cli.ok(&["apply", "-f", "examples/allocation/00-cluster.yaml"]);
    let before = cli.ok(&["get", "svc", "-A", "-o", "json"]);
    let o = cli.run(&["apply", "-f", "examples/invalid/three-mistakes.yaml"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].contains("Service default/web: spec.ports[1].targetPort: expected"),
        "{err}"
    );
    assert!(lines[0].contains("\"Admin_Port\""), "{err}");
    assert!(
        lines[1].contains("Service default/cache: spec.ports[0].nodePort: expected"),
        "{err}"
    );
    assert!(
        lines[2].contains("Service default/db: spec.clusterIP: expected"),
        "{err}"
    );
    assert!(
        lines[2].contains("10.96.0.0/12") && lines[2].contains("192.168.7.7"),
        "{err}"
    );
    assert!(err.contains("nothing was applied"), "{err}");
    assert_eq!(cli.ok(&["get", "svc", "-A", "-o", "json"]), before);
}

#[test]
fn namespace_must_exist() {
    let cli = Cli::new();
    let o = cli.run(&["apply", "-f", "examples/allocation/20-services.yaml"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Service shop/web: metadata.namespace: expected an existing namespace"),
        "{err}"
    );
    // kube-system is a system namespace: it would have been created, but nothing was.
    assert_eq!(cli.ok(&["get", "ns", "-o", "name"]), "");
}

#[test]
fn controller_allocates_what_apply_wrote() {
    let cli = Cli::new();
    let _ctl = cli.controller();
    cli.ok(&["apply", "-f", "examples/allocation/"]);
    let svcs = wait_for("cluster IPs", || {
        let v = cli.json(&["get", "svc", "-A"]);
        let items = v["items"].as_array().unwrap().clone();
        let pending = items.iter().any(|s| {
            let ty = s["spec"]["type"].as_str().unwrap_or("ClusterIP");
            ty != "ExternalName" && s["spec"]["clusterIP"].as_str().is_none()
        });
        (!pending).then_some(items)
    });
    let by_name = |n: &str| svcs.iter().find(|s| s["metadata"]["name"] == n).unwrap();
    assert_eq!(by_name("kube-dns")["spec"]["clusterIP"], "10.96.0.10");
    assert_eq!(by_name("db")["spec"]["clusterIP"], "10.96.100.100");
    assert_eq!(by_name("web-headless")["spec"]["clusterIP"], "None");
    let np = by_name("web")["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .unwrap();
    assert!((30000..=32767).contains(&np), "{np}");

    let wide = cli.ok(&["get", "svc", "-A", "-o", "wide"]);
    assert!(wide.contains(&format!("80:{np}/TCP")), "{wide}");
    assert!(
        wide.contains("SELECTOR") && wide.contains("app=web"),
        "{wide}"
    );

    let slices = wait_for("web slices", || {
        let v = cli.json(&[
            "get",
            "ep",
            "-n",
            "shop",
            "-l",
            "kubernetes.io/service-name=web",
        ]);
        let items = v["items"].as_array().unwrap().clone();
        (!items.is_empty()).then_some(items)
    });
    let endpoints: Vec<&serde_json::Value> = slices
        .iter()
        .flat_map(|s| s["endpoints"].as_array().unwrap())
        .collect();
    assert_eq!(endpoints.len(), 3, "{slices:?}");
    let ready: Vec<&str> = endpoints
        .iter()
        .filter(|e| e["conditions"]["ready"] == true)
        .map(|e| e["addresses"][0].as_str().unwrap())
        .collect();
    assert_eq!(ready.len(), 2, "{slices:?}");
    assert!(ready.contains(&"10.244.0.5") && ready.contains(&"10.244.1.5"));
    // The named targetPort `http` resolves to the container port 8080.
    assert_eq!(slices[0]["ports"][0]["port"], 8080);

    let nodes = wait_for("pod CIDRs", || {
        let v = cli.json(&["get", "no"]);
        let items = v["items"].as_array().unwrap().clone();
        items
            .iter()
            .all(|n| n["spec"]["podCIDR"].is_string())
            .then_some(items)
    });
    let mut cidrs: Vec<&str> = nodes
        .iter()
        .map(|n| n["spec"]["podCIDR"].as_str().unwrap())
        .collect();
    cidrs.sort();
    cidrs.dedup();
    assert_eq!(cidrs.len(), 3, "{cidrs:?}");
    assert!(cidrs
        .iter()
        .all(|c| c.starts_with("10.244.") && c.ends_with("/24")));

    // A second service asking for a taken ClusterIP is refused at apply time.
    let clash = "apiVersion: v1\nkind: Service\nmetadata: {name: db2, namespace: shop}\nspec:\n  clusterIP: 10.96.100.100\n  ports: [{port: 1}]\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_podnet"))
        .args(["apply", "-f", "-"])
        .env("PODNET_STORE", &cli.store)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(clash.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("spec.clusterIP") && err.contains("Service shop/db"),
        "{err}"
    );
}
