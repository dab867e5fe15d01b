//! Running the probes with real clients (`agnhost connect`, `curl`) inside the lab's
//! namespaces, and `check_lab`, which plans and runs them for a running lab.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::*;

/// `podnet image agnhost connect ADDR:PORT` inside `netns`: `Ok(Ok(()))` when
/// connected, `Ok(Err(line))` with agnhost's stderr line (`REFUSED ...`, `TIMEOUT ...`)
/// when not, `Err` when the probe could not run.
fn agnhost_connect(
    podnet: &Path,
    netns: &str,
    addr: &str,
    port: i32,
    secs: &str,
) -> Result<Result<(), String>, String> {
    let out = Command::new("ip")
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
        .map_err(|e| format!("could not run the probe: {e}"))?;
    Ok(if out.status.success() {
        Ok(())
    } else {
        Err(stderr_line(&out))
    })
}

/// `curl -s -m SECS URL` inside `netns`: the trimmed body, or why there is none.
fn curl_in(netns: &str, secs: &str, url: &str) -> Result<String, String> {
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "curl", "-s", "-m", secs, url])
        .output()
        .map_err(|e| format!("could not run curl (install curl): {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "curl exited with {}: {}",
            out.status,
            stderr_line(&out)
        ))
    }
}

fn stderr_line(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// Runs one probe with real clients; bounded by `timeout`.
pub fn run(probe: &Probe, podnet: &Path, timeout: Duration) -> Outcome {
    let secs = format!("{}", timeout.as_secs().max(1));
    let (ok, detail) = match &probe.how {
        How::Connect {
            from_netns,
            addr,
            port,
        } => match agnhost_connect(podnet, from_netns, addr, *port, &secs) {
            Ok(Ok(())) => (true, "TCP connection established".to_string()),
            Ok(Err(err)) => (false, format!("connect failed: {err}")),
            Err(e) => (false, e),
        },
        How::Refused {
            from_netns,
            addr,
            port,
        } => match agnhost_connect(podnet, from_netns, addr, *port, &secs) {
            Ok(Ok(())) => (
                false,
                "the connection was accepted; expected a refusal".to_string(),
            ),
            Ok(Err(err)) if err.starts_with("REFUSED") => {
                (true, "refused at once (no endpoints)".to_string())
            }
            Ok(Err(err)) => (false, format!("expected REFUSED, got {err}")),
            Err(e) => (false, e),
        },
        How::ClientIp {
            from_netns,
            addr,
            port,
            expect_ip,
        } => match curl_in(from_netns, &secs, &format!("http://{addr}:{port}/clientip")) {
            Ok(seen) => {
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
            Err(e) => (false, e),
        },
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
            match curl_in(from_netns, &secs, &url) {
                Ok(body) => {
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
                Err(e) => (false, e),
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
