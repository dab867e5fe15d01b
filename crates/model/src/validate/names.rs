//! Names and keys as the API server checks them: DNS-1123 labels and subdomains,
//! DNS-1035 labels, label keys and values, annotation keys and total size,
//! ConfigMap/Secret keys and environment variable names.

use std::collections::BTreeMap;

use super::report::{Mismatch, Report};

pub const LABEL_MAX: usize = 63;
pub const SUBDOMAIN_MAX: usize = 253;
/// Total size of all annotation keys and values of one object (256 KiB).
pub const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

pub const DNS1123_LABEL: &str = "a DNS-1123 label: at most 63 lower-case letters, digits or '-', starting and ending with a letter or digit (e.g. \"web-1\")";
pub const DNS1035_LABEL: &str = "a DNS-1035 label: at most 63 lower-case letters, digits or '-', starting with a letter and ending with a letter or digit (e.g. \"web\")";
pub const DNS1123_SUBDOMAIN: &str = "a DNS-1123 subdomain: at most 253 characters of lower-case letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit (e.g. \"example.com\")";
pub const WILDCARD_SUBDOMAIN: &str =
    "a DNS-1123 subdomain with an optional leading \"*.\" wildcard (e.g. \"*.example.com\")";
const LABEL_VALUE: &str = "a label value: empty, or at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
const CONFIG_KEY: &str = "a key of at most 253 letters, digits, '-', '_' or '.', other than \".\" and \"..\" and not starting with \"..\"";
const ENV_NAME: &str = "an environment variable name: letters, digits, '-', '_' or '.', not starting with a digit (e.g. \"LOG_LEVEL\")";

fn is_alnum_lower(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, ignoring length.
fn label_shape(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            is_alnum_lower(f)
                && is_alnum_lower(l)
                && b.iter().all(|&c| is_alnum_lower(c) || c == b'-')
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn dns1123_label(s: &str) -> Result<(), Mismatch> {
    if s.len() > LABEL_MAX {
        return Err(Mismatch::length(DNS1123_LABEL));
    }
    if label_shape(s) {
        Ok(())
    } else {
        Err(Mismatch::new(DNS1123_LABEL))
    }
}

/// `[a-z]([-a-z0-9]*[a-z0-9])?`, at most 63 characters (Service names).
pub fn dns1035_label(s: &str) -> Result<(), Mismatch> {
    if s.len() > LABEL_MAX {
        return Err(Mismatch::length(DNS1035_LABEL));
    }
    if label_shape(s) && s.as_bytes()[0].is_ascii_lowercase() {
        Ok(())
    } else {
        Err(Mismatch::new(DNS1035_LABEL))
    }
}

fn subdomain_shape(s: &str) -> bool {
    s.split('.').all(label_shape)
}

/// Dot-separated DNS-1123 labels, at most 253 characters.
pub fn dns1123_subdomain(s: &str) -> Result<(), Mismatch> {
    if s.len() > SUBDOMAIN_MAX {
        return Err(Mismatch::length(DNS1123_SUBDOMAIN));
    }
    if subdomain_shape(s) {
        Ok(())
    } else {
        Err(Mismatch::new(DNS1123_SUBDOMAIN))
    }
}

/// `*.` followed by a DNS-1123 subdomain (the whole at most 253 characters).
pub fn wildcard_dns1123_subdomain(s: &str) -> Result<(), Mismatch> {
    if s.len() > SUBDOMAIN_MAX {
        return Err(Mismatch::length(WILDCARD_SUBDOMAIN));
    }
    match s.strip_prefix("*.") {
        Some(rest) if subdomain_shape(rest) => Ok(()),
        _ => Err(Mismatch::new(WILDCARD_SUBDOMAIN)),
    }
}

/// A DNS-1123 subdomain, or one with a leading `*.` when `s` contains a `*`.
pub fn host_name(s: &str) -> Result<(), Mismatch> {
    if s.contains('*') {
        wildcard_dns1123_subdomain(s)
    } else {
        dns1123_subdomain(s)
    }
}

/// A domain name of at least two labels, one trailing dot allowed
/// (EndpointSlice FQDN addresses).
pub fn fully_qualified_domain_name(s: &str) -> Result<(), Mismatch> {
    const FQDN: &str = "a fully qualified domain name: a DNS-1123 subdomain of at least two dot-separated parts (e.g. \"db.example.com\")";
    let t = s.strip_suffix('.').unwrap_or(s);
    if t.len() > SUBDOMAIN_MAX {
        return Err(Mismatch::length(FQDN));
    }
    if t.contains('.') && subdomain_shape(t) {
        Ok(())
    } else {
        Err(Mismatch::new(FQDN))
    }
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, ignoring length.
fn name_shape(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter().all(|&c| is_name_char(c))
        }
        _ => false,
    }
}

/// A qualified name (`prefix/name` or `name`), as label and annotation keys are;
/// `what` names the kind of key in the message ("label key").
pub fn qualified_name(s: &str, what: &str) -> Result<(), Mismatch> {
    let rules = format!("a {what}: an optional DNS-1123 subdomain prefix and '/', then a name of at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (e.g. \"app.kubernetes.io/name\")");
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if name.contains('/') {
        return Err(Mismatch::new(format!("a {what} with at most one '/'")));
    }
    if let Some(p) = prefix {
        if p.len() > SUBDOMAIN_MAX {
            return Err(Mismatch::length(format!(
                "a {what} whose prefix before '/' has at most 253 characters"
            )));
        }
        if !subdomain_shape(p) {
            return Err(Mismatch::new(format!(
                "a {what} whose prefix before '/' is a DNS-1123 subdomain (lower-case, e.g. \"example.com/\")"
            )));
        }
    }
    if name.len() > LABEL_MAX {
        return Err(Mismatch::length(format!(
            "a {what} whose name part (after any '/') has at most 63 characters"
        )));
    }
    if name_shape(name) {
        Ok(())
    } else {
        Err(Mismatch::new(rules))
    }
}

/// Empty, or a name of at most 63 characters as in [`qualified_name`].
pub fn label_value(s: &str) -> Result<(), Mismatch> {
    if s.len() > LABEL_MAX {
        return Err(Mismatch::length(LABEL_VALUE));
    }
    if s.is_empty() || name_shape(s) {
        Ok(())
    } else {
        Err(Mismatch::new(LABEL_VALUE))
    }
}

/// A key of ConfigMap/Secret `data`: `[-._a-zA-Z0-9]+`, at most 253, no `..` prefix.
pub fn config_map_key(s: &str) -> Result<(), Mismatch> {
    if s.len() > SUBDOMAIN_MAX {
        return Err(Mismatch::length(CONFIG_KEY));
    }
    if s.is_empty() || !s.bytes().all(is_name_char) || s == "." || s.starts_with("..") {
        return Err(Mismatch::new(CONFIG_KEY));
    }
    Ok(())
}

/// `[-._a-zA-Z][-._a-zA-Z0-9]*`.
pub fn env_var_name(s: &str) -> Result<(), Mismatch> {
    let ok = match s.as_bytes().first() {
        Some(f) => !f.is_ascii_digit() && s.bytes().all(is_name_char),
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Mismatch::new(ENV_NAME))
    }
}

/// Every key and value of a label map (`metadata.labels`, `spec.selector`, ...).
pub fn check_labels(r: &mut Report, path: &str, labels: &BTreeMap<String, String>) {
    for (k, v) in labels {
        let at = format!("{path}[{k:?}]");
        r.check(&at, k, qualified_name(k, "label key"));
        r.check(&at, v, label_value(v));
    }
}

/// Annotation keys (checked lower-cased, as the API server does) and total size.
pub fn check_annotations(r: &mut Report, path: &str, annotations: &BTreeMap<String, String>) {
    let mut total = 0usize;
    for (k, v) in annotations {
        total += k.len() + v.len();
        let lower = k.to_ascii_lowercase();
        r.check(
            format!("{path}[{k:?}]"),
            k,
            qualified_name(&lower, "annotation key"),
        );
    }
    if total > ANNOTATIONS_MAX_BYTES {
        r.push(
            path,
            format!("annotations of at most {ANNOTATIONS_MAX_BYTES} bytes (256 KiB) in total"),
            format!("{total} bytes"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(f: fn(&str) -> Result<(), Mismatch>, good: &[&str], bad: &[&str]) {
        for g in good {
            assert!(f(g).is_ok(), "{g:?} should pass: {:?}", f(g));
        }
        for b in bad {
            assert!(f(b).is_err(), "{b:?} should fail");
        }
    }

    #[test]
    fn labels_and_subdomains() {
        let l63 = "a".repeat(63);
        let l64 = "a".repeat(64);
        ok(
            dns1123_label,
            &["a", "web-1", "1abc", &l63],
            &["", "Web", "web_1", "-a", "a-", "a.b", &l64],
        );
        ok(
            dns1035_label,
            &["web", "w-1", &l63],
            &["1web", "", "Web", "web-", &l64],
        );
        let long = format!("{}.{}.{}.{}", l63, l63, l63, "a".repeat(62)); // 254
        ok(
            dns1123_subdomain,
            &["a", "example.com", "a-b.c-d", "1.2.3.4", &l64],
            &["", "a..b", ".a", "a.", "A.com", "a_b", "-a.b", &long],
        );
        ok(
            wildcard_dns1123_subdomain,
            &["*.example.com", "*.a"],
            &["*", "*.", "a.*.com", "**.a", "*a.com"],
        );
        ok(
            host_name,
            &["shop.example.com", "*.example.com"],
            &["*.*.example.com", "Shop.com"],
        );
        ok(
            fully_qualified_domain_name,
            &["db.example.com", "db.example.com."],
            &["db", "db.", "Db.x", "a..b"],
        );
        assert!(dns1123_label(&l64).unwrap_err().show_length);
    }

    #[test]
    fn keys_and_values() {
        let q = |s: &str| qualified_name(s, "label key");
        let n63 = "a".repeat(63);
        let n64 = "a".repeat(64);
        for g in [
            "app",
            "app.kubernetes.io/name",
            "A_b.c-D",
            "example.com/X",
            n63.as_str(),
        ] {
            assert!(q(g).is_ok(), "{g}");
        }
        for b in [
            "",
            "/a",
            "a/",
            "a/b/c",
            "Example.com/a",
            "_a",
            "a_",
            "a b",
            n64.as_str(),
        ] {
            assert!(q(b).is_err(), "{b}");
        }
        assert!(q("a/b/c").unwrap_err().expected.contains("at most one '/'"));
        assert!(q("EX.com/a").unwrap_err().expected.contains("prefix"));
        ok(
            label_value,
            &["", "web", "v1.2_3-x"],
            &["-a", "a b", "a/b", &n64],
        );
        ok(
            config_map_key,
            &["a", "config.yaml", ".hidden", "a..b", "A-_"],
            &["", ".", "..", "..a", "a/b", "a b"],
        );
        ok(
            env_var_name,
            &["A", "_a", "my.var-1", "-x"],
            &["", "1A", "A=B", "A B"],
        );
    }

    #[test]
    fn label_maps_and_annotations_name_the_entry() {
        let mut r = Report::new();
        let labels = BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), "web".to_string()),
            ("bad key".to_string(), "ok".to_string()),
            ("tier".to_string(), "-front".to_string()),
        ]);
        check_labels(&mut r, "metadata.labels", &labels);
        let ann = BTreeMap::from([
            (
                "Example.com/Note".to_string(),
                "x".repeat(ANNOTATIONS_MAX_BYTES),
            ),
            ("bad/key/x".to_string(), String::new()),
        ]);
        check_annotations(&mut r, "metadata.annotations", &ann);
        let fields: Vec<&str> = r.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.labels[\"bad key\"]",
                "metadata.labels[\"tier\"]",
                "metadata.annotations[\"bad/key/x\"]",
                "metadata.annotations",
            ]
        );
        assert_eq!(r.errors()[1].found, "\"-front\"");
        assert_eq!(r.errors()[3].found, "262169 bytes");
    }
}
