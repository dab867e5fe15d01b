//! CNI for pod sandboxes: the attachment a pod gets (pure) and ADD/DEL through
//! `podnet_cni::ChainRunner` (blocking, so run on the blocking pool).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use podnet_cni::{load_conflist, Attachment, ChainRunner, CniResult, NetworkConfigList};
use podnet_model::k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

use crate::config::RuntimeConfig;
use crate::error::RuntimeError;
use crate::names::cni_container_id;

/// The interface name of pods.
pub const IFNAME: &str = "eth0";

/// The runner every pod of a runtime shares.
pub fn runner(cfg: &RuntimeConfig, ip: &Path) -> ChainRunner {
    let runner = ChainRunner::new(cfg.cni_plugin_dirs.clone(), cfg.cni_cache_dir.clone());
    match &cfg.node_netns {
        Some(node) => runner.with_exec_prefix(vec![
            ip.display().to_string(),
            "netns".into(),
            "exec".into(),
            node.clone(),
        ]),
        None => runner,
    }
}

/// `portMappings` from the containers' `hostPort`s (CNI conventions).
pub fn port_mappings(pod: &Pod) -> Vec<Value> {
    let spec = pod.spec.as_ref();
    let containers = spec.into_iter().flat_map(|s| s.containers.iter());
    let mut out = Vec::new();
    for c in containers {
        for p in c.ports.iter().flatten() {
            let Some(host_port) = p.host_port.filter(|h| *h > 0) else {
                continue;
            };
            let mut m = json!({
                "hostPort": host_port,
                "containerPort": p.container_port,
                "protocol": p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase(),
            });
            if let Some(ip) = p.host_ip.as_deref().filter(|ip| !ip.is_empty()) {
                m["hostIP"] = json!(ip);
            }
            out.push(m);
        }
    }
    out
}

/// The attachment of a pod: `CNI_CONTAINERID` from its uid, `CNI_ARGS` as the kubelet
/// passes them, `portMappings` when any container has a `hostPort`.
pub fn attachment(pod: &Pod, netns_path: PathBuf) -> Attachment {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let id = cni_container_id(uid);
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let mut a = Attachment::new(id.clone(), netns_path, IFNAME)
        .with_arg("IgnoreUnknown", "1")
        .with_arg("K8S_POD_NAMESPACE", ns)
        .with_arg("K8S_POD_NAME", name)
        .with_arg("K8S_POD_INFRA_CONTAINER_ID", id)
        .with_arg("K8S_POD_UID", uid);
    let mappings = port_mappings(pod);
    if !mappings.is_empty() {
        a = a.with_capability("portMappings", Value::Array(mappings));
    }
    a
}

/// The pod's IPs from an ADD result: addresses of sandbox interfaces (all addresses when
/// the result names no interfaces), IPv4 first, without duplicates.
pub fn pod_ips(result: &CniResult) -> Vec<IpAddr> {
    let in_sandbox: Vec<usize> = result.sandbox_interfaces().map(|(i, _)| i).collect();
    let mut ips: Vec<IpAddr> = result
        .ips
        .iter()
        .filter(|ip| match ip.interface {
            Some(i) if !in_sandbox.is_empty() => in_sandbox.contains(&(i as usize)),
            _ => true,
        })
        .map(|ip| ip.address.addr())
        .collect();
    ips.sort_by_key(|ip| ip.is_ipv6());
    ips.dedup();
    ips
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RuntimeError> + Send + 'static,
) -> Result<T, RuntimeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RuntimeError::Join(e.to_string()))?
}

/// ADD of the network in the configuration directory; returns the network's name and
/// the result. On failure runs DEL (as the spec asks of runtimes) and returns the error.
pub async fn add(
    runner: Arc<ChainRunner>,
    conf_dir: PathBuf,
    att: Attachment,
) -> Result<(String, CniResult), RuntimeError> {
    blocking(move || {
        let list = load_conflist(&conf_dir)?;
        match runner.add_network_list(&list, &att) {
            Ok(result) => Ok((list.name.clone(), result)),
            Err(e) => {
                if let Err(del) = runner.del_network_list(&list, &att) {
                    tracing::warn!(error = %del, "cni DEL after a failed ADD failed too");
                }
                Err(e.into())
            }
        }
    })
    .await
}

/// DEL of an attachment: with the configuration cached at ADD when there is one, else
/// the network of the configuration directory. Nothing cached and no configuration:
/// nothing to do.
pub async fn del(
    runner: Arc<ChainRunner>,
    conf_dir: PathBuf,
    network: Option<String>,
    att: Attachment,
) -> Result<(), RuntimeError> {
    blocking(move || {
        let cached = match &network {
            Some(net) => runner.cache().load(net, &att.container_id, &att.ifname)?,
            None => None,
        };
        let list = match cached {
            Some(c) => {
                NetworkConfigList::from_value(c.config).map_err(podnet_cni::InvokeError::from)?
            }
            None => match load_conflist(&conf_dir) {
                Ok(list) => list,
                Err(podnet_cni::InvokeError::NoConfig { .. }) if network.is_none() => return Ok(()),
                Err(e) => return Err(e.into()),
            },
        };
        runner.del_network_list(&list, &att)?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use podnet_model::k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec};

    #[test]
    fn attachment_carries_kubelet_args_and_port_mappings() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web".into());
        pod.metadata.uid = Some("1b4e-28ba".into());
        pod.spec = Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                ports: Some(vec![
                    ContainerPort {
                        container_port: 80,
                        host_port: Some(8080),
                        ..ContainerPort::default()
                    },
                    ContainerPort {
                        container_port: 53,
                        protocol: Some("UDP".into()),
                        ..ContainerPort::default()
                    },
                ]),
                ..Container::default()
            }],
            ..PodSpec::default()
        });
        let a = attachment(&pod, PathBuf::from("/run/netns/x"));
        assert_eq!(a.container_id, "1b4e-28ba");
        assert_eq!(a.ifname, "eth0");
        let args: Vec<String> = a.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            args.join(";"),
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=1b4e-28ba;K8S_POD_UID=1b4e-28ba"
        );
        assert_eq!(
            a.capability_args["portMappings"],
            json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}])
        );
    }

    #[test]
    fn pod_ips_prefer_sandbox_interfaces_and_ipv4() {
        let result = CniResult::from_value(
            &json!({
                "cniVersion": "1.0.0",
                "interfaces": [{"name": "cni0"}, {"name": "eth0", "sandbox": "/run/netns/x"}],
                "ips": [
                    {"address": "fd00::5/64", "interface": 1},
                    {"address": "10.244.1.5/24", "interface": 1},
                    {"address": "10.244.1.1/24", "interface": 0}
                ]
            }),
            None,
        )
        .unwrap();
        let ips: Vec<String> = pod_ips(&result).iter().map(ToString::to_string).collect();
        assert_eq!(ips, ["10.244.1.5", "fd00::5"]);
    }
}
