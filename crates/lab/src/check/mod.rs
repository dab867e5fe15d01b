//! `lab check`: a connectivity report of a running lab, probed with real packets from
//! inside pod and node namespaces. The probe list is planned purely from the cluster's
//! pods and nodes; each probe then runs a real client (`podnet image agnhost connect`,
//! `curl`) with `ip netns exec` and a bounded timeout.
//!
//! Probes: container-to-container on localhost, pod-to-pod on one node and across
//! nodes (where the server is agnhost netexec, the server must see the client's own
//! pod IP: no NAT), over UDP too where both ends run netexec (the client's netexec
//! `/dial`s the server's UDP `clientip`), node-to-pod, and pod-to-internet (the
//! internet host's netexec must see the pod's node IP: egress is masqueraded),
//! and Services: each ClusterIP with endpoints from a pod (the backend must see the
//! client pod's own IP when it runs netexec), each NodePort from the `external` host,
//! and each ClusterIP without endpoints from a pod (refused at once, not a timeout).
//! DNS and policy probes join as those parts land.

use podnet_model::k8s_openapi::api::core::v1::Pod;

/// A pod as the checks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub netns: String,
    pub node: String,
    pub ip: String,
    /// A TCP port one of its containers listens on.
    pub port: Option<i32>,
    /// It runs agnhost netexec on `port` (so `/clientip` can be asked).
    pub netexec: bool,
    /// A UDP port it declares (netexec's UDP server answers `clientip`).
    pub udp_port: Option<i32>,
    pub containers: usize,
}

/// How one probe is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// TCP connect from inside `from_netns` to `addr:port`.
    Connect {
        from_netns: String,
        addr: String,
        port: i32,
    },
    /// HTTP GET `/clientip` from `from_netns`; the answer must start with `expect_ip:`.
    ClientIp {
        from_netns: String,
        addr: String,
        port: i32,
        expect_ip: String,
    },
    /// TCP connect from `from_netns` to `addr:port` must be refused (RST or ICMP
    /// unreachable), not time out.
    Refused {
        from_netns: String,
        addr: String,
        port: i32,
    },
    /// From `from_netns`, ask the client's own netexec (on 127.0.0.1:`via_port`) to
    /// send `clientip` over UDP to `addr:port`; the answer must name `expect_ip`.
    UdpClientIp {
        from_netns: String,
        via_port: i32,
        addr: String,
        port: i32,
        expect_ip: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub check: &'static str,
    pub from: String,
    pub to: String,
    pub how: How,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub probe: Probe,
    pub ok: bool,
    pub detail: String,
}

/// The lab's view of a running pod, when it has an IP and a sandbox name.
pub fn target_of(pod: &Pod, netns: String) -> Option<Target> {
    let spec = pod.spec.as_ref()?;
    let ip = pod.status.as_ref()?.pod_ip.clone()?;
    let mut port = None;
    let mut netexec = false;
    let mut udp_port = None;
    for c in &spec.containers {
        for p in c.ports.iter().flatten() {
            if p.protocol.as_deref() == Some("UDP") && udp_port.is_none() {
                udp_port = Some(p.container_port);
            }
            if p.protocol.as_deref().unwrap_or("TCP") == "TCP" && port.is_none() {
                port = Some(p.container_port);
                let args = c.args.clone().unwrap_or_default();
                netexec = c.image.as_deref().unwrap_or_default().contains("agnhost")
                    && args.iter().any(|a| a == "netexec");
            }
        }
    }
    Some(Target {
        name: format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or("default"),
            pod.metadata.name.as_deref()?
        ),
        netns,
        node: spec.node_name.clone()?,
        ip,
        port,
        netexec,
        udp_port,
        containers: spec.containers.len(),
    })
}

/// The probes for a set of pods and nodes `(name, netns)` (pure).
pub fn plan(pods: &[Target], nodes: &[(String, String)]) -> Vec<Probe> {
    let mut out = Vec::new();
    for p in pods.iter().filter(|p| p.containers > 1) {
        if let Some(port) = p.port {
            out.push(Probe {
                check: "container-to-container (localhost)",
                from: p.name.clone(),
                to: format!("127.0.0.1:{port}"),
                how: How::Connect {
                    from_netns: p.netns.clone(),
                    addr: "127.0.0.1".into(),
                    port,
                },
            });
        }
    }
    let servers: Vec<&Target> = pods.iter().filter(|p| p.port.is_some()).collect();
    for (node, _) in nodes {
        let Some(client) = pods.iter().find(|p| &p.node == node) else {
            continue;
        };
        // Same node: another pod on it.
        if let Some(s) = servers
            .iter()
            .find(|s| &s.node == node && s.name != client.name)
        {
            out.push(pod_probe("pod-to-pod, same node", client, s));
        }
        // Every other node: one server there.
        for (other, _) in nodes.iter().filter(|(n, _)| n != node) {
            if let Some(s) = servers.iter().find(|s| &s.node == other) {
                out.push(pod_probe("pod-to-pod, across nodes", client, s));
            }
        }
        // UDP across nodes, from a netexec client to a netexec UDP server.
        let udp_client = pods.iter().find(|p| &p.node == node && p.netexec);
        for (other, _) in nodes.iter().filter(|(n, _)| n != node) {
            let server = pods
                .iter()
                .find(|s| &s.node == other && s.netexec && s.udp_port.is_some());
            if let (Some(c), Some(s)) = (udp_client, server) {
                out.push(Probe {
                    check: "pod-to-pod UDP, across nodes",
                    from: format!("{} ({})", c.name, c.node),
                    to: format!(
                        "{} ({}, {}:{}/udp)",
                        s.name,
                        s.node,
                        s.ip,
                        s.udp_port.unwrap_or_default()
                    ),
                    how: How::UdpClientIp {
                        from_netns: c.netns.clone(),
                        via_port: c.port.unwrap_or_default(),
                        addr: s.ip.clone(),
                        port: s.udp_port.unwrap_or_default(),
                        expect_ip: c.ip.clone(),
                    },
                });
            }
        }
    }
    for (node, netns) in nodes {
        if let Some(s) = servers.iter().find(|s| &s.node != node).or(servers.first()) {
            let port = s.port.unwrap_or_default();
            out.push(Probe {
                check: "node-to-pod",
                from: node.clone(),
                to: format!("{} ({}:{port})", s.name, s.ip),
                how: How::Connect {
                    from_netns: netns.clone(),
                    addr: s.ip.clone(),
                    port,
                },
            });
        }
    }
    out
}

/// One pod-to-internet probe per node, from a pod on it: the internet host's
/// netexec at `internet` must see the node's own IP (`nodes`: name, node IP).
pub fn internet_probes(
    pods: &[Target],
    nodes: &[(String, String)],
    internet: &str,
    port: i32,
) -> Vec<Probe> {
    nodes
        .iter()
        .filter_map(|(node, node_ip)| {
            let client = pods.iter().find(|p| &p.node == node)?;
            Some(Probe {
                check: "pod-to-internet (masqueraded)",
                from: format!("{} ({})", client.name, client.node),
                to: format!("internet ({internet}:{port})"),
                how: How::ClientIp {
                    from_netns: client.netns.clone(),
                    addr: internet.to_string(),
                    port,
                    expect_ip: node_ip.clone(),
                },
            })
        })
        .collect()
}

/// A Service as the checks see it: its ClusterIP, first TCP port, NodePort, and the
/// IPs of its ready endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTarget {
    pub name: String,
    pub cluster_ip: String,
    pub port: i32,
    pub node_port: Option<i32>,
    pub endpoints: Vec<String>,
}

/// The lab's view of a Service with an allocated ClusterIP and a TCP port.
pub fn service_target(
    svc: &podnet_model::k8s_openapi::api::core::v1::Service,
    slices: &[podnet_model::k8s_openapi::api::discovery::v1::EndpointSlice],
) -> Option<ServiceTarget> {
    let ip = podnet_model::service::allocated_cluster_ip(svc)?.to_string();
    let spec = svc.spec.as_ref()?;
    let port = spec
        .ports
        .iter()
        .flatten()
        .find(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")?;
    let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
    let name = svc.metadata.name.as_deref()?;
    let endpoints = slices
        .iter()
        .filter(|s| {
            s.metadata.namespace.as_deref().unwrap_or("default") == ns
                && s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(podnet_model::service::SERVICE_NAME_LABEL))
                    .is_some_and(|n| n == name)
        })
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .filter_map(|e| e.addresses.first().cloned())
        .collect();
    Some(ServiceTarget {
        name: format!("{ns}/{name}"),
        cluster_ip: ip,
        port: port.port,
        node_port: port.node_port,
        endpoints,
    })
}

/// Service probes (pure): a ClusterIP with endpoints from a pod (checking the
/// client's IP reaches a netexec backend unchanged), a NodePort from the `external`
/// host (`external`: its netns; `nodes`: name, node IP), a ClusterIP without
/// endpoints from a pod (refused).
pub fn service_probes(
    pods: &[Target],
    services: &[ServiceTarget],
    nodes: &[(String, String)],
    external: Option<&str>,
) -> Vec<Probe> {
    let mut out = Vec::new();
    let Some(client) = pods.first() else {
        return out;
    };
    for s in services {
        let to = format!("{} ({}:{})", s.name, s.cluster_ip, s.port);
        let from = format!("{} ({})", client.name, client.node);
        if s.endpoints.is_empty() {
            out.push(Probe {
                check: "service without endpoints (rejected)",
                from,
                to,
                how: How::Refused {
                    from_netns: client.netns.clone(),
                    addr: s.cluster_ip.clone(),
                    port: s.port,
                },
            });
            continue;
        }
        let netexec = s
            .endpoints
            .iter()
            .all(|ip| pods.iter().any(|p| &p.ip == ip && p.netexec));
        let how = if netexec && !s.endpoints.contains(&client.ip) {
            How::ClientIp {
                from_netns: client.netns.clone(),
                addr: s.cluster_ip.clone(),
                port: s.port,
                expect_ip: client.ip.clone(),
            }
        } else {
            How::Connect {
                from_netns: client.netns.clone(),
                addr: s.cluster_ip.clone(),
                port: s.port,
            }
        };
        out.push(Probe {
            check: "service ClusterIP",
            from,
            to,
            how,
        });
        if let (Some(np), Some(ext), Some((node, node_ip))) = (s.node_port, external, nodes.first())
        {
            out.push(Probe {
                check: "service NodePort (from external)",
                from: "external".into(),
                to: format!("{} ({node} {node_ip}:{np})", s.name),
                how: How::Connect {
                    from_netns: ext.to_string(),
                    addr: node_ip.clone(),
                    port: np,
                },
            });
        }
    }
    out
}

fn pod_probe(check: &'static str, client: &Target, server: &Target) -> Probe {
    let port = server.port.unwrap_or_default();
    let how = if server.netexec {
        How::ClientIp {
            from_netns: client.netns.clone(),
            addr: server.ip.clone(),
            port,
            expect_ip: client.ip.clone(),
        }
    } else {
        How::Connect {
            from_netns: client.netns.clone(),
            addr: server.ip.clone(),
            port,
        }
    };
    Probe {
        check,
        from: format!("{} ({})", client.name, client.node),
        to: format!("{} ({}, {}:{port})", server.name, server.node, server.ip),
        how,
    }
}

mod run;
pub use run::{check_lab, run};

#[cfg(test)]
mod tests;
