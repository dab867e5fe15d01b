//! Running the probes with real clients (`agnhost connect`, `curl`) inside the lab's
//! namespaces, and `check_lab`, which plans and runs them for a running lab.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::*;

/// `podnet image agnhost connect ADDR:PORT` inside `netns`: exit 0 when connected,
/// otherwise one stderr line starting with `REFUSED`, `TIMEOUT`, ...
fn agnhost_connect(
    podnet: &Path,
    netns: &str,
    addr: &str,
    port: i32,
    secs: &str,
) -> std::io::Result<std::process::Output> {
    Command::new("ip")
        .args(["netns", "exec", netns])
        .arg(podnet)
        .args([
            "image",
            "agnhost",
            "connect",
            &format!("{addr}:{port}"),
            &format!("--timeout={secs}s"),
        ])
        .output()
}

/// Runs one probe with real clients; bounded by `timeout`.
pub fn run(probe: &Probe, podnet: &Path, timeout: Duration) -> Outcome {
    let secs = format!("{}", timeout.as_secs().max(1));
    let (ok, detail) = match &probe.how {
        How::Connect {
            from_netns,
            addr,
            port,
        } => {
            let out = agnhost_connect(podnet, from_netns, addr, *port, &secs);
            match out {
                Ok(o) if o.status.success() => (true, "TCP connection established".to_string()),
                Ok(o) => (
                    false,
                    format!(
                        "connect failed: {}",
                        String::from_utf8_lossy(&o.stderr).trim()
                    ),
                ),
                Err(e) => (false, format!("could not run the probe: {e}")),
            }
        }
        How::Refused {
            from_netns,
            addr,
            port,
        } => {
            let out = agnhost_connect(podnet, from_netns, addr, *port, &secs);
            match out {
                Ok(o) if o.status.success() => (
                    false,
                    "the connection was accepted; expected a refusal".to_string(),
                ),
                Ok(o) => {
                    let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
                    if err.starts_with("REFUSED") {
                        (true, "refused at once (no endpoints)".to_string())
                    } else {
                        (false, format!("expected REFUSED, got {err}"))
                    }
                }
                Err(e) => (false, format!("could not run the probe: {e}")),
            }
        }
        How::ClientIp {
            from_netns,
            addr,
            port,
            expect_ip,
        } => {
            let out = Command::new("ip")
                .args(["netns", "exec", from_netns, "curl", "-s", "-m", &secs])
                .arg(format!("http://{addr}:{port}/clientip"))
                .output();
            match out {
                Ok(o) if o.status.success() => {
                    let seen = String::from_utf8_lossy(&o.stdout).trim().to_string();
                    let ip = seen.rsplit_once(':').map(|(ip, _)| ip).unwrap_or(&seen);
                    if ip == expect_ip && probe.check.starts_with("pod-to-internet") {
                        (true, format!("internet saw {seen}: the node's IP"))
                    } else if ip == expect_ip {
                        (true, format!("server saw {seen}: the client's own IP"))
                    } else {
                        (
                            false,
                            format!("server saw {seen}, expected {expect_ip} (NAT in the path?)"),
                        )
                    }
                }
                Ok(o) => (
                    false,
                    format!(
                        "curl exited with {}: {}",
                        o.status,
                        String::from_utf8_lossy(&o.stderr).trim()
                    ),
                ),
                Err(e) => (false, format!("could not run curl (install curl): {e}")),
            }
        }
        How::UdpClientIp {
            from_netns,
            via_port,
            addr,
            port,
            expect_ip,
        } => {
            let url = format!(
                "http://127.0.0.1:{via_port}/dial?request=clientip&protocol=udp&host={addr}&port={port}&tries=1"
            );
            let out = Command::new("ip")
                .args(["netns", "exec", from_netns, "curl", "-s", "-m", &secs, &url])
                .output();
            match out {
                Ok(o) if o.status.success() => {
                    let body = String::from_utf8_lossy(&o.stdout).trim().to_string();
                    let seen = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["responses"][0].as_str().map(str::to_string))
                        .unwrap_or_default();
                    let ip = seen.rsplit_once(':').map(|(ip, _)| ip).unwrap_or(&seen);
                    if ip == expect_ip {
                        (
                            true,
                            format!("server saw {seen} over UDP: the client's own IP"),
                        )
                    } else {
                        (
                            false,
                            format!("dial answered {body}, expected {expect_ip} (NAT or loss?)"),
                        )
                    }
                }
                Ok(o) => (
                    false,
                    format!(
                        "curl exited with {}: {}",
                        o.status,
                        String::from_utf8_lossy(&o.stderr).trim()
                    ),
                ),
                Err(e) => (false, format!("could not run curl (install curl): {e}")),
            }
        }
    };
    Outcome {
        probe: probe.clone(),
        ok,
        detail,
    }
}

/// Plans and runs every probe of a running lab (`podnet` is the executable the probes
/// use as their client).
pub async fn check_lab(
    lab: &crate::LabPlan,
    api: &podnet_store::Api,
    podnet: &Path,
) -> Result<Vec<Outcome>, crate::LabError> {
    use podnet_model::{Kind, Object};
    let (pods, _) = api
        .list(Kind::Pod, None)
        .await
        .map_err(|e| crate::LabError::Failed(e.to_string()))?;
    let targets: Vec<Target> = pods
        .iter()
        .filter_map(|o| match o {
            Object::Pod(p) if crate::up::pod_ready(p) => {
                let uid = p.metadata.uid.clone()?;
                target_of(p, lab.pod_netns(&uid))
            }
            _ => None,
        })
        .collect();
    let nodes: Vec<(String, String)> = lab
        .nodes()
        .map(|n| (n.name.clone(), n.netns.clone()))
        .collect();
    let mut probes = plan(&targets, &nodes);
    if let Some(internet) = lab.host("internet") {
        let node_ips: Vec<(String, String)> = lab
            .nodes()
            .map(|n| (n.name.clone(), n.ip.to_string()))
            .collect();
        probes.extend(internet_probes(
            &targets,
            &node_ips,
            &internet.ip.to_string(),
            i32::from(crate::up::INTERNET_PORT),
        ));
    }
    let (services, _) = api
        .list(Kind::Service, None)
        .await
        .map_err(|e| crate::LabError::Failed(e.to_string()))?;
    let (slices, _) = api
        .list(Kind::EndpointSlice, None)
        .await
        .map_err(|e| crate::LabError::Failed(e.to_string()))?;
    let slices: Vec<_> = slices
        .into_iter()
        .filter_map(|o| match o {
            Object::EndpointSlice(s) => Some(s),
            _ => None,
        })
        .collect();
    let services: Vec<ServiceTarget> = services
        .iter()
        .filter_map(|o| match o {
            Object::Service(s) => service_target(s, &slices),
            _ => None,
        })
        .collect();
    let node_ips: Vec<(String, String)> = lab
        .nodes()
        .map(|n| (n.name.clone(), n.ip.to_string()))
        .collect();
    probes.extend(service_probes(
        &targets,
        &services,
        &node_ips,
        lab.host("external").map(|h| h.netns.as_str()),
    ));
    let podnet = podnet.to_path_buf();
    tokio::task::spawn_blocking(move || {
        probes
            .iter()
            .map(|p| run(p, &podnet, Duration::from_secs(3)))
            .collect()
    })
    .await
    .map_err(|e| crate::LabError::Failed(format!("probe task: {e}")))
}
