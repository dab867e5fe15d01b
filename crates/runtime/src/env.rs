//! A container's environment as the kubelet builds it: `envFrom`, then `env` (values,
//! downward-API field references, ConfigMap and Secret keys), with `$(VAR)` expansion.
//! Pure: ConfigMaps and Secrets are looked up beforehand into [`EnvSources`].

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use podnet_model::k8s_openapi::api::core::v1::{Container, Pod};

/// ConfigMaps and Secrets of the pod's namespace that a container refers to; `None`:
/// it does not exist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvSources {
    pub config_maps: HashMap<String, Option<BTreeMap<String, String>>>,
    pub secrets: HashMap<String, Option<BTreeMap<String, String>>>,
}

/// The names of the ConfigMaps and Secrets `c` refers to.
pub fn referenced(c: &Container) -> (Vec<String>, Vec<String>) {
    let mut cms = Vec::new();
    let mut secrets = Vec::new();
    for from in c.env_from.iter().flatten() {
        cms.extend(from.config_map_ref.as_ref().map(|r| r.name.clone()));
        secrets.extend(from.secret_ref.as_ref().map(|r| r.name.clone()));
    }
    for var in c.env.iter().flatten() {
        let Some(vf) = &var.value_from else { continue };
        cms.extend(vf.config_map_key_ref.as_ref().map(|r| r.name.clone()));
        secrets.extend(vf.secret_key_ref.as_ref().map(|r| r.name.clone()));
    }
    cms.sort();
    cms.dedup();
    secrets.sort();
    secrets.dedup();
    (cms, secrets)
}

/// What the downward API can tell.
#[derive(Debug, Clone, Copy)]
pub struct PodFacts<'a> {
    pub pod: &'a Pod,
    pub pod_ips: &'a [IpAddr],
    pub host_ip: IpAddr,
}

impl PodFacts<'_> {
    fn field(&self, path: &str) -> Result<String, String> {
        let meta = &self.pod.metadata;
        let spec = self.pod.spec.as_ref();
        let ips = || {
            self.pod_ips
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        let map_key = |prefix: &str, map: &Option<BTreeMap<String, String>>| {
            let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
            Some(
                map.as_ref()
                    .and_then(|m| m.get(key))
                    .cloned()
                    .unwrap_or_default(),
            )
        };
        Ok(match path {
            "metadata.name" => meta.name.clone().unwrap_or_default(),
            "metadata.namespace" => meta.namespace.clone().unwrap_or_else(|| "default".into()),
            "metadata.uid" => meta.uid.clone().unwrap_or_default(),
            "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
            "spec.serviceAccountName" => spec
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_else(|| "default".into()),
            "status.podIP" => ips().into_iter().next().unwrap_or_default(),
            "status.podIPs" => ips().join(","),
            "status.hostIP" | "status.hostIPs" => self.host_ip.to_string(),
            _ => {
                if let Some(v) = map_key("metadata.labels['", &meta.labels) {
                    return Ok(v);
                }
                if let Some(v) = map_key("metadata.annotations['", &meta.annotations) {
                    return Ok(v);
                }
                return Err(format!(
                    "unsupported fieldRef fieldPath {path:?}: expected metadata.name, metadata.namespace, \
                     metadata.uid, metadata.labels['k'], metadata.annotations['k'], spec.nodeName, \
                     spec.serviceAccountName, status.podIP(s) or status.hostIP(s)"
                ));
            }
        })
    }
}

/// The container's environment, in order, or a message for a
/// `CreateContainerConfigError`.
pub fn container_env(
    c: &Container,
    facts: PodFacts<'_>,
    sources: &EnvSources,
) -> Result<Vec<(String, String)>, String> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let set = |vars: &mut Vec<(String, String)>, k: String, v: String| match vars
        .iter_mut()
        .find(|(name, _)| *name == k)
    {
        Some(slot) => slot.1 = v,
        None => vars.push((k, v)),
    };
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (data, what, name, optional) = if let Some(r) = &from.config_map_ref {
            (
                sources.config_maps.get(&r.name),
                "configmap",
                &r.name,
                r.optional,
            )
        } else if let Some(r) = &from.secret_ref {
            (sources.secrets.get(&r.name), "secret", &r.name, r.optional)
        } else {
            continue;
        };
        match data.cloned().flatten() {
            Some(map) => {
                for (k, v) in map {
                    set(&mut vars, format!("{prefix}{k}"), v);
                }
            }
            None if optional == Some(true) => {}
            None => return Err(format!("{what} {name:?} not found")),
        }
    }
    for var in c.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (_, Some(vf)) => {
                if let Some(f) = &vf.field_ref {
                    facts.field(&f.field_path)?
                } else if let Some(r) = &vf.config_map_key_ref {
                    match lookup(&sources.config_maps, &r.name, &r.key) {
                        Some(v) => v,
                        None if r.optional == Some(true) => continue,
                        None => {
                            return Err(format!(
                                "key {:?} of configmap {:?} not found",
                                r.key, r.name
                            ))
                        }
                    }
                } else if let Some(r) = &vf.secret_key_ref {
                    match lookup(&sources.secrets, &r.name, &r.key) {
                        Some(v) => v,
                        None if r.optional == Some(true) => continue,
                        None => {
                            return Err(format!("key {:?} of secret {:?} not found", r.key, r.name))
                        }
                    }
                } else {
                    return Err(format!(
                        "env {:?}: unsupported valueFrom: expected fieldRef, configMapKeyRef or secretKeyRef",
                        var.name
                    ));
                }
            }
            (Some(v), None) => expand(v, &vars),
            (None, None) => String::new(),
        };
        set(&mut vars, var.name.clone(), value);
    }
    Ok(vars)
}

fn lookup(
    maps: &HashMap<String, Option<BTreeMap<String, String>>>,
    name: &str,
    key: &str,
) -> Option<String> {
    maps.get(name)?.as_ref()?.get(key).cloned()
}

/// Kubernetes' `$(VAR)` expansion: `$(NAME)` becomes NAME's value when defined (else
/// stays as written), `$$` becomes `$`.
pub fn expand(s: &str, vars: &[(String, String)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match vars.iter().rev().find(|(k, _)| k == name) {
                        Some((_, v)) => out.push_str(v),
                        None => out.push_str(&format!("$({name})")),
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use podnet_model::k8s_openapi::api::core::v1::{
        ConfigMapKeySelector, EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec,
    };

    fn var(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    fn field(name: &str, path: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: path.into(),
                }),
                ..EnvVarSource::default()
            }),
        }
    }

    #[test]
    fn expansion_rules() {
        let vars = vec![("A".to_string(), "1".to_string())];
        assert_eq!(expand("x$(A)y", &vars), "x1y");
        assert_eq!(expand("$(B)", &vars), "$(B)");
        assert_eq!(expand("$$(A) $x $(", &vars), "$(A) $x $(");
    }

    #[test]
    fn env_with_downward_api_and_configmaps() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("p".into());
        pod.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
        pod.spec = Some(PodSpec {
            node_name: Some("node-1".into()),
            ..PodSpec::default()
        });
        let ips = ["10.244.1.2".parse().unwrap()];
        let facts = PodFacts {
            pod: &pod,
            pod_ips: &ips,
            host_ip: "172.18.0.2".parse().unwrap(),
        };
        let mut cm_ref = EnvVar {
            name: "CM".into(),
            value: None,
            value_from: Some(EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector {
                    name: "cfg".into(),
                    key: "k".into(),
                    optional: None,
                }),
                ..EnvVarSource::default()
            }),
        };
        let c = Container {
            env: Some(vec![
                field("NAME", "metadata.name"),
                field("IP", "status.podIP"),
                field("NODE", "spec.nodeName"),
                field("APP", "metadata.labels['app']"),
                var("URL", "http://$(IP):80"),
                cm_ref.clone(),
            ]),
            ..Container::default()
        };
        let mut sources = EnvSources::default();
        sources.config_maps.insert(
            "cfg".into(),
            Some([("k".to_string(), "v".to_string())].into()),
        );
        let env = container_env(&c, facts, &sources).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("NAME"), Some("p"));
        assert_eq!(get("NODE"), Some("node-1"));
        assert_eq!(get("APP"), Some("web"));
        assert_eq!(get("URL"), Some("http://10.244.1.2:80"));
        assert_eq!(get("CM"), Some("v"));

        sources.config_maps.insert("cfg".into(), None);
        let err = container_env(&c, facts, &sources).unwrap_err();
        assert!(err.contains("configmap \"cfg\" not found"), "{err}");
        if let Some(vf) = cm_ref.value_from.as_mut() {
            vf.config_map_key_ref.as_mut().unwrap().optional = Some(true);
        }
        let c2 = Container {
            env: Some(vec![cm_ref, field("X", "status.phase")]),
            ..Container::default()
        };
        let err = container_env(&c2, facts, &sources).unwrap_err();
        assert!(
            err.contains("unsupported fieldRef fieldPath \"status.phase\""),
            "{err}"
        );
    }
}
