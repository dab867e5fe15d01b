//! Services in the lab, end to end, with real clients (curl, and netexec's UDP `/dial`)
//! from pods, a node and the `external` host, through the agents' service proxy:
//! ClusterIP over TCP and UDP with the client pod's own IP kept; a NodePort on every
//! node (also one without an endpoint) with the source masqueraded; externalTrafficPolicy
//! Local (only the local endpoint, the external client's IP kept, dropped on a node
//! without one, health-check node port 200/503); a LoadBalancer IP with
//! loadBalancerSourceRanges; session affinity; hairpin; a service without endpoints
//! refused at once; a node reaching a ClusterIP. Needs root, ip and curl.

mod common;

use std::time::{Duration, Instant};

use common::Lab;

trait ServiceLab {
    /// `curl -s -m 3 URL` from a pod; `None` when curl fails.
    fn curl_pod(&self, pod: &str, url: &str) -> Option<String>;
    /// `curl` inside one of the lab's hosts; returns (exit code, stdout).
    fn curl_host(&self, host: &str, args: &[&str]) -> (i32, String);
}

impl ServiceLab for Lab {
    fn curl_pod(&self, pod: &str, url: &str) -> Option<String> {
        let o = self.podnet(&[
            "exec", pod, "-n", "demo", "--", "curl", "-s", "-m", "3", url,
        ]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    fn curl_host(&self, host: &str, args: &[&str]) -> (i32, String) {
        let mut a = vec![
            "lab", "exec", "--name", &self.name, host, "--", "curl", "-s",
        ];
        a.extend_from_slice(args);
        let o = self.podnet(&a);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    }
}

const MANIFEST: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: demo, labels: {app: web, instance: one}}
spec:
  nodeName: node-1
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.47
    args: [netexec, --http-port=8080, --udp-port=8081]
    ports: [{name: http, containerPort: 8080}, {name: udp, containerPort: 8081, protocol: UDP}]
    readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: demo, labels: {app: web}}
spec:
  nodeName: node-2
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.47
    args: [netexec, --http-port=8080, --udp-port=8081]
    ports: [{name: http, containerPort: 8080}, {name: udp, containerPort: 8081, protocol: UDP}]
    readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: demo}
spec:
  nodeName: node-3
  containers:
  - name: client
    image: registry.k8s.io/e2e-test-images/agnhost:2.47
    args: [netexec, --http-port=9080, --udp-port=9081]
    ports: [{name: http, containerPort: 9080}]
    readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: dns, port: 53, targetPort: udp, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: web-np, namespace: demo}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-local, namespace: demo}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {instance: one}
  ports: [{name: http, port: 80, targetPort: http, nodePort: 30081}]
---
apiVersion: v1
kind: Service
metadata: {name: web-lb, namespace: demo}
spec:
  type: LoadBalancer
  loadBalancerSourceRanges: [172.18.0.2/32]
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http, nodePort: 30082}]
---
apiVersion: v1
kind: Service
metadata: {name: web-sticky, namespace: demo}
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 300}}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-one, namespace: demo}
spec:
  selector: {instance: one}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: nobody, namespace: demo}
spec:
  selector: {app: nobody}
  ports: [{name: http, port: 80, targetPort: 8080}]
"#;

fn cluster_ip(lab: &Lab, svc: &str) -> String {
    lab.json(&["get", "service", svc, "-n", "demo", "-o", "json"])["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .to_string()
}

fn ip_of(answer: &str) -> &str {
    answer
        .trim()
        .rsplit_once(':')
        .map_or(answer.trim(), |(ip, _)| ip)
}

#[test]
fn services_from_pods_nodes_and_outside() {
    common::require_root_and_tools(&[("ip", "iproute2"), ("curl", "curl")]);
    let lab = Lab::new("svc");
    let manifest = lab.root.path().join("services.yaml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let up = lab.up(&[], &[manifest.to_str().unwrap()]);
    assert!(up.contains(" 0 failed"), "{up}");
    assert!(up.contains("service ClusterIP"), "{up}");
    assert!(up.contains("service NodePort (from external)"), "{up}");
    assert!(up.contains("service without endpoints (rejected)"), "{up}");

    let client_ip = lab.pod_ip(Some("demo"), "client");
    let web = cluster_ip(&lab, "web");

    // 1. ClusterIP over TCP from a pod: both endpoints, the client's own IP kept
    let mut hosts = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let seen = lab
            .curl_pod("client", &format!("http://{web}/clientip"))
            .expect("ClusterIP answers");
        assert_eq!(ip_of(&seen), client_ip, "no NAT of pod sources: {seen}");
        hosts.insert(
            lab.curl_pod("client", &format!("http://{web}/hostname"))
                .unwrap(),
        );
        if hosts.len() == 2 {
            break;
        }
    }
    assert_eq!(hosts.len(), 2, "both endpoints serve: {hosts:?}");
    // ... and over UDP (the client's netexec dials the ClusterIP's UDP port)
    let dial = lab
        .curl_pod("client", &format!("http://127.0.0.1:9080/dial?request=clientip&protocol=udp&host={web}&port=53&tries=1"))
        .unwrap();
    assert!(
        dial.contains(&format!("\"{client_ip}:")),
        "UDP through the ClusterIP: {dial}"
    );
    // ... and from a node
    let (rc, seen) = lab.curl_host("node-2", &["-m", "3", &format!("http://{web}/hostname")]);
    assert!(
        rc == 0 && seen.starts_with("web-"),
        "node to ClusterIP: {rc} {seen}"
    );

    // 2 + 11. NodePort from the external host, on every node (node-3 has no endpoint),
    // masqueraded (externalTrafficPolicy Cluster)
    for node_ip in ["172.18.0.2", "172.18.0.3", "172.18.0.4"] {
        let (rc, seen) = lab.curl_host(
            "external",
            &["-m", "3", &format!("http://{node_ip}:30080/clientip")],
        );
        assert_eq!(rc, 0, "NodePort on {node_ip}");
        assert_ne!(
            ip_of(&seen),
            "172.18.0.100",
            "ETP Cluster masquerades the client: {seen}"
        );
    }

    // 5. externalTrafficPolicy Local: node-1 (has web-1) serves and keeps the client's
    // IP; node-3 has no endpoint: dropped (curl times out), health check 503
    let (rc, seen) = lab.curl_host("external", &["-m", "3", "http://172.18.0.2:30081/clientip"]);
    assert_eq!(
        (rc, ip_of(&seen)),
        (0, "172.18.0.100"),
        "ETP Local keeps the source: {seen}"
    );
    let start = Instant::now();
    let (rc, _) = lab.curl_host("external", &["-m", "2", "http://172.18.0.4:30081/clientip"]);
    assert_eq!(
        rc, 28,
        "dropped (curl timed out) on a node without a local endpoint"
    );
    assert!(start.elapsed() >= Duration::from_secs(2));
    let svc = lab.json(&["get", "service", "web-local", "-n", "demo", "-o", "json"]);
    let hc = svc["spec"]["healthCheckNodePort"]
        .as_i64()
        .expect("a healthCheckNodePort");
    // node-1 has web-1, node-3 nothing local
    for (node_ip, code, local) in [("172.18.0.2", "200", 1), ("172.18.0.4", "503", 0)] {
        let (_, body) = lab.curl_host(
            "external",
            &[
                "-m",
                "3",
                "-w",
                " %{http_code}",
                &format!("http://{node_ip}:{hc}/"),
            ],
        );
        assert!(
            body.ends_with(&format!(" {code}"))
                && body.contains(&format!("\"localEndpoints\":{local}")),
            "health check on {node_ip}: {body}"
        );
    }

    // 3. LoadBalancer IP with loadBalancerSourceRanges [node-1's address]: from node-1
    // it answers, from node-2 it is dropped
    let lb = lab.json(&["get", "service", "web-lb", "-n", "demo", "-o", "json"]);
    let lb_ip = lb["status"]["loadBalancer"]["ingress"][0]["ip"]
        .as_str()
        .expect("an LB IP")
        .to_string();
    let (rc, _) = lab.curl_host("node-1", &["-m", "3", &format!("http://{lb_ip}/hostname")]);
    assert_eq!(rc, 0, "the LB IP from an allowed source");
    let (rc, _) = lab.curl_host("node-2", &["-m", "2", &format!("http://{lb_ip}/hostname")]);
    assert_eq!(
        rc, 28,
        "the LB IP from a source outside loadBalancerSourceRanges is dropped"
    );

    // 4. session affinity: one client, one endpoint
    let sticky = cluster_ip(&lab, "web-sticky");
    let first = lab
        .curl_pod("client", &format!("http://{sticky}/hostname"))
        .unwrap();
    for _ in 0..10 {
        assert_eq!(
            lab.curl_pod("client", &format!("http://{sticky}/hostname"))
                .unwrap(),
            first
        );
    }

    // 6. hairpin: web-1 reaches a service whose only endpoint is itself; it lands on
    // itself, masqueraded (it sees a node address, not its own)
    let one = cluster_ip(&lab, "web-one");
    let web1_ip = lab.pod_ip(Some("demo"), "web-1");
    let seen = lab
        .curl_pod("web-1", &format!("http://{one}/clientip"))
        .expect("hairpin works");
    assert_ne!(
        ip_of(&seen),
        web1_ip,
        "hairpin traffic is masqueraded: {seen}"
    );

    // 7. no endpoints: refused at once; an unused port of a ClusterIP: refused;
    // an unallocated service address: dropped
    let nobody = cluster_ip(&lab, "nobody");
    for url in [format!("http://{nobody}/"), format!("http://{web}:81/")] {
        let start = Instant::now();
        let o = lab.podnet(&[
            "exec", "client", "-n", "demo", "--", "curl", "-s", "-m", "3", &url,
        ]);
        assert_eq!(
            o.status.code(),
            Some(7),
            "{url}: curl 7 = connection refused"
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{url}: refused at once"
        );
    }
    let o = lab.podnet(&[
        "exec",
        "client",
        "-n",
        "demo",
        "--",
        "curl",
        "-s",
        "-m",
        "1",
        "http://10.111.222.33/",
    ]);
    assert_eq!(
        o.status.code(),
        Some(28),
        "an unallocated service address is dropped"
    );
}
