//! Probes: their timing and thresholds (pure) and running one attempt (effects).
//! TCP and HTTP probes connect from the runtime's (the node's) namespace to the pod IP;
//! exec probes run the command inside the pod's namespace.

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use podnet_model::k8s_openapi::api::core::v1::{ContainerPort, Probe};
use podnet_model::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Startup,
    Readiness,
    Liveness,
}

/// When and how often a probe runs, and how many results flip it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Timing {
    /// Kubernetes' defaults: period 10 s, timeout 1 s, thresholds 1 and 3.
    pub fn of(p: &Probe) -> Timing {
        let secs = |v: Option<i32>, default: i32, min: i32| {
            Duration::from_secs(v.unwrap_or(default).max(min) as u64)
        };
        let count = |v: Option<i32>, default: i32| v.unwrap_or(default).max(1) as u32;
        Timing {
            initial_delay: secs(p.initial_delay_seconds, 0, 0),
            period: secs(p.period_seconds, 10, 1),
            timeout: secs(p.timeout_seconds, 1, 1),
            success_threshold: count(p.success_threshold, 1),
            failure_threshold: count(p.failure_threshold, 3),
        }
    }
}

/// Consecutive results against the thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    timing: Timing,
    successes: u32,
    failures: u32,
    /// The probe's current verdict.
    pub passing: bool,
    /// The last failure's message.
    pub last_message: String,
}

impl Tracker {
    /// Readiness and startup start failing; liveness starts passing.
    pub fn new(kind: ProbeKind, timing: Timing) -> Tracker {
        Tracker {
            timing,
            successes: 0,
            failures: 0,
            passing: kind == ProbeKind::Liveness,
            last_message: String::new(),
        }
    }

    /// Whether the failures in a row reached the failure threshold (a startup probe
    /// that never passed gives up then).
    pub fn failed_out(&self) -> bool {
        self.failures >= self.timing.failure_threshold
    }

    /// Records one result; returns the new verdict when it changed.
    pub fn observe(&mut self, ok: bool, message: &str) -> Option<bool> {
        if ok {
            self.successes += 1;
            self.failures = 0;
        } else {
            self.failures += 1;
            self.successes = 0;
            self.last_message = message.to_string();
        }
        let flip = if self.passing {
            self.failures >= self.timing.failure_threshold
        } else {
            self.successes >= self.timing.success_threshold
        };
        if flip {
            self.passing = !self.passing;
            Some(self.passing)
        } else {
            None
        }
    }
}

/// Where a probe runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub pod_ip: IpAddr,
    /// Runs a program inside the pod (`ip netns exec <podns>`; empty: host network).
    pub exec_prefix: Vec<String>,
    /// The container's environment, for exec probes.
    pub env: Vec<(String, String)>,
    /// The container's ports, for named ports.
    pub ports: Vec<ContainerPort>,
}

/// Runs one attempt of `probe`: `Ok(())` on success, else why it failed.
pub async fn attempt(probe: &Probe, target: &Target, timeout: Duration) -> Result<(), String> {
    if let Some(tcp) = &probe.tcp_socket {
        let port = port_of(&tcp.port, &target.ports)?;
        let host = host_of(tcp.host.as_deref(), target.pod_ip)?;
        let addr = SocketAddr::new(host, port);
        return match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("dial tcp {addr}: {e}")),
            Err(_) => Err(format!("dial tcp {addr}: timed out after {timeout:?}")),
        };
    }
    if let Some(http) = &probe.http_get {
        if http
            .scheme
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("https"))
        {
            return Err("httpGet scheme HTTPS is not supported in the lab: expected HTTP".into());
        }
        let port = port_of(&http.port, &target.ports)?;
        let host = host_of(http.host.as_deref(), target.pod_ip)?;
        let addr = SocketAddr::new(host, port);
        let path = http
            .path
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or("/");
        let headers: Vec<(String, String)> = http
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        return match tokio::time::timeout(timeout, http_get(addr, path, &headers)).await {
            Ok(Ok(code)) if (200..400).contains(&code) => Ok(()),
            Ok(Ok(code)) => Err(format!("HTTP probe failed with statuscode: {code}")),
            Ok(Err(e)) => Err(format!("Get \"http://{addr}{path}\": {e}")),
            Err(_) => Err(format!(
                "Get \"http://{addr}{path}\": timed out after {timeout:?}"
            )),
        };
    }
    if let Some(exec) = &probe.exec {
        let command = exec.command.clone().unwrap_or_default();
        return exec_probe(&command, target, timeout).await;
    }
    Err(
        "unsupported probe: expected tcpSocket, httpGet or exec (grpc is not supported in the lab)"
            .into(),
    )
}

fn port_of(port: &IntOrString, ports: &[ContainerPort]) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => {
            u16::try_from(*n).map_err(|_| format!("probe port {n} out of range"))
        }
        IntOrString::String(name) => {
            if let Ok(n) = name.parse::<u16>() {
                return Ok(n);
            }
            ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| {
                    format!(
                        "probe port {name:?}: expected a named port of the container, found none"
                    )
                })
        }
    }
}

fn host_of(host: Option<&str>, pod_ip: IpAddr) -> Result<IpAddr, String> {
    match host.filter(|h| !h.is_empty()) {
        None => Ok(pod_ip),
        Some(h) => h.parse().map_err(|_| {
            format!("probe host {h:?}: expected an IP address (names are not resolved)")
        }),
    }
}

/// One HTTP/1.1 GET; returns the status code.
async fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(String, String)],
) -> Result<u16, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut req = format!("GET {path} HTTP/1.1\r\n");
    if !has("host") {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    if !has("user-agent") {
        req.push_str("User-Agent: kube-probe/1.33\r\n");
    }
    if !has("accept") {
        req.push_str("Accept: */*\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.contains(&b'\n') && buf.len() < 8192 {
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let line = line.lines().next().unwrap_or_default();
    let mut words = line.split_whitespace();
    match (words.next(), words.next().and_then(|c| c.parse().ok())) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => Ok(code),
        _ => Err(format!(
            "malformed HTTP response: expected a status line, found {line:?}"
        )),
    }
}

async fn exec_probe(command: &[String], target: &Target, timeout: Duration) -> Result<(), String> {
    let argv: Vec<&String> = target.exec_prefix.iter().chain(command).collect();
    let Some((program, args)) = argv.split_first() else {
        return Err("exec probe without a command".into());
    };
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(target.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("exec probe {command:?}: {e}"))?;
    let pid = child.id().unwrap_or_default() as i32;
    let mut out = child.stdout.take();
    let output = async {
        let mut text = String::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_string(&mut text).await;
        }
        (child.wait().await, text)
    };
    match tokio::time::timeout(timeout, output).await {
        Ok((Ok(status), _)) if status.success() => Ok(()),
        Ok((Ok(status), text)) => Err(format!(
            "exec probe {command:?} failed: {status}; output: {}",
            text.chars().take(200).collect::<String>().trim()
        )),
        Ok((Err(e), _)) => Err(format!("exec probe {command:?}: {e}")),
        Err(_) => {
            if pid > 0 {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Err(format!(
                "exec probe {command:?} timed out after {timeout:?}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_defaults_and_minimums() {
        let t = Timing::of(&Probe::default());
        assert_eq!(t.period, Duration::from_secs(10));
        assert_eq!(t.timeout, Duration::from_secs(1));
        assert_eq!((t.success_threshold, t.failure_threshold), (1, 3));
        let t = Timing::of(&Probe {
            period_seconds: Some(0),
            failure_threshold: Some(1),
            ..Probe::default()
        });
        assert_eq!(t.period, Duration::from_secs(1));
        assert_eq!(t.failure_threshold, 1);
    }

    #[test]
    fn tracker_flips_on_thresholds() {
        let timing = Timing {
            success_threshold: 2,
            failure_threshold: 2,
            ..Timing::of(&Probe::default())
        };
        let mut r = Tracker::new(ProbeKind::Readiness, timing);
        assert!(!r.passing);
        assert_eq!(r.observe(true, ""), None);
        assert_eq!(r.observe(true, ""), Some(true));
        assert_eq!(r.observe(false, "x"), None);
        assert_eq!(r.observe(true, ""), None);
        assert_eq!(r.observe(false, "x"), None);
        assert_eq!(r.observe(false, "y"), Some(false));
        assert_eq!(r.last_message, "y");
        let l = Tracker::new(ProbeKind::Liveness, timing);
        assert!(l.passing);
    }

    #[test]
    fn named_ports_resolve() {
        let ports = vec![ContainerPort {
            name: Some("http".into()),
            container_port: 8080,
            ..ContainerPort::default()
        }];
        assert_eq!(
            port_of(&IntOrString::String("http".into()), &ports),
            Ok(8080)
        );
        assert_eq!(port_of(&IntOrString::Int(80), &ports), Ok(80));
        assert!(port_of(&IntOrString::String("nope".into()), &ports).is_err());
    }

    #[tokio::test]
    async fn http_and_tcp_probes_against_a_local_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 512];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let code = if req.starts_with("GET /ok ") && req.contains("X-Probe: yes") {
                    200
                } else {
                    500
                };
                let _ = s
                    .write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        let target = Target {
            pod_ip: "127.0.0.1".parse().unwrap(),
            exec_prefix: Vec::new(),
            env: Vec::new(),
            ports: Vec::new(),
        };
        let http = |path: &str| -> Probe {
            serde_json::from_value(serde_json::json!({
                "httpGet": {"path": path, "port": port, "httpHeaders": [{"name": "X-Probe", "value": "yes"}]}
            }))
            .unwrap()
        };
        let t = Duration::from_secs(2);
        assert_eq!(attempt(&http("/ok"), &target, t).await, Ok(()));
        let err = attempt(&http("/bad"), &target, t).await.unwrap_err();
        assert!(err.contains("statuscode: 500"), "{err}");
        let tcp: Probe =
            serde_json::from_value(serde_json::json!({"tcpSocket": {"port": port}})).unwrap();
        assert_eq!(attempt(&tcp, &target, t).await, Ok(()));
        let exec: Probe = serde_json::from_value(
            serde_json::json!({"exec": {"command": ["sh", "-c", "exit 3"]}}),
        )
        .unwrap();
        let err = attempt(&exec, &target, t).await.unwrap_err();
        assert!(err.contains("exit status: 3"), "{err}");
    }
}
