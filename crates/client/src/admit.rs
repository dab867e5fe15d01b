//! Admission against what is stored, as kube-apiserver does before it writes:
//! the namespace exists, and explicitly requested ClusterIPs and NodePorts are not held
//! by another Service. (The controller re-checks with compare-and-swap when it
//! allocates; this gives the user a clear error at once.)

use std::collections::{BTreeMap, BTreeSet};

use podnet_model::k8s_openapi::api::core::v1::Namespace;
use podnet_model::manifest::{Manifest, ManifestError};
use podnet_model::{Kind, Object};
use podnet_store::typed::ApiError;
use podnet_store::Api;

use crate::apply::{object_error, SYSTEM_NAMESPACES};

/// Problems with `manifests` given the stored state.
pub async fn admit(api: &Api, manifests: &[Manifest]) -> Result<Vec<ManifestError>, ApiError> {
    let mut errors = Vec::new();
    check_namespaces(api, manifests, &mut errors).await?;
    check_service_claims(api, manifests, &mut errors).await?;
    Ok(errors)
}

async fn check_namespaces(
    api: &Api,
    manifests: &[Manifest],
    errors: &mut Vec<ManifestError>,
) -> Result<(), ApiError> {
    let applied: BTreeSet<&str> = manifests
        .iter()
        .filter(|m| m.object.kind() == Kind::Namespace)
        .map(|m| m.object.name())
        .collect();
    let mut known: BTreeMap<String, bool> = BTreeMap::new();
    for m in manifests {
        let Some(ns) = m.object.namespace() else {
            continue;
        };
        if applied.contains(ns) || SYSTEM_NAMESPACES.contains(&ns) {
            continue;
        }
        let exists = match known.get(ns) {
            Some(e) => *e,
            None => {
                let e = api.get(Kind::Namespace, None, ns).await?.is_some();
                known.insert(ns.to_string(), e);
                e
            }
        };
        if !exists {
            errors.push(object_error(
                m,
                "metadata.namespace",
                "an existing namespace (apply a Namespace first or in the same apply)",
                &format!("{ns:?}, which does not exist"),
            ));
        }
    }
    Ok(())
}

/// ClusterIPs and NodePorts asked for explicitly must not be held by another Service.
async fn check_service_claims(
    api: &Api,
    manifests: &[Manifest],
    errors: &mut Vec<ManifestError>,
) -> Result<(), ApiError> {
    let wants = |m: &Manifest| match &m.object {
        Object::Service(s) => s.spec.as_ref().is_some_and(|spec| {
            spec.cluster_ip
                .as_deref()
                .is_some_and(|ip| !ip.is_empty() && ip != "None")
                || spec.ports.iter().flatten().any(|p| p.node_port.is_some())
        }),
        _ => false,
    };
    if !manifests.iter().any(wants) {
        return Ok(());
    }
    let (stored, _) = api.list(Kind::Service, None).await?;
    let mut ip_holder: BTreeMap<String, String> = BTreeMap::new();
    let mut port_holder: BTreeMap<i32, String> = BTreeMap::new();
    let applying: BTreeSet<String> = manifests.iter().map(|m| m.object.key()).collect();
    for o in &stored {
        let Object::Service(s) = o else { continue };
        if applying.contains(&o.key()) {
            continue; // being replaced by this apply
        }
        let who = o.object_ref().to_string();
        let spec = s.spec.clone().unwrap_or_default();
        if let Some(ip) = spec.cluster_ip.filter(|ip| !ip.is_empty() && ip != "None") {
            ip_holder.insert(ip, who.clone());
        }
        for p in spec.ports.iter().flatten() {
            if let Some(np) = p.node_port {
                port_holder.insert(np, who.clone());
            }
        }
    }
    for m in manifests {
        let Object::Service(s) = &m.object else {
            continue;
        };
        let spec = s.spec.clone().unwrap_or_default();
        let me = m.object.object_ref().to_string();
        if let Some(ip) = spec
            .cluster_ip
            .as_deref()
            .filter(|ip| !ip.is_empty() && *ip != "None")
        {
            match ip_holder.get(ip) {
                Some(holder) => errors.push(object_error(
                    m,
                    "spec.clusterIP",
                    "a free address",
                    &format!("{ip:?}, already allocated to {holder}"),
                )),
                None => {
                    ip_holder.insert(ip.to_string(), me.clone());
                }
            }
        }
        for (i, p) in spec.ports.iter().flatten().enumerate() {
            let Some(np) = p.node_port else { continue };
            match port_holder.get(&np) {
                Some(holder) if *holder != me => errors.push(object_error(
                    m,
                    &format!("spec.ports[{i}].nodePort"),
                    "a free node port",
                    &format!("{np}, already allocated to {holder}"),
                )),
                _ => {
                    port_holder.insert(np, me.clone());
                }
            }
        }
    }
    Ok(())
}

/// The system namespaces that objects use and that are not stored yet.
pub async fn missing_system_namespaces(
    api: &Api,
    objects: &[Object],
) -> Result<Vec<Object>, ApiError> {
    let used: BTreeSet<&str> = objects.iter().filter_map(|o| o.namespace()).collect();
    let applied: BTreeSet<&str> = objects
        .iter()
        .filter(|o| o.kind() == Kind::Namespace)
        .map(|o| o.name())
        .collect();
    let mut out = Vec::new();
    for ns in SYSTEM_NAMESPACES {
        if used.contains(ns)
            && !applied.contains(ns)
            && api.get(Kind::Namespace, None, ns).await?.is_none()
        {
            let mut n = Namespace::default();
            n.metadata.name = Some(ns.to_string());
            out.push(Object::Namespace(n));
        }
    }
    Ok(out)
}
