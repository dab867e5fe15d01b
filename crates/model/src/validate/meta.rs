//! `metadata` of every object: the name (required, and valid by the kind's rule),
//! the namespace, labels and annotations.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::names::{
    check_annotations, check_labels, dns1035_label, dns1123_label, dns1123_subdomain,
    DNS1035_LABEL, DNS1123_LABEL, DNS1123_SUBDOMAIN,
};
use super::report::{Mismatch, Report};
use crate::kind::Kind;

/// A name check: Ok, or what was expected.
pub type NameCheck = fn(&str) -> Result<(), Mismatch>;

/// The rule a kind's names follow, and its description.
pub fn name_rule(kind: Kind) -> (NameCheck, &'static str) {
    match kind {
        Kind::Namespace => (dns1123_label, DNS1123_LABEL),
        Kind::Service => (dns1035_label, DNS1035_LABEL),
        _ => (dns1123_subdomain, DNS1123_SUBDOMAIN),
    }
}

/// Checks `metadata` of an object of `kind`.
pub fn check_meta(r: &mut Report, kind: Kind, meta: &ObjectMeta) {
    let (rule, what) = name_rule(kind);
    match meta.name.as_deref() {
        None | Some("") => {
            let hint = if meta.generate_name.is_some() {
                " (podnet does not generate names: set metadata.name)"
            } else {
                ""
            };
            r.missing("metadata.name", format!("a name: {what}{hint}"));
        }
        Some(name) => {
            r.check("metadata.name", name, rule(name));
        }
    }
    // Cluster-scoped kinds: the API server ignores a namespace, and so do we.
    if kind.namespaced() {
        if let Some(ns) = meta.namespace.as_deref() {
            r.check("metadata.namespace", ns, dns1123_label(ns));
        }
    }
    if let Some(labels) = &meta.labels {
        check_labels(r, "metadata.labels", labels);
    }
    if let Some(annotations) = &meta.annotations {
        check_annotations(r, "metadata.annotations", annotations);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn meta(name: Option<&str>, ns: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: name.map(str::to_string),
            namespace: ns.map(str::to_string),
            ..ObjectMeta::default()
        }
    }

    fn errors(kind: Kind, m: &ObjectMeta) -> Vec<String> {
        let mut r = Report::new();
        check_meta(&mut r, kind, m);
        r.into_errors().iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn names_follow_the_kind() {
        let good = [
            (Kind::Namespace, "shop"),
            (Kind::Service, "web"),
            (Kind::Pod, "web-0.x"),
            (Kind::Node, "node-1.lab"),
            (Kind::ConfigMap, "1st.config"),
            (Kind::Ingress, "a"),
        ];
        for (k, n) in good {
            assert_eq!(
                errors(k, &meta(Some(n), None)),
                Vec::<String>::new(),
                "{k} {n}"
            );
        }
        let bad = [
            (Kind::Namespace, "shop.eu", "a DNS-1123 label"),
            (Kind::Service, "1web", "a DNS-1035 label"),
            (Kind::Service, "web.x", "a DNS-1035 label"),
            (Kind::Pod, "Web", "a DNS-1123 subdomain"),
            (Kind::Secret, "a_b", "a DNS-1123 subdomain"),
        ];
        for (k, n, want) in bad {
            let errs = errors(k, &meta(Some(n), None));
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert!(
                errs[0].starts_with(&format!("metadata.name: expected {want}")),
                "{}",
                errs[0]
            );
            assert!(errs[0].ends_with(&format!("found {n:?}")), "{}", errs[0]);
        }
    }

    #[test]
    fn missing_name_namespace_and_labels() {
        let errs = errors(Kind::Pod, &meta(None, Some("Shop")));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("metadata.name: expected a name: a DNS-1123 subdomain"));
        assert!(errs[0].ends_with("found nothing"));
        assert!(errs[1].starts_with("metadata.namespace: expected a DNS-1123 label"));
        // A namespace on a cluster-scoped object is ignored, as the API server does.
        assert!(errors(Kind::Node, &meta(Some("n1"), Some("Bad_NS"))).is_empty());
        let mut m = meta(Some("web"), None);
        m.generate_name = Some("web-".into());
        m.name = None;
        assert!(errors(Kind::Pod, &m)[0].contains("does not generate names"));
        let mut m = meta(Some("web"), None);
        m.labels = Some(BTreeMap::from([("app".into(), "web app".into())]));
        m.annotations = Some(BTreeMap::from([("Example.com/Ok".into(), "x".into())]));
        let errs = errors(Kind::Pod, &m);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("metadata.labels[\"app\"]: expected a label value"));
    }
}
