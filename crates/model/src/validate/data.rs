//! Secret and ConfigMap: keys (`[-._a-zA-Z0-9]+`, at most 253), no key given twice
//! (data and stringData, data and binaryData), at most 1 MiB in all, and the keys
//! that the well-known Secret types require.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::names::config_map_key;
use super::report::{quote, Report};

/// Largest Secret or ConfigMap payload (1 MiB), as etcd's request limit implies.
const MAX_BYTES: usize = 1024 * 1024;

fn check_keys<'a>(r: &mut Report, path: &str, keys: impl Iterator<Item = &'a String>) {
    for k in keys {
        r.check(format!("{path}[{k:?}]"), k, config_map_key(k));
    }
}

fn check_twice<'a, V>(
    r: &mut Report,
    path: &str,
    keys: impl Iterator<Item = &'a String>,
    other: Option<&BTreeMap<String, V>>,
    other_name: &str,
    why: &str,
) {
    let Some(other) = other else {
        return;
    };
    for k in keys.filter(|k| other.contains_key(*k)) {
        r.push(
            format!("{path}[{k:?}]"),
            format!("a key not also in {other_name} ({why})"),
            quote(k),
        );
    }
}

fn check_size(r: &mut Report, total: usize, what: &str) {
    if total > MAX_BYTES {
        r.push(
            "data",
            format!("at most {MAX_BYTES} bytes (1 MiB) of {what} in all"),
            format!("{total} bytes"),
        );
    }
}

/// Keys each well-known Secret type must carry (any one of the list when `any`).
fn required_keys(ty: &str) -> Option<(&'static [&'static str], bool)> {
    match ty {
        "kubernetes.io/tls" => Some((&["tls.crt", "tls.key"], false)),
        "kubernetes.io/dockerconfigjson" => Some((&[".dockerconfigjson"], false)),
        "kubernetes.io/dockercfg" => Some((&[".dockercfg"], false)),
        "kubernetes.io/ssh-auth" => Some((&["ssh-privatekey"], false)),
        "kubernetes.io/basic-auth" => Some((&["username", "password"], true)),
        _ => None,
    }
}

pub fn check_secret(r: &mut Report, s: &Secret) {
    if let Some(data) = &s.data {
        check_keys(r, "data", data.keys());
    }
    if let Some(sd) = &s.string_data {
        check_keys(r, "stringData", sd.keys());
        check_twice(
            r,
            "stringData",
            sd.keys(),
            s.data.as_ref(),
            "data",
            "stringData would silently replace it",
        );
    }
    let total: usize = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| k.len() + v.0.len())
        .sum::<usize>()
        + s.string_data
            .iter()
            .flatten()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>();
    check_size(r, total, "data and stringData");
    let ty = match s.type_.as_deref() {
        None => return,
        Some("") => {
            r.missing(
                "type",
                "a secret type (e.g. \"Opaque\", or leave the field out)",
            );
            return;
        }
        Some(t) => t,
    };
    let Some((keys, any)) = required_keys(ty) else {
        return;
    };
    let present: BTreeSet<&str> = s
        .data
        .iter()
        .flat_map(|d| d.keys())
        .chain(s.string_data.iter().flat_map(|d| d.keys()))
        .map(String::as_str)
        .collect();
    if any {
        if !keys.iter().any(|k| present.contains(k)) {
            r.missing(
                "data",
                format!("key {} or {} for type {ty}", quote(keys[0]), quote(keys[1])),
            );
        }
        return;
    }
    for k in keys.iter().filter(|k| !present.contains(*k)) {
        r.missing(
            format!("data[{k:?}]"),
            format!("key {} for type {ty}", quote(k)),
        );
    }
}

pub fn check_config_map(r: &mut Report, cm: &ConfigMap) {
    if let Some(data) = &cm.data {
        check_keys(r, "data", data.keys());
    }
    if let Some(bin) = &cm.binary_data {
        check_keys(r, "binaryData", bin.keys());
        check_twice(
            r,
            "binaryData",
            bin.keys(),
            cm.data.as_ref(),
            "data",
            "each key holds one value",
        );
    }
    let total: usize = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| k.len() + v.len())
        .sum::<usize>()
        + cm.binary_data
            .iter()
            .flatten()
            .map(|(k, v)| k.len() + v.0.len())
            .sum::<usize>();
    check_size(r, total, "data and binaryData");
}

#[cfg(test)]
mod tests {
    use crate::validate::testing::{assert_one, assert_valid, errors};

    fn secret(rest: &str) -> String {
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\n{rest}")
    }

    fn cm(rest: &str) -> String {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n{rest}")
    }

    #[test]
    fn good_data() {
        assert_valid(&secret(
            "type: Opaque\ndata: {password: aHVudGVyMg==}\nstringData: {user: admin}\n",
        ));
        assert_valid(&secret(
            "type: kubernetes.io/tls\ndata: {tls.crt: eA==}\nstringData: {tls.key: x}\n",
        ));
        assert_valid(&secret(
            "type: kubernetes.io/basic-auth\nstringData: {username: u}\n",
        ));
        assert_valid(&cm(
            "data: {config.yaml: 'a: 1', .env: x}\nbinaryData: {logo.png: iVBORw==}\n",
        ));
        assert_valid(&cm(""));
    }

    #[test]
    fn bad_data() {
        let cases = [
            (secret("data: {'a/b': eA==}\n"), "data[\"a/b\"]: expected a key of at most 253 letters, digits, '-', '_' or '.'"),
            (secret("stringData: {'..x': y}\n"), "stringData[\"..x\"]: expected a key of at most 253"),
            (secret("data: {user: eA==}\nstringData: {user: admin}\n"), "stringData[\"user\"]: expected a key not also in data (stringData would silently replace it), found \"user\""),
            (secret("type: ''\n"), "type: expected a secret type (e.g. \"Opaque\", or leave the field out), found nothing"),
            (secret("type: kubernetes.io/tls\ndata: {tls.crt: eA==}\n"), "data[\"tls.key\"]: expected key \"tls.key\" for type kubernetes.io/tls, found nothing"),
            (secret("type: kubernetes.io/basic-auth\ndata: {user: eA==}\n"), "data: expected key \"username\" or \"password\" for type kubernetes.io/basic-auth, found nothing"),
            (cm("data: {a: x}\nbinaryData: {a: eA==}\n"), "binaryData[\"a\"]: expected a key not also in data (each key holds one value), found \"a\""),
            (cm("data: {'': x}\n"), "data[\"\"]: expected a key of at most 253"),
        ];
        for (yaml, want) in cases {
            assert_one(&yaml, want);
        }
        let big = "x".repeat(1024 * 1024);
        let errs = errors(&cm(&format!("data: {{big: {big}}}\n")));
        assert_eq!(errs, ["data: expected at most 1048576 bytes (1 MiB) of data and binaryData in all, found 1048579 bytes"]);
    }
}
