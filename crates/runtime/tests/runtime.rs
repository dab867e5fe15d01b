//! The node runtime against real namespaces, real CNI plugins and real processes. Each
//! test runs its own mini-node (see `common`); they run in parallel.

mod common;

use std::time::{Duration, Instant};

use common::{
    alive, condition, container, is_ready, phase, pids_in_netns, pod_ip, wait_pids_in_netns, Node,
};
use podnet_linux::netns;
use podnet_model::Object;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_containers_share_localhost_and_the_node_reaches_the_pod() {
    let node = Node::start();
    let www = node.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from A\n").unwrap();
    let pod = node.pod(
        "web",
        json!({
            "containers": [
                // `busybox <applet>` resolves to the host's applet binary; go through sh.
                {"name": "a", "image": "busybox", "command": ["sh", "-c", format!("exec busybox httpd -f -p 8080 -h {}", www.display())]},
                {"name": "b", "image": "busybox", "command": ["sleep", "3600"]},
            ]
        }),
    );
    node.put(&pod).await;
    let ip = node
        .wait_pod("web", 20, "Running and Ready with a pod IP", |p| {
            (phase(p) == Some("Running") && is_ready(p))
                .then(|| pod_ip(p))
                .flatten()
        })
        .await;
    let subnet: ipnet::IpNet = node.subnet.parse().unwrap();
    assert!(subnet.contains(&ip), "pod IP {ip} outside {subnet}");
    let p = node.get("web").await.unwrap();
    for c in ["a", "b"] {
        let cs = container(&p, c).unwrap();
        assert!(cs.ready && cs.started == Some(true), "{c}: {cs:?}");
        assert!(cs.state.as_ref().unwrap().running.is_some());
        assert_eq!(cs.restart_count, 0);
    }
    for t in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        assert_eq!(condition(&p, t).as_deref(), Some("True"), "{t}");
    }
    let status = p.status.as_ref().unwrap();
    assert_eq!(status.host_ip.as_deref(), Some("172.18.0.2"));
    assert!(status.start_time.is_some());

    // B reaches A on localhost: they share the sandbox.
    let netns = node.netns_of(&pod);
    let mut got = String::new();
    for _ in 0..30 {
        got = node.exec_in(
            &netns,
            &["busybox", "nc", "127.0.0.1", "8080"],
            "GET / HTTP/1.0\r\n\r\n",
        );
        if got.contains("hello from A") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(got.contains("hello from A"), "localhost answer: {got:?}");

    // The node reaches the pod IP over the bridge.
    let body = node
        .http_get_from_node(ip, 8080, "/")
        .expect("GET from the node");
    assert_eq!(body, "hello from A\n");

    // Output goes to the container log; the pod's processes run in the pod's namespace.
    let log = podnet_runtime::log_path(
        &node.cfg.state_dir,
        "default",
        "web",
        pod.metadata.uid.as_deref().unwrap(),
        "a",
    );
    assert!(log.exists(), "{}", log.display());
    for c in ["a", "b"] {
        let rec = node.record(&pod, c).expect("record");
        assert!(alive(rec.pid), "{c} shim {}", rec.pid);
    }
    // httpd forks a short-lived child per connection (the GET above): wait, bounded,
    // for the namespace to settle at one process per container.
    let mut in_ns = pids_in_netns(&netns);
    for _ in 0..40 {
        if in_ns.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        in_ns = pids_in_netns(&netns);
    }
    assert_eq!(
        in_ns.len(),
        2,
        "one process per container in the pod namespace: {in_ns:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agnhost_netexec_builtin_with_a_named_port_readiness_probe() {
    let node = Node::start();
    let pod = node.pod(
        "netexec",
        json!({
            "containers": [{
                "name": "agnhost",
                "image": "registry.k8s.io/e2e-test-images/agnhost:2.47",
                "args": ["netexec", "--http-port=8080", "--udp-port=-1"],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1},
            }]
        }),
    );
    node.put(&pod).await;
    let ip = node
        .wait_pod("netexec", 30, "Ready", |p| {
            is_ready(p).then(|| pod_ip(p)).flatten()
        })
        .await;
    let host = node
        .http_get_from_node(ip, 8080, "/hostname")
        .expect("GET /hostname");
    assert_eq!(host.trim(), "netexec");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_tcp_probe_keeps_the_pod_unready_and_exec_probe_passes() {
    let node = Node::start();
    let pod = node.pod(
        "probes",
        json!({
            "containers": [
                {"name": "closed", "image": "busybox", "command": ["sleep", "3600"],
                 "readinessProbe": {"tcpSocket": {"port": 9999}, "periodSeconds": 1, "failureThreshold": 1}},
                {"name": "exec", "image": "busybox", "command": ["sleep", "3600"],
                 "readinessProbe": {"exec": {"command": ["sh", "-c", "test -f /etc/hosts"]}, "periodSeconds": 1}},
            ]
        }),
    );
    let unknown = node.pod(
        "unknown-image",
        json!({"containers": [{"name": "web", "image": "nginx:1.27"}]}),
    );
    node.put(&pod).await;
    node.put(&unknown).await;
    node.wait_pod("probes", 20, "the exec-probed container ready", |p| {
        container(p, "exec").is_some_and(|c| c.ready).then_some(())
    })
    .await;
    // Several periods later the closed port still keeps the pod unready.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let p = node.get("probes").await.unwrap();
    assert_eq!(phase(&p), Some("Running"));
    assert!(!container(&p, "closed").unwrap().ready);
    assert_eq!(condition(&p, "Ready").as_deref(), Some("False"));
    let ready = p
        .status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        ready.message.as_deref(),
        Some("containers with unready status: [closed]")
    );

    let (reason, message) = node
        .wait_pod("unknown-image", 10, "a waiting reason", |p| {
            let w = container(p, "web")?.state.as_ref()?.waiting.as_ref()?;
            (w.reason.as_deref() == Some("ErrImageNotSupported"))
                .then(|| (w.reason.clone(), w.message.clone()))
        })
        .await;
    assert_eq!(reason.as_deref(), Some("ErrImageNotSupported"));
    let message = message.unwrap_or_default();
    assert!(
        message.contains("nginx") && message.contains("agnhost"),
        "{message}"
    );
    let u = node.get("unknown-image").await.unwrap();
    assert_eq!(phase(&u), Some("Pending"));
    assert!(!is_ready(&u));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_policies() {
    let node = Node::start();
    let failing = |policy: &str, code: u8| {
        json!({
            "restartPolicy": policy,
            "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", format!("sleep 0.2; exit {code}")]}]
        })
    };
    let always = node.pod("always", failing("Always", 1));
    let never = node.pod("never", failing("Never", 1));
    let on_failure = node.pod("onfailure", failing("OnFailure", 0));
    for p in [&always, &never, &on_failure] {
        node.put(p).await;
    }
    let last = node
        .wait_pod("always", 25, "restartCount >= 2", |p| {
            let c = container(p, "c")?;
            (c.restart_count >= 2).then(|| c.last_state.clone())
        })
        .await;
    let term = last
        .and_then(|l| l.terminated)
        .expect("lastState.terminated");
    assert_eq!(term.exit_code, 1);
    assert_eq!(term.reason.as_deref(), Some("Error"));
    assert_eq!(phase(&node.get("always").await.unwrap()), Some("Running"));

    let n = node
        .wait_pod("never", 15, "phase Failed", |p| {
            (phase(p) == Some("Failed")).then(|| p.clone())
        })
        .await;
    let c = container(&n, "c").unwrap();
    assert_eq!(c.restart_count, 0);
    assert_eq!(
        c.state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        1
    );
    assert!(!is_ready(&n));

    let s = node
        .wait_pod("onfailure", 15, "phase Succeeded", |p| {
            (phase(p) == Some("Succeeded")).then(|| p.clone())
        })
        .await;
    let c = container(&s, "c").unwrap();
    assert_eq!(c.restart_count, 0);
    assert_eq!(
        c.state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("Completed")
    );
    // A finished pod releases its network (the IP stays in its status).
    let ns = node.netns_of(&on_failure);
    let ip = pod_ip(&s).unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while (netns::exists(&ns) || node.ip_leased(&ip)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!netns::exists(&ns), "netns of a finished pod still there");
    assert!(!node.ip_leased(&ip), "IP of a finished pod still leased");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolv_conf_and_hosts_inside_the_pod() {
    let node = Node::start();
    let pod = node.pod(
        "dns",
        json!({
            "hostname": "h1",
            "subdomain": "sub",
            "dnsConfig": {"options": [{"name": "edns0"}]},
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]
        }),
    );
    node.put(&pod).await;
    let ip = node
        .wait_pod("dns", 20, "Ready", |p| {
            is_ready(p).then(|| pod_ip(p)).flatten()
        })
        .await;
    let netns = node.netns_of(&pod);
    let rc = node.exec_in(&netns, &["cat", "/etc/resolv.conf"], "");
    assert!(rc.contains("nameserver 10.96.0.10\n"), "{rc}");
    assert!(
        rc.contains("search default.svc.cluster.local svc.cluster.local cluster.local\n"),
        "{rc}"
    );
    assert!(rc.contains("options ndots:5 edns0\n"), "{rc}");
    let hosts = node.exec_in(&netns, &["cat", "/etc/hosts"], "");
    assert!(
        hosts.contains(&format!("{ip}\th1.sub.default.svc.cluster.local\th1\n")),
        "{hosts}"
    );
    // The container sees them too (its own mount namespace, made by `ip netns exec`).
    let env = std::fs::read_to_string(format!(
        "/proc/{}/environ",
        wait_pids_in_netns(&netns, 1).await[0]
    ))
    .unwrap();
    assert!(env.split('\0').any(|v| v == "HOSTNAME=h1"), "{env:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_and_forced_deletion_tear_everything_down() {
    let node = Node::start();
    let graceful = node.pod(
        "graceful",
        json!({
            "terminationGracePeriodSeconds": 20,
            "containers": [{"name": "c", "image": "busybox",
                "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]}]
        }),
    );
    let forced = node.pod(
        "forced",
        json!({"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}),
    );
    node.put(&graceful).await;
    node.put(&forced).await;
    let ip = node
        .wait_pod("graceful", 20, "Ready", |p| {
            is_ready(p).then(|| pod_ip(p)).flatten()
        })
        .await;
    node.wait_pod("forced", 20, "Ready", |p| is_ready(p).then_some(()))
        .await;
    let ns = node.netns_of(&graceful);
    let rec = node.record(&graceful, "c").expect("record");
    let program = wait_pids_in_netns(&ns, 1).await;
    assert!(node.ip_leased(&ip.to_string()));

    // Graceful: the kubelet's part of `kubectl delete` (grace 20 s; the trap exits at once).
    let mut p = node.get("graceful").await.unwrap();
    let rev = podnet_store::typed::revision_of(&Object::Pod(p.clone()));
    p.metadata.deletion_timestamp = Some(podnet_runtime::status::now());
    p.metadata.deletion_grace_period_seconds = Some(20);
    assert!(node
        .api
        .put_if(&Object::Pod(p), rev)
        .await
        .unwrap()
        .is_some());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(15);
    while node.get("graceful").await.is_some() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(node.get("graceful").await.is_none(), "pod key not deleted");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}: SIGTERM not delivered?",
        started.elapsed()
    );
    assert!(
        !alive(rec.pid) && program.iter().all(|p| !alive(*p)),
        "processes survived"
    );
    assert!(!netns::exists(&ns), "netns {ns} survived");
    assert!(!node.ip_leased(&ip.to_string()), "IP {ip} still leased");
    assert!(!podnet_runtime::names::etc_netns_dir(&ns).exists());
    assert!(!node.pod_dir(&graceful).exists());

    // Forced: the key disappears; the runtime tears down at once.
    let fns = node.netns_of(&forced);
    let frec = node.record(&forced, "c").expect("record");
    node.api
        .delete(&Object::Pod(forced.clone()).object_ref())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while (netns::exists(&fns) || alive(frec.pid)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !netns::exists(&fns) && !alive(frec.pid),
        "forced delete left the sandbox or process"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_runtime_adopts_running_containers() {
    let mut node = Node::start();
    let pod = node.pod(
        "adopt",
        json!({
            "containers": [
                {"name": "a", "image": "busybox", "command": ["sleep", "3600"]},
                {"name": "b", "image": "busybox", "command": ["sleep", "3600"]},
            ]
        }),
    );
    node.put(&pod).await;
    node.wait_pod("adopt", 20, "Ready", |p| is_ready(p).then_some(()))
        .await;
    let ns = node.netns_of(&pod);
    let (a, b) = (
        node.record(&pod, "a").unwrap(),
        node.record(&pod, "b").unwrap(),
    );
    let before = wait_pids_in_netns(&ns, 2).await;

    node.stop_runtime();
    assert!(
        alive(a.pid) && alive(b.pid),
        "containers died with the runtime"
    );
    node.start_runtime();
    // Give the new runtime time to (wrongly) start duplicates.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(node.record(&pod, "a").unwrap(), a);
    assert_eq!(node.record(&pod, "b").unwrap(), b);
    let mut after = pids_in_netns(&ns);
    after.sort();
    let mut before = before;
    before.sort();
    assert_eq!(after, before, "processes in the pod namespace changed");
    let p = node.get("adopt").await.unwrap();
    assert!(is_ready(&p));
    assert_eq!(container(&p, "a").unwrap().restart_count, 0);

    // The new runtime watches what it adopted: container a's exit restarts it.
    let program_of_a: Vec<u32> = after
        .iter()
        .copied()
        .filter(|pid| podnet_runtime::procfs::stat(*pid).is_some_and(|s| s.pgid == a.pid as i32))
        .collect();
    assert_eq!(program_of_a.len(), 1, "{after:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(program_of_a[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    node.wait_pod("adopt", 15, "a restarted once", |p| {
        let c = container(p, "a")?;
        (c.restart_count == 1 && c.state.as_ref()?.running.is_some()).then_some(())
    })
    .await;
    assert_eq!(node.record(&pod, "b").unwrap(), b);
    assert_eq!(
        container(&node.get("adopt").await.unwrap(), "b")
            .unwrap()
            .restart_count,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_all_leaves_nothing_behind() {
    let mut node = Node::start();
    let pod = node.pod(
        "doomed",
        json!({"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}),
    );
    node.put(&pod).await;
    let ip = node
        .wait_pod("doomed", 20, "Ready", |p| {
            is_ready(p).then(|| pod_ip(p)).flatten()
        })
        .await;
    let ns = node.netns_of(&pod);
    let rec = node.record(&pod, "c").unwrap();
    let program = wait_pids_in_netns(&ns, 1).await;
    node.stop_runtime();
    node.teardown_all().expect("teardown_all");
    assert!(
        !alive(rec.pid) && program.iter().all(|p| !alive(*p)),
        "processes survived"
    );
    let left = netns::list_with_prefix(&format!("{}pod-", node.prefix)).unwrap();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    assert!(!podnet_runtime::names::etc_netns_dir(&ns).exists());
    assert!(!node.pod_dir(&pod).exists());
    assert!(!node.ip_leased(&ip.to_string()), "IP {ip} still leased");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_containers_run_first_and_liveness_failures_restart() {
    let node = Node::start();
    let out = node.dir.path().join("init-out");
    std::fs::create_dir_all(&out).unwrap();
    let marker = out.join("done");
    let pod = node.pod(
        "init",
        json!({
            "initContainers": [
                {"name": "one", "image": "busybox", "command": ["sh", "-c", format!("sleep 0.3; echo one > {}", marker.display())]},
                {"name": "two", "image": "busybox", "command": ["sh", "-c", format!("test -f {}", marker.display())]},
            ],
            "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]
        }),
    );
    let live = node.pod(
        "liveness",
        json!({
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 1}}]
        }),
    );
    node.put(&pod).await;
    node.put(&live).await;
    let p = node
        .wait_pod("init", 20, "Ready", |p| is_ready(p).then(|| p.clone()))
        .await;
    assert_eq!(condition(&p, "Initialized").as_deref(), Some("True"));
    let inits = p
        .status
        .as_ref()
        .unwrap()
        .init_container_statuses
        .clone()
        .unwrap();
    for s in &inits {
        let t = s
            .state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .expect("init terminated");
        assert_eq!(
            (t.exit_code, t.reason.as_deref()),
            (0, Some("Completed")),
            "{}",
            s.name
        );
    }
    assert!(marker.exists());

    let last = node
        .wait_pod("liveness", 20, "a restart after liveness failures", |p| {
            let c = container(p, "c")?;
            (c.restart_count >= 1).then(|| c.last_state.clone()?.terminated)
        })
        .await
        .expect("lastState.terminated");
    assert!(last
        .message
        .unwrap_or_default()
        .contains("liveness probe failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_deleted_while_the_runtime_was_down_are_torn_down_at_startup() {
    let mut node = Node::start();
    let pod = node.pod(
        "orphan",
        json!({"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}),
    );
    node.put(&pod).await;
    let ip = node
        .wait_pod("orphan", 20, "Ready", |p| {
            is_ready(p).then(|| pod_ip(p)).flatten()
        })
        .await;
    let ns = node.netns_of(&pod);
    let rec = node.record(&pod, "c").unwrap();
    node.stop_runtime();
    node.api
        .delete(&Object::Pod(pod.clone()).object_ref())
        .await
        .unwrap();
    node.start_runtime();
    let deadline = Instant::now() + Duration::from_secs(15);
    while (netns::exists(&ns) || alive(rec.pid) || node.pod_dir(&pod).exists())
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!alive(rec.pid), "orphan process survived");
    assert!(!netns::exists(&ns), "orphan netns survived");
    assert!(!node.pod_dir(&pod).exists(), "orphan pod dir survived");
    assert!(!node.ip_leased(&ip.to_string()), "orphan IP still leased");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_from_the_downward_api_and_configmaps() {
    let node = Node::start();
    let cm: podnet_model::k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "default"},
        "data": {"GREETING": "hello", "k": "v"}
    }))
    .unwrap();
    node.api.put(&Object::ConfigMap(cm)).await.unwrap();
    let pod = node.pod(
        "env",
        json!({
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CM_"}],
                "env": [
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "URL", "value": "http://$(POD_IP):8080"},
                    {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
                ]}]
        }),
    );
    node.put(&pod).await;
    let ip = node
        .wait_pod("env", 20, "Ready", |p| {
            is_ready(p).then(|| pod_ip(p)).flatten()
        })
        .await;
    let pid = wait_pids_in_netns(&node.netns_of(&pod), 1).await[0];
    let environ = std::fs::read_to_string(format!("/proc/{pid}/environ")).unwrap();
    let vars: Vec<&str> = environ.split('\0').collect();
    for want in [
        format!("POD_IP={ip}"),
        "NODE=node-a".to_string(),
        format!("URL=http://{ip}:8080"),
        "K=v".to_string(),
        "CM_GREETING=hello".to_string(),
        "HOSTNAME=env".to_string(),
    ] {
        assert!(vars.contains(&want.as_str()), "{want} not in {vars:?}");
    }
}
