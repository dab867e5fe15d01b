//! Validating one apply's worth of manifests: each object on its own, then the checks
//! that need several: the same object defined twice, node ports and cluster IPs that
//! two services both claim, and a `ClusterConfig` in the same apply, which the other
//! objects are checked against instead of the current configuration.

use std::collections::HashMap;

use super::report::quote;
use super::validate;
use crate::config::{ClusterConfigSpec, DEFAULT_NAME};
use crate::manifest::{FieldError, Manifest, ManifestError};
use crate::object::{Object, ObjectRef};

/// What validating an apply found.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The configuration the objects were checked against: the `ClusterConfig` named
    /// `default` from the manifests when there is one and it is valid, otherwise the
    /// configuration passed to [`validate_all`].
    pub config: ClusterConfigSpec,
    /// True when `config` came from the manifests.
    pub config_from_manifests: bool,
    /// Every problem, grouped per object, in manifest order; empty when all is well.
    pub errors: Vec<ManifestError>,
}

impl Validated {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Validates every manifest of one apply (see the module documentation). `cfg` is the
/// cluster's current configuration, used unless the manifests carry a valid
/// `ClusterConfig` named `default`.
pub fn validate_all(manifests: &[Manifest], cfg: &ClusterConfigSpec) -> Validated {
    let mut found: Vec<Vec<FieldError>> = vec![Vec::new(); manifests.len()];
    let (mut config, mut from_manifests) = (cfg.clone(), false);
    for (i, m) in manifests.iter().enumerate() {
        if let Object::ClusterConfig(cc) = &m.object {
            found[i] = validate(&m.object, cfg);
            if !from_manifests
                && found[i].is_empty()
                && cc.metadata.name.as_deref() == Some(DEFAULT_NAME)
            {
                config = cc.spec.clone();
                from_manifests = true;
            }
        }
    }
    for (i, m) in manifests.iter().enumerate() {
        if !matches!(m.object, Object::ClusterConfig(_)) {
            found[i] = validate(&m.object, &config);
        }
    }
    let mut first: HashMap<ObjectRef, usize> = HashMap::new();
    let mut unique = vec![true; manifests.len()];
    for (i, m) in manifests.iter().enumerate() {
        if m.object.name().is_empty() {
            continue;
        }
        let oref = m.object.object_ref();
        if let Some(&j) = first.get(&oref) {
            unique[i] = false;
            found[i].push(FieldError::new(
                "metadata.name",
                format!(
                    "one definition of {oref} per apply ({} defines it already)",
                    manifests[j].source
                ),
                quote(m.object.name()),
            ));
        } else {
            first.insert(oref, i);
        }
    }
    check_service_claims(manifests, &unique, &mut found);
    let errors = manifests
        .iter()
        .zip(found)
        .filter(|(_, errs)| !errs.is_empty())
        .map(|(m, errors)| ManifestError {
            source: m.source.clone(),
            object: Some(m.object.object_ref()),
            errors,
        })
        .collect();
    Validated {
        config,
        config_from_manifests: from_manifests,
        errors,
    }
}

/// Node ports and cluster IPs are cluster-wide: two services may not claim the same.
fn check_service_claims(manifests: &[Manifest], unique: &[bool], found: &mut [Vec<FieldError>]) {
    let mut node_ports: HashMap<(i32, String), usize> = HashMap::new();
    let mut cluster_ips: HashMap<String, usize> = HashMap::new();
    let claimed_by = |j: usize| {
        format!(
            "{} claims it in {}",
            manifests[j].object.object_ref(),
            manifests[j].source
        )
    };
    for (i, m) in manifests.iter().enumerate() {
        let Object::Service(svc) = &m.object else {
            continue;
        };
        let Some(spec) = svc.spec.as_ref().filter(|_| unique[i]) else {
            continue;
        };
        for (k, p) in spec.ports.iter().flatten().enumerate() {
            let Some(np) = p.node_port.filter(|&n| n != 0) else {
                continue;
            };
            let key = (np, p.protocol.clone().unwrap_or_else(|| "TCP".into()));
            match node_ports.get(&key) {
                Some(&j) if j != i => found[i].push(FieldError::new(
                    format!("spec.ports[{k}].nodePort"),
                    format!(
                        "a nodePort no other service uses for {} ({})",
                        key.1,
                        claimed_by(j)
                    ),
                    np.to_string(),
                )),
                Some(_) => {}
                None => {
                    node_ports.insert(key, i);
                }
            }
        }
        let ip = spec
            .cluster_ip
            .as_deref()
            .filter(|s| !s.is_empty() && *s != "None");
        if let Some(ip) = ip {
            if let Some(&j) = cluster_ips.get(ip) {
                found[i].push(FieldError::new(
                    "spec.clusterIP",
                    format!("an address no other service uses ({})", claimed_by(j)),
                    quote(ip),
                ));
            } else {
                cluster_ips.insert(ip.to_string(), i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::load_str;

    const APPLY: &str = r#"
apiVersion: podnet.io/v1alpha1
kind: ClusterConfig
metadata: {name: default}
spec: {serviceCIDR: 10.100.0.0/16}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: admin, port: 8080, targetPort: Web_1}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  clusterIP: 10.96.0.20
  ports: [{port: 5432}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec: {containers: [{name: app, ports: [{name: http, containerPort: 8080}]}]}
"#;

    #[test]
    fn three_mistakes_in_three_objects_against_the_applied_config() {
        let loaded = load_str(APPLY, "apply.yaml");
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let v = validate_all(&loaded.manifests, &ClusterConfigSpec::default());
        assert!(v.config_from_manifests);
        assert_eq!(v.config.service_cidr.to_string(), "10.100.0.0/16");
        let shown: Vec<String> = v.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            [
                "Service shop/web: spec.ports[1].targetPort: expected a port name (IANA_SVC_NAME): at most 15 lower-case letters, digits or '-', with at least one letter and no '-' at either end or next to another '-' (e.g. \"http\"), found \"Web_1\" [apply.yaml (document 2)]",
                "Service shop/db: spec.clusterIP: expected an address inside the service CIDR 10.100.0.0/16, found \"10.96.0.20\" [apply.yaml (document 3)]",
                "NetworkPolicy shop/egress: spec.egress[0].to[0].ipBlock.except[0]: expected a CIDR strictly inside cidr 10.0.0.0/8, found \"192.168.0.0/16\" [apply.yaml (document 4)]",
            ]
        );
        let e = &v.errors[0];
        assert_eq!(
            e.object.as_ref().map(|o| o.to_string()).as_deref(),
            Some("Service shop/web")
        );
        assert_eq!(e.errors.len(), 1);
        assert_eq!(e.errors[0].field, "spec.ports[1].targetPort");
        assert_eq!(e.errors[0].found, "\"Web_1\"");
        assert_eq!(e.source.document, 2);
    }

    #[test]
    fn without_a_config_in_the_apply_the_given_one_counts() {
        let text = APPLY.split_once("---").unwrap().1;
        let loaded = load_str(text, "apply.yaml");
        let v = validate_all(&loaded.manifests, &ClusterConfigSpec::default());
        assert!(!v.config_from_manifests);
        assert_eq!(v.errors.len(), 2, "{:?}", v.errors);
        assert!(v
            .errors
            .iter()
            .all(|e| e.object.as_ref().unwrap().name != "db"));
    }

    /// Manifests as people write them for Kubernetes raise no false alarms.
    #[test]
    fn a_realistic_apply_is_valid() {
        let text = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {kubernetes.io/metadata.name: shop}}
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  selector: {k8s-app: kube-dns}
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
  - {name: metrics, port: 9153, protocol: TCP, targetPort: 9153}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-7d4b9c-x2k8p
  namespace: shop
  labels: {app.kubernetes.io/name: web, pod-template-hash: 7d4b9c}
  annotations: {kubectl.kubernetes.io/restartedAt: "2024-01-01T00:00:00Z"}
spec:
  containers:
  - name: web
    image: nginx:1.25
    command: [nginx, -g, daemon off;]
    env: [{name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]
    ports: [{name: http, containerPort: 80, protocol: TCP}]
    readinessProbe: {httpGet: {path: /, port: http}, initialDelaySeconds: 1, periodSeconds: 2}
    livenessProbe: {tcpSocket: {port: 80}, failureThreshold: 3}
  restartPolicy: Always
  dnsPolicy: ClusterFirst
  terminationGracePeriodSeconds: 30
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app.kubernetes.io/name: web}
  ports: [{name: http, port: 80, targetPort: http, nodePort: 30080}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  egress:
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]
    ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  ingressClassName: podnet
  tls: [{hosts: [shop.example.com], secretName: shop-tls}]
  rules:
  - host: shop.example.com
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}]
---
apiVersion: v1
kind: Secret
metadata: {name: shop-tls, namespace: shop}
type: kubernetes.io/tls
data: {tls.crt: LS0t, tls.key: LS0t}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-x7h2k, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.244.1.7], conditions: {ready: true, serving: true, terminating: false}, nodeName: node-1}]
ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Node
metadata: {name: node-1, labels: {kubernetes.io/hostname: node-1}}
spec: {podCIDR: 10.244.1.0/24, podCIDRs: [10.244.1.0/24]}
status: {addresses: [{type: InternalIP, address: 172.18.0.2}, {type: Hostname, address: node-1}]}
"#;
        let loaded = load_str(text, "ok.yaml");
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(loaded.manifests.len(), 9);
        let v = validate_all(&loaded.manifests, &ClusterConfigSpec::default());
        let shown: Vec<String> = v.errors.iter().map(|e| e.to_string()).collect();
        assert!(v.is_ok(), "{shown:#?}");
    }

    #[test]
    fn an_invalid_config_is_reported_and_not_used() {
        let text = "apiVersion: podnet.io/v1alpha1\nkind: ClusterConfig\nmetadata: {name: default}\nspec: {serviceCIDR: 10.100.0.1/16}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {clusterIP: 10.96.0.20, ports: [{port: 80}]}\n";
        let loaded = load_str(text, "x.yaml");
        let v = validate_all(&loaded.manifests, &ClusterConfigSpec::default());
        assert!(!v.config_from_manifests);
        assert_eq!(v.errors.len(), 1, "{:?}", v.errors);
        assert_eq!(
            v.errors[0].to_string(),
            "ClusterConfig default: spec.serviceCIDR: expected a CIDR whose address is its network address (10.100.0.0/16), found \"10.100.0.1/16\" [x.yaml (document 1)]"
        );
    }

    #[test]
    fn duplicates_and_shared_claims() {
        let text = r#"
apiVersion: v1
kind: Service
metadata: {name: a, namespace: shop}
spec: {type: NodePort, clusterIP: 10.96.0.20, ports: [{port: 80, nodePort: 30080}]}
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: shop}
spec: {type: NodePort, clusterIP: 10.96.0.20, ports: [{port: 80, nodePort: 30080}, {name: u, port: 81, nodePort: 30080, protocol: UDP}]}
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: shop}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: other}
spec: {ports: [{port: 80}]}
"#;
        let loaded = load_str(text, "d.yaml");
        let v = validate_all(&loaded.manifests, &ClusterConfigSpec::default());
        let shown: Vec<String> = v.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            [
                "Service shop/b: spec.ports[0].name: expected a port name (required when a service has more than one port), found nothing [d.yaml (document 2)]\n\
                 Service shop/b: spec.ports[0].nodePort: expected a nodePort no other service uses for TCP (Service shop/a claims it in d.yaml (document 1)), found 30080 [d.yaml (document 2)]\n\
                 Service shop/b: spec.clusterIP: expected an address no other service uses (Service shop/a claims it in d.yaml (document 1)), found \"10.96.0.20\" [d.yaml (document 2)]",
                "Service shop/a: metadata.name: expected one definition of Service shop/a per apply (d.yaml (document 1) defines it already), found \"a\" [d.yaml (document 3)]",
            ]
        );
        assert!(!v.is_ok());
    }
}
