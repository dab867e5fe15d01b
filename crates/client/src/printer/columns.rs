//! The columns of each kind, as kubectl shows them (plus `-o wide` extras).

use jiff::Timestamp;
use podnet_model::k8s_openapi::api::core::v1::{Node, Pod, Service};
use podnet_model::k8s_openapi::api::discovery::v1::EndpointSlice;
use podnet_model::k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use podnet_model::{Kind, Object, Selector};

use super::age;

const NONE: &str = "<none>";

/// Column headers for a kind.
pub fn headers(kind: Kind, wide: bool) -> Vec<String> {
    let (base, extra): (&[&str], &[&str]) = match kind {
        Kind::Pod => (
            &["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            &["IP", "NODE"],
        ),
        Kind::Service => (
            &[
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE",
            ],
            &["SELECTOR"],
        ),
        Kind::Node => (
            &["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
            &["INTERNAL-IP", "POD-CIDR"],
        ),
        Kind::Namespace => (&["NAME", "STATUS", "AGE"], &[]),
        Kind::EndpointSlice => (
            &["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"],
            &["SERVICE"],
        ),
        Kind::NetworkPolicy => (&["NAME", "POD-SELECTOR", "AGE"], &["POLICY-TYPES"]),
        Kind::Ingress => (&["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"], &[]),
        Kind::Secret => (&["NAME", "TYPE", "DATA", "AGE"], &[]),
        Kind::ConfigMap => (&["NAME", "DATA", "AGE"], &[]),
        Kind::ClusterConfig => (
            &["NAME", "OVERLAY", "CLUSTER-CIDR", "SERVICE-CIDR", "AGE"],
            &["DOMAIN", "MTU"],
        ),
    };
    base.iter()
        .chain(if wide { extra } else { &[] })
        .map(|s| s.to_string())
        .collect()
}

/// One row for an object.
pub fn row(obj: &Object, wide: bool, now: Timestamp) -> Vec<String> {
    let name = obj.name().to_string();
    let age = age(obj, now);
    let (base, extra): (Vec<String>, Vec<String>) = match obj {
        Object::Pod(p) => pod_row(p, name, age),
        Object::Service(s) => service_row(s, name, age),
        Object::Node(n) => node_row(n, name, age),
        Object::Namespace(n) => {
            let phase = n.status.as_ref().and_then(|s| s.phase.clone());
            (
                vec![name, phase.unwrap_or_else(|| "Active".into()), age],
                vec![],
            )
        }
        Object::EndpointSlice(e) => endpointslice_row(e, name, age),
        Object::NetworkPolicy(n) => netpol_row(n, name, age),
        Object::Ingress(i) => ingress_row(i, name, age),
        Object::Secret(s) => {
            let n = s.data.as_ref().map_or(0, |d| d.len())
                + s.string_data.as_ref().map_or(0, |d| d.len());
            let t = s.type_.clone().unwrap_or_else(|| "Opaque".into());
            (vec![name, t, n.to_string(), age], vec![])
        }
        Object::ConfigMap(c) => {
            let n = c.data.as_ref().map_or(0, |d| d.len())
                + c.binary_data.as_ref().map_or(0, |d| d.len());
            (vec![name, n.to_string(), age], vec![])
        }
        Object::ClusterConfig(c) => {
            let s = &c.spec;
            let mode = match s.overlay.mode {
                podnet_model::OverlayMode::Vxlan => "vxlan",
                podnet_model::OverlayMode::HostGw => "host-gw",
            };
            (
                vec![
                    name,
                    mode.into(),
                    s.cluster_cidr.to_string(),
                    s.service_cidr.to_string(),
                    age,
                ],
                vec![s.cluster_domain.clone(), s.mtu.to_string()],
            )
        }
    };
    if wide {
        base.into_iter().chain(extra).collect()
    } else {
        base
    }
}

fn or_none(s: String) -> String {
    if s.is_empty() {
        NONE.into()
    } else {
        s
    }
}

fn pod_row(p: &Pod, name: String, age: String) -> (Vec<String>, Vec<String>) {
    let spec = p.spec.clone().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    let statuses = status.container_statuses.unwrap_or_default();
    // Without container statuses (written by hand), the Ready condition speaks for all.
    let ready = if statuses.is_empty() && condition_true(p, "Ready") {
        spec.containers.len()
    } else {
        statuses.iter().filter(|c| c.ready).count()
    };
    let restarts: i32 = statuses.iter().map(|c| c.restart_count).sum();
    let mut phase = status.phase.unwrap_or_else(|| "Pending".into());
    if p.metadata.deletion_timestamp.is_some() {
        phase = "Terminating".into();
    } else if let Some(reason) = statuses
        .iter()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
    {
        phase = reason;
    }
    (
        vec![
            name,
            format!("{ready}/{}", spec.containers.len()),
            phase,
            restarts.to_string(),
            age,
        ],
        vec![
            status.pod_ip.unwrap_or_else(|| NONE.into()),
            spec.node_name.unwrap_or_else(|| NONE.into()),
        ],
    )
}

fn condition_true(p: &Pod, type_: &str) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

fn service_row(s: &Service, name: String, age: String) -> (Vec<String>, Vec<String>) {
    let spec = s.spec.clone().unwrap_or_default();
    let ty = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
    let cluster_ip = match spec.cluster_ip.as_deref() {
        Some("") | None if ty == "ExternalName" => NONE.into(),
        Some("") | None => "<pending>".into(),
        Some(ip) => ip.into(),
    };
    let mut external: Vec<String> = spec.external_ips.clone().unwrap_or_default();
    if ty == "ExternalName" {
        external.push(spec.external_name.clone().unwrap_or_default());
    }
    if ty == "LoadBalancer" {
        let ingress: Vec<String> = s
            .status
            .as_ref()
            .and_then(|st| st.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| i.ip.or(i.hostname))
            .collect();
        if ingress.is_empty() && external.is_empty() {
            external.push("<pending>".into());
        }
        external.extend(ingress);
    }
    let ports: Vec<String> = spec
        .ports
        .iter()
        .flatten()
        .map(|p| {
            let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            match p.node_port {
                Some(np) => format!("{}:{np}/{proto}", p.port),
                None => format!("{}/{proto}", p.port),
            }
        })
        .collect();
    let selector = spec
        .selector
        .as_ref()
        .map(|m| Selector::from_map(m).to_string())
        .unwrap_or_default();
    (
        vec![
            name,
            ty,
            cluster_ip,
            or_none(external.join(",")),
            or_none(ports.join(",")),
            age,
        ],
        vec![or_none(selector)],
    )
}

fn node_row(n: &Node, name: String, age: String) -> (Vec<String>, Vec<String>) {
    let status = n.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone());
    let mut st = match ready.as_deref() {
        Some("True") => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    let spec = n.spec.clone().unwrap_or_default();
    if spec.unschedulable == Some(true) {
        st.push_str(",SchedulingDisabled");
    }
    let roles: Vec<String> = n
        .metadata
        .labels
        .iter()
        .flatten()
        .filter_map(|(k, _)| {
            k.strip_prefix("node-role.kubernetes.io/")
                .map(str::to_string)
        })
        .collect();
    let version = status
        .node_info
        .as_ref()
        .map(|i| i.kubelet_version.clone())
        .unwrap_or_default();
    let internal = status
        .addresses
        .iter()
        .flatten()
        .find(|a| a.type_ == "InternalIP")
        .map(|a| a.address.clone())
        .unwrap_or_default();
    (
        vec![name, st, or_none(roles.join(",")), age, or_none(version)],
        vec![
            or_none(internal),
            or_none(spec.pod_cidr.unwrap_or_default()),
        ],
    )
}

fn endpointslice_row(e: &EndpointSlice, name: String, age: String) -> (Vec<String>, Vec<String>) {
    let ports: Vec<String> = e
        .ports
        .iter()
        .flatten()
        .filter_map(|p| p.port.map(|n| n.to_string()))
        .collect();
    let addrs: Vec<&String> = e
        .endpoints
        .iter()
        .flat_map(|ep| ep.addresses.iter())
        .collect();
    let mut shown: Vec<String> = addrs.iter().take(3).map(|a| a.to_string()).collect();
    if addrs.len() > 3 {
        shown.push(format!("+ {} more...", addrs.len() - 3));
    }
    let service = e
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("kubernetes.io/service-name").cloned())
        .unwrap_or_default();
    (
        vec![
            name,
            e.address_type.clone(),
            if ports.is_empty() {
                "<unset>".into()
            } else {
                ports.join(",")
            },
            or_none(shown.join(",")),
            age,
        ],
        vec![or_none(service)],
    )
}

fn netpol_row(n: &NetworkPolicy, name: String, age: String) -> (Vec<String>, Vec<String>) {
    let spec = n.spec.clone().unwrap_or_default();
    let sel = spec
        .pod_selector
        .as_ref()
        .map(|s| Selector::from_label_selector(s).to_string())
        .unwrap_or_default();
    (
        vec![name, or_none(sel), age],
        vec![or_none(spec.policy_types.unwrap_or_default().join(","))],
    )
}

fn ingress_row(i: &Ingress, name: String, age: String) -> (Vec<String>, Vec<String>) {
    let spec = i.spec.clone().unwrap_or_default();
    let hosts: Vec<String> = spec
        .rules
        .iter()
        .flatten()
        .map(|r| r.host.clone().unwrap_or_else(|| "*".into()))
        .collect();
    let address: Vec<String> = i
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|x| x.ip.or(x.hostname))
        .collect();
    let ports = if spec.tls.as_ref().is_some_and(|t| !t.is_empty()) {
        "80, 443"
    } else {
        "80"
    };
    (
        vec![
            name,
            or_none(spec.ingress_class_name.unwrap_or_default()),
            if hosts.is_empty() {
                "*".into()
            } else {
                hosts.join(",")
            },
            address.join(","),
            ports.into(),
            age,
        ],
        vec![],
    )
}
