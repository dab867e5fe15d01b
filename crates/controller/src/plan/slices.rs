//! EndpointSlices of one Service, as kube-controller-manager's EndpointSlice controller
//! computes them: every pod of the service's namespace that matches the selector, has
//! an IPv4 podIP and has not finished becomes an endpoint; pods are grouped by the
//! ports their named targetPorts resolve to (one group per distinct port set), each
//! group split into slices of at most `max_per_slice` endpoints, sorted by pod name.
//!
//! Names are deterministic - `<service>-<5 chars>`, the chars a hash of the group's
//! ports and the slice's index in it - so planning twice gives the same slices, a
//! restart rewrites nothing, and tests can predict them. A service without endpoints
//! gets one empty placeholder slice, as kube does.

use std::collections::BTreeMap;

use podnet_model::k8s_openapi::api::core::v1::{ObjectReference, Service, ServicePort};
use podnet_model::k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort, EndpointSlice,
};
use podnet_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use podnet_model::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::alloc::Protocol;
use crate::cache::pods::SlimPod;
use crate::hash::{base36, fnv64};

pub use podnet_model::service::SERVICE_NAME_LABEL;
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// The managed-by value, kube's own: consumers that look for controller-managed slices
/// find podnet's.
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// Whether the controller manages slices for this service.
pub fn wants_slices(svc: &Service) -> bool {
    svc.spec.as_ref().is_some_and(|s| {
        s.type_.as_deref() != Some("ExternalName")
            && s.selector.as_ref().is_some_and(|sel| !sel.is_empty())
    })
}

/// One resolved endpoint port: (name, number, protocol, appProtocol).
type PortKey = (String, i32, &'static str, Option<String>);

/// The ports a pod serves for the service; a named targetPort the pod does not
/// declare (by name and protocol) leaves that port out, as kube does.
pub fn resolve_ports(ports: &[ServicePort], pod: &SlimPod) -> Vec<PortKey> {
    ports
        .iter()
        .filter_map(|sp| {
            let proto = Protocol::parse(sp.protocol.as_deref())?;
            let number = match &sp.target_port {
                None => sp.port,
                Some(IntOrString::Int(n)) if *n == 0 => sp.port,
                Some(IntOrString::Int(n)) => *n,
                Some(IntOrString::String(name)) => match name.parse::<i32>() {
                    Ok(n) => n,
                    Err(_) => pod
                        .named_ports
                        .iter()
                        .find(|(n, p, _)| n == name && *p == proto)
                        .map(|(_, _, num)| *num)?,
                },
            };
            Some((
                sp.name.clone().unwrap_or_default(),
                number,
                proto.as_str(),
                sp.app_protocol.clone(),
            ))
        })
        .collect()
}

fn endpoint(pod: &SlimPod, ip: std::net::Ipv4Addr, svc_name: &str, publish: bool) -> Endpoint {
    let serving = pod.ready;
    let terminating = pod.terminating;
    Endpoint {
        addresses: vec![ip.to_string()],
        conditions: Some(EndpointConditions {
            ready: Some(publish || (serving && !terminating)),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: pod
            .hostname
            .clone()
            .filter(|_| pod.subdomain.as_deref() == Some(svc_name)),
        node_name: pod.node_name.clone(),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: Some(pod.namespace.clone()),
            name: Some(pod.name.clone()),
            uid: pod.uid.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The name of slice `index` of the group with `ports`.
pub fn slice_name(service: &str, ports: &[PortKey], index: usize) -> String {
    let mut text = String::new();
    for (name, n, proto, app) in ports {
        text.push_str(&format!(
            "{name}/{n}/{proto}/{};",
            app.as_deref().unwrap_or("")
        ));
    }
    text.push_str(&format!("#{index}"));
    format!("{service}-{}", base36(fnv64(text.as_bytes()), 5))
}

/// The slices `svc` must have, given the pods matching its selector (any order).
/// Empty when the service has no selector or is ExternalName.
pub fn desired_slices(
    svc: &Service,
    pods: &[&SlimPod],
    max_per_slice: usize,
) -> Vec<EndpointSlice> {
    if !wants_slices(svc) {
        return Vec::new();
    }
    let spec = svc.spec.as_ref().expect("wants_slices checked spec");
    let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
    let name = svc.metadata.name.as_deref().unwrap_or_default();
    let publish = spec.publish_not_ready_addresses == Some(true);
    let svc_ports = spec.ports.as_deref().unwrap_or_default();
    let mut groups: BTreeMap<Vec<PortKey>, Vec<(&str, Endpoint)>> = BTreeMap::new();
    for pod in pods {
        let Some(ip) = pod.ip else { continue };
        if pod.finished || pod.namespace != ns {
            continue;
        }
        groups
            .entry(resolve_ports(svc_ports, pod))
            .or_default()
            .push((pod.name.as_str(), endpoint(pod, ip, name, publish)));
    }
    let mut labels: BTreeMap<String, String> = svc.metadata.labels.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.into(), name.into());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    if spec.cluster_ip.as_deref() == Some("None") {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    let meta = |slice_name: String| ObjectMeta {
        name: Some(slice_name),
        namespace: Some(ns.into()),
        labels: Some(labels.clone()),
        owner_references: Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Service".into(),
            name: name.into(),
            uid: svc.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]),
        ..Default::default()
    };
    if groups.is_empty() {
        return vec![EndpointSlice {
            metadata: meta(slice_name(name, &[], 0)),
            address_type: "IPv4".into(),
            endpoints: Vec::new(),
            ports: None,
        }];
    }
    let max = max_per_slice.max(1);
    let mut out = Vec::new();
    for (ports, mut eps) in groups {
        eps.sort_by(|a, b| a.0.cmp(b.0));
        let endpoint_ports: Vec<EndpointPort> = ports
            .iter()
            .map(|(n, port, proto, app)| EndpointPort {
                name: Some(n.clone()),
                port: Some(*port),
                protocol: Some((*proto).into()),
                app_protocol: app.clone(),
            })
            .collect();
        for (i, chunk) in eps.chunks(max).enumerate() {
            out.push(EndpointSlice {
                metadata: meta(slice_name(name, &ports, i)),
                address_type: "IPv4".into(),
                endpoints: chunk.iter().map(|(_, e)| e.clone()).collect(),
                ports: Some(endpoint_ports.clone()),
            });
        }
    }
    out
}
