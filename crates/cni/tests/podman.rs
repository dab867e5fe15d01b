//! podnet-cni driven by a runtime nobody here wrote: Debian's podman 4.3 with its CNI
//! network backend runs two containers on a podnet network, and one reaches the other.
//!
//! Settings follow the recipe in ../shared/bench/runtime/podman-cni-lib.sh: runc (not
//! crun), the cgroupfs manager, file locks, vfs storage, explicit ulimits, every config
//! and state directory in a temp dir given through CONTAINERS_CONF and
//! CONTAINERS_STORAGE_CONF, a local image imported from busybox-static. podman runs in
//! the test's node namespace (`nsenter --net=`), so the CNI plugins it calls create the
//! bridge and host veths there, never in the machine's root namespace.
//!
//! Every plugin call goes through a logging shim that keeps the environment and stdin of
//! each call; the test asserts what podman sent (see docs/cni-runtimes.md). Set
//! `PODNET_PODMAN_CALLS=<dir>` to keep a copy of those logs.

mod plugin_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use plugin_support::{Lab, NODE_NAME, PLUGIN};
use serde_json::{json, Value};

const IMAGE: &str = "localhost/pncnx-busybox:latest";
const PODMAN_TIMEOUT: &str = "120";

fn require_tools() {
    for (tool, package) in [
        ("podman", "podman"),
        ("runc", "runc"),
        ("conmon", "conmon"),
        ("nsenter", "util-linux"),
        ("tar", "tar"),
    ] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "this test needs {tool}: apt-get install -y {package}"
        );
    }
    let busybox = run(&["file", "-L", "/bin/busybox"]);
    assert!(
        String::from_utf8_lossy(&busybox.stdout).contains("statically linked"),
        "this test needs a static /bin/busybox for its container image: apt-get install -y busybox-static file"
    );
}

fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("failed to run {args:?}: {e}"))
}

/// An isolated podman: its config, storage, run and log directories in one temp dir;
/// containers, images, mounts and libcni's cache entries removed on drop.
struct Podman {
    work: tempfile::TempDir,
    node_ns: String,
    network: String,
}

impl Podman {
    fn new(lab: &Lab) -> Podman {
        let work = tempfile::Builder::new()
            .prefix("pncnx-podman-")
            .tempdir_in("/var/tmp")
            .expect("work dir");
        let network = format!("pncnx{}", std::process::id());
        let podman = Podman {
            work,
            node_ns: lab.node_ns.clone(),
            network,
        };
        let w = podman.work.path();
        for d in [
            "net.d", "cni-wrap", "cnilog", "storage", "run", "tmp", "rootfs",
        ] {
            std::fs::create_dir_all(w.join(d)).unwrap();
        }
        let wd = w.display();
        std::fs::write(
            w.join("storage.conf"),
            format!("[storage]\ndriver = \"vfs\"\nrunroot = \"{wd}/run\"\ngraphroot = \"{wd}/storage\"\n"),
        )
        .unwrap();
        std::fs::write(
            w.join("containers.conf"),
            format!(
                r#"[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile=16384:16384", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{wd}/events.log"
runtime = "runc"
tmp_dir = "{wd}/tmp"
lock_type = "file"
[network]
network_backend = "cni"
cni_plugin_dirs = ["{wd}/cni-wrap", "/usr/lib/cni"]
network_config_dir = "{wd}/net.d"
default_network = "{net}"
"#,
                net = podman.network
            ),
        )
        .unwrap();
        let conflist = json!({
            "cniVersion": "1.0.0",
            "name": podman.network,
            "plugins": [{
                "type": "podnet",
                "store": lab.db.display().to_string(),
                "node": NODE_NAME,
            }]
        });
        std::fs::write(
            w.join("net.d").join(format!("{}.conflist", podman.network)),
            serde_json::to_string_pretty(&conflist).unwrap(),
        )
        .unwrap();
        // The logging shim, named `podnet` so that podman finds it for type "podnet".
        let shim = w.join("cni-wrap").join("podnet");
        std::fs::write(
            &shim,
            format!(
                "#!/bin/sh\n\
                 f=\"{wd}/cnilog/$(date +%s%N)-$$-${{CNI_COMMAND:-none}}\"\n\
                 env | LC_ALL=C sort > \"$f.env\"\n\
                 cat > \"$f.stdin\"\n\
                 \"{PLUGIN}\" < \"$f.stdin\" > \"$f.stdout\"; rc=$?\n\
                 echo \"$rc\" > \"$f.rc\"\n\
                 cat \"$f.stdout\"\n\
                 exit \"$rc\"\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        // The image: static busybox and a few applet links, imported from a tarball.
        let root = w.join("rootfs");
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for applet in ["sh", "nc", "echo", "sleep", "ip", "cat", "true"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
        let tar = w.join("rootfs.tar");
        let out = run(&[
            "tar",
            "-C",
            &root.display().to_string(),
            "-cf",
            &tar.display().to_string(),
            ".",
        ]);
        assert!(out.status.success(), "tar: {out:?}");
        podman.ok(&[
            "import",
            "--quiet",
            "--change",
            "CMD [\"/bin/sh\"]",
            &tar.display().to_string(),
            IMAGE,
        ]);
        podman
    }

    /// podman with the private config, inside the node namespace, bounded in time.
    fn pm(&self, args: &[&str]) -> Output {
        let w = self.work.path();
        Command::new("timeout")
            .args([
                PODMAN_TIMEOUT,
                "nsenter",
                &format!("--net=/run/netns/{}", self.node_ns),
                "podman",
            ])
            .args(args)
            .env("CONTAINERS_CONF", w.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", w.join("storage.conf"))
            .output()
            .unwrap_or_else(|e| panic!("failed to run podman {args:?}: {e}"))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.pm(args);
        assert!(
            out.status.success(),
            "podman {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The logged plugin calls in order: (command, env lines, stdin JSON).
    fn calls(&self) -> Vec<(String, Vec<String>, Value)> {
        let dir = self.work.path().join("cnilog");
        let mut stems: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rc"))
            .map(|p| p.with_extension(""))
            .collect();
        stems.sort();
        stems
            .into_iter()
            .map(|stem| {
                let read = |ext: &str| {
                    std::fs::read_to_string(stem.with_extension(ext)).unwrap_or_default()
                };
                let env: Vec<String> = read("env").lines().map(str::to_string).collect();
                let command = env
                    .iter()
                    .find_map(|l| l.strip_prefix("CNI_COMMAND="))
                    .unwrap_or("none")
                    .to_string();
                let stdin = serde_json::from_str(&read("stdin")).unwrap_or(Value::Null);
                (command, env, stdin)
            })
            .collect()
    }

    fn copy_logs_to(&self, out: &Path) {
        let _ = std::fs::create_dir_all(out);
        let _ = run(&[
            "cp",
            "-r",
            &self.work.path().join("cnilog").display().to_string(),
            &self.work.path().join("net.d").display().to_string(),
            &self
                .work
                .path()
                .join("containers.conf")
                .display()
                .to_string(),
            &out.display().to_string(),
        ]);
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if let Ok(out) = std::env::var("PODNET_PODMAN_CALLS") {
            self.copy_logs_to(Path::new(&out));
        }
        let _ = self.pm(&["rm", "-af", "-t", "0"]);
        let _ = self.pm(&["rmi", "-af"]);
        // libcni keeps its result cache in /var/lib/cni/results/NET-CID-IF; the network
        // name is unique to this run.
        if let Ok(entries) = std::fs::read_dir("/var/lib/cni/results") {
            for e in entries.flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{}-", self.network))
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        // Unmount whatever podman left under the work dir (bounded), then the temp dir
        // itself is removed by TempDir's drop.
        let work = self.work.path().display().to_string();
        for _ in 0..3 {
            let out = run(&["findmnt", "-rn", "-o", "TARGET"]);
            let mut mounts: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|m| m.starts_with(&work))
                .map(str::to_string)
                .collect();
            if mounts.is_empty() {
                break;
            }
            mounts.sort();
            for m in mounts.iter().rev() {
                let _ = run(&["umount", "-l", m]);
            }
        }
    }
}

#[test]
fn podman_runs_two_containers_on_a_podnet_network() {
    let lab = Lab::new(Some("10.244.41.0/24"));
    require_tools();
    let podman = Podman::new(&lab);
    let net = podman.network.clone();

    // Container A listens; its address comes from podman inspect (podnet's result).
    podman.ok(&[
        "run",
        "-d",
        "--name",
        "pncnx-a",
        "--network",
        &net,
        "--stop-signal",
        "KILL",
        IMAGE,
        "nc",
        "-ll",
        "-p",
        "8080",
        "-e",
        "echo",
        "hello-from-a",
    ]);
    let a_ip = podman.ok(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        "pncnx-a",
    ]);
    assert!(a_ip.starts_with("10.244.41."), "A's address: {a_ip:?}");
    assert!(
        lab.ipam_keys().iter().any(|k| k.contains(&a_ip)),
        "A's address {a_ip} is not in the store: {:?}",
        lab.ipam_keys()
    );

    // Container B connects to A over the podnet bridge (retrying while A's nc starts).
    let answer = podman.ok(&[
        "run",
        "--rm",
        "--network",
        &net,
        IMAGE,
        "sh",
        "-c",
        &format!(
            "for i in 1 2 3 4 5 6 7 8 9 10; do r=$(nc -w 2 {a_ip} 8080 </dev/null); \
             [ -n \"$r\" ] && echo \"$r\" && exit 0; sleep 0.5; done; exit 1"
        ),
    ]);
    assert_eq!(answer, "hello-from-a", "B's answer from A at {a_ip}:8080");

    podman.ok(&["rm", "-f", "-t", "0", "pncnx-a"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lab.ipam_keys().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        lab.ipam_keys().is_empty(),
        "addresses left after podman rm: {:?}",
        lab.ipam_keys()
    );
    assert!(lab.node_veths().is_empty(), "{:?}", lab.node_links());

    // What podman sent: ADD per container start, DEL per removal, each with the
    // conflist's network config, CNI_NETNS a podman-made namespace, eth0.
    let calls = podman.calls();
    // libcni passes podman's whole environment on, not only the CNI_* variables.
    assert!(
        calls
            .iter()
            .all(|(_, env, _)| env.iter().any(|l| l.starts_with("CONTAINERS_CONF="))),
        "podman's environment was not passed on"
    );
    let commands: Vec<&str> = calls.iter().map(|(c, _, _)| c.as_str()).collect();
    assert_eq!(
        commands.iter().filter(|c| **c == "ADD").count(),
        2,
        "{commands:?}"
    );
    assert!(
        commands.iter().filter(|c| **c == "DEL").count() >= 2,
        "{commands:?}"
    );
    assert!(commands.contains(&"VERSION"), "{commands:?}");
    let mut add_results = Vec::new();
    for (command, env, stdin) in &calls {
        let var = |name: &str| {
            env.iter()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .map(str::to_string)
        };
        if command == "DEL" {
            // From CNI 0.4.0 on, DEL gets the cached ADD result as prevResult.
            assert!(
                stdin["prevResult"]["ips"][0]["address"].is_string(),
                "{stdin}"
            );
            assert!(
                add_results.contains(&var("CNI_CONTAINERID")),
                "DEL before ADD: {env:?}"
            );
        }
        if command == "ADD" || command == "DEL" {
            assert_eq!(var("CNI_IFNAME").as_deref(), Some("eth0"), "{env:?}");
            assert!(
                var("CNI_CONTAINERID").is_some_and(|c| !c.is_empty()),
                "{env:?}"
            );
            assert_eq!(stdin["name"], net, "{stdin}");
            assert_eq!(stdin["type"], "podnet", "{stdin}");
        }
        if command == "ADD" {
            let args = var("CNI_ARGS").unwrap_or_default();
            assert!(args.starts_with("IgnoreUnknown=1;K8S_POD_NAME="), "{env:?}");
            assert!(stdin.get("prevResult").is_none(), "{stdin}");
            add_results.push(var("CNI_CONTAINERID"));
            assert!(
                var("CNI_NETNS").is_some_and(|n| n.starts_with("/run/netns/")),
                "{env:?}"
            );
        }
    }
}
