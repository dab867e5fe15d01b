//! The kinds of object podnet knows, their API groups, names as users type them, and
//! where each lives in the store (kube-apiserver's etcd key layout).

use std::fmt;
use std::str::FromStr;

/// Every kind of object podnet stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    Node,
    Pod,
    Service,
    Secret,
    ConfigMap,
    EndpointSlice,
    NetworkPolicy,
    Ingress,
    ClusterConfig,
}

/// Static facts about one kind.
#[derive(Debug)]
pub struct KindInfo {
    pub kind: Kind,
    pub name: &'static str,
    pub api_version: &'static str,
    /// Lower-case plural, as in `kubectl get services`.
    pub plural: &'static str,
    pub short_names: &'static [&'static str],
    pub namespaced: bool,
    /// Key prefix in the store, without the trailing slash; kube-apiserver's layout
    /// (nodes are still `minions` there).
    pub prefix: &'static str,
}

const INFOS: &[KindInfo] = &[
    KindInfo {
        kind: Kind::Namespace,
        name: "Namespace",
        api_version: "v1",
        plural: "namespaces",
        short_names: &["ns"],
        namespaced: false,
        prefix: "/registry/namespaces",
    },
    KindInfo {
        kind: Kind::Node,
        name: "Node",
        api_version: "v1",
        plural: "nodes",
        short_names: &["no"],
        namespaced: false,
        prefix: "/registry/minions",
    },
    KindInfo {
        kind: Kind::Pod,
        name: "Pod",
        api_version: "v1",
        plural: "pods",
        short_names: &["po"],
        namespaced: true,
        prefix: "/registry/pods",
    },
    KindInfo {
        kind: Kind::Service,
        name: "Service",
        api_version: "v1",
        plural: "services",
        short_names: &["svc"],
        namespaced: true,
        prefix: "/registry/services/specs",
    },
    KindInfo {
        kind: Kind::Secret,
        name: "Secret",
        api_version: "v1",
        plural: "secrets",
        short_names: &[],
        namespaced: true,
        prefix: "/registry/secrets",
    },
    KindInfo {
        kind: Kind::ConfigMap,
        name: "ConfigMap",
        api_version: "v1",
        plural: "configmaps",
        short_names: &["cm"],
        namespaced: true,
        prefix: "/registry/configmaps",
    },
    KindInfo {
        kind: Kind::EndpointSlice,
        name: "EndpointSlice",
        api_version: "discovery.k8s.io/v1",
        plural: "endpointslices",
        short_names: &["ep", "eps", "endpoints"],
        namespaced: true,
        prefix: "/registry/endpointslices",
    },
    KindInfo {
        kind: Kind::NetworkPolicy,
        name: "NetworkPolicy",
        api_version: "networking.k8s.io/v1",
        plural: "networkpolicies",
        short_names: &["netpol"],
        namespaced: true,
        prefix: "/registry/networkpolicies",
    },
    KindInfo {
        kind: Kind::Ingress,
        name: "Ingress",
        api_version: "networking.k8s.io/v1",
        plural: "ingresses",
        short_names: &["ing"],
        namespaced: true,
        prefix: "/registry/ingress",
    },
    KindInfo {
        kind: Kind::ClusterConfig,
        name: "ClusterConfig",
        api_version: "podnet.io/v1alpha1",
        plural: "clusterconfigs",
        short_names: &["cc"],
        namespaced: false,
        prefix: "/registry/podnet.io/clusterconfigs",
    },
];

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Namespace,
        Kind::Node,
        Kind::Pod,
        Kind::Service,
        Kind::Secret,
        Kind::ConfigMap,
        Kind::EndpointSlice,
        Kind::NetworkPolicy,
        Kind::Ingress,
        Kind::ClusterConfig,
    ];

    pub fn info(self) -> &'static KindInfo {
        INFOS
            .iter()
            .find(|i| i.kind == self)
            .expect("every kind has an entry in INFOS")
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn api_version(self) -> &'static str {
        self.info().api_version
    }

    pub fn namespaced(self) -> bool {
        self.info().namespaced
    }

    /// The kind named by `apiVersion` + `kind` in a manifest.
    pub fn from_type(api_version: &str, kind: &str) -> Option<Kind> {
        INFOS
            .iter()
            .find(|i| i.name == kind && i.api_version == api_version)
            .map(|i| i.kind)
    }

    /// Prefix of every key of this kind (in `namespace` when given), ending with `/`.
    pub fn prefix(self, namespace: Option<&str>) -> String {
        let info = self.info();
        match namespace {
            Some(ns) if info.namespaced => format!("{}/{}/", info.prefix, ns),
            _ => format!("{}/", info.prefix),
        }
    }

    /// The store key of one object.
    pub fn key(self, namespace: Option<&str>, name: &str) -> String {
        let info = self.info();
        if info.namespaced {
            format!(
                "{}/{}/{}",
                info.prefix,
                namespace.unwrap_or("default"),
                name
            )
        } else {
            format!("{}/{}", info.prefix, name)
        }
    }

    /// Splits a store key of this kind into (namespace, name).
    pub fn parse_key(self, key: &str) -> Option<(Option<String>, String)> {
        let rest = key.strip_prefix(self.info().prefix)?.strip_prefix('/')?;
        if self.namespaced() {
            let (ns, name) = rest.split_once('/')?;
            (!name.contains('/')).then(|| (Some(ns.to_string()), name.to_string()))
        } else {
            (!rest.contains('/')).then(|| (None, rest.to_string()))
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for a kind name nobody knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown kind {0:?}: expected one of namespaces (ns), nodes (no), pods (po), services (svc), secrets, configmaps (cm), endpointslices (ep), networkpolicies (netpol), ingresses (ing), clusterconfigs (cc)")]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;

    /// Accepts what kubectl accepts: `Service`, `service`, `services`, `svc`,
    /// and `services.v1` / `endpointslices.discovery.k8s.io`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        let base = lower.split('.').next().unwrap_or_default();
        INFOS
            .iter()
            .find(|i| {
                i.name.eq_ignore_ascii_case(base)
                    || i.plural == base
                    || i.short_names.contains(&base)
            })
            .map(|i| i.kind)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_apiserver_layout() {
        assert_eq!(
            Kind::Service.key(Some("kube-system"), "kube-dns"),
            "/registry/services/specs/kube-system/kube-dns"
        );
        assert_eq!(Kind::Node.key(None, "n1"), "/registry/minions/n1");
        assert_eq!(Kind::Pod.prefix(Some("a")), "/registry/pods/a/");
        assert_eq!(Kind::Pod.prefix(None), "/registry/pods/");
        assert_eq!(
            Kind::Pod.parse_key("/registry/pods/ns1/web-0"),
            Some((Some("ns1".into()), "web-0".into()))
        );
        assert_eq!(Kind::Node.parse_key("/registry/minions/a/b"), None);
    }

    #[test]
    fn names_as_kubectl_accepts_them() {
        for (s, k) in [
            ("svc", Kind::Service),
            ("services", Kind::Service),
            ("Service", Kind::Service),
            ("ep", Kind::EndpointSlice),
            ("endpointslices.discovery.k8s.io", Kind::EndpointSlice),
            ("netpol", Kind::NetworkPolicy),
            ("no", Kind::Node),
            ("po", Kind::Pod),
            ("ns", Kind::Namespace),
            ("ing", Kind::Ingress),
        ] {
            assert_eq!(s.parse::<Kind>(), Ok(k), "{s}");
        }
        assert!("gadgets".parse::<Kind>().is_err());
    }

    #[test]
    fn from_type_needs_matching_group() {
        assert_eq!(Kind::from_type("v1", "Pod"), Some(Kind::Pod));
        assert_eq!(Kind::from_type("apps/v1", "Pod"), None);
        assert_eq!(
            Kind::from_type("podnet.io/v1alpha1", "ClusterConfig"),
            Some(Kind::ClusterConfig)
        );
    }
}
