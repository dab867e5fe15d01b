//! Reading manifests: multi-document YAML or JSON from files, directories or stdin,
//! `kind: List` expanded, every problem of every document collected (never only the
//! first), each tied to the file, the document and, when known, the object.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::kind::Kind;
use crate::object::{Object, ObjectRef};

/// Where a document came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// File path, or `-` for stdin, or `<inline>`.
    pub file: String,
    /// 1-based document index in the file.
    pub document: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (document {})", self.file, self.document)
    }
}

/// An object read from a manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub source: Source,
    pub object: Object,
}

/// A problem with one field of one object, as the API server words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path from the object root: `spec.ports[1].targetPort`.
    pub field: String,
    pub expected: String,
    pub found: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            expected: expected.into(),
            found: found.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, found {}",
            self.field, self.expected, self.found
        )
    }
}

/// Everything wrong with one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub source: Source,
    /// The object, when the document names one.
    pub object: Option<ObjectRef>,
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match &self.object {
                Some(o) => write!(f, "{o}: {e} [{}]", self.source)?,
                None => write!(f, "{}: {e}", self.source)?,
            }
        }
        Ok(())
    }
}

/// Every object that decoded, and every document that did not.
#[derive(Debug, Default)]
pub struct Loaded {
    pub manifests: Vec<Manifest>,
    pub errors: Vec<ManifestError>,
}

impl Loaded {
    fn extend(&mut self, other: Loaded) {
        self.manifests.extend(other.manifests);
        self.errors.extend(other.errors);
    }
}

/// Reading a file or directory failed outright.
#[derive(Debug, thiserror::Error)]
#[error("reading {path}: {source}")]
pub struct ReadError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Loads `path`: `-` is stdin, a directory is every `.yaml`, `.yml` and `.json` file
/// in it (recursively, sorted by name), anything else one file.
pub fn load_path(path: &Path) -> Result<Loaded, ReadError> {
    let err = |source| ReadError {
        path: path.to_path_buf(),
        source,
    };
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(err)?;
        return Ok(load_str(&text, "-"));
    }
    if path.is_dir() {
        let mut files = Vec::new();
        collect_files(path, &mut files).map_err(err)?;
        files.sort();
        let mut all = Loaded::default();
        for f in files {
            all.extend(load_path(&f)?);
        }
        return Ok(all);
    }
    let text = std::fs::read_to_string(path).map_err(err)?;
    Ok(load_str(&text, &path.display().to_string()))
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            collect_files(&p, out)?;
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(p);
        }
    }
    Ok(())
}

/// Parses every document of `text` (YAML, which includes JSON).
pub fn load_str(text: &str, file: &str) -> Loaded {
    let mut out = Loaded::default();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let source = Source {
            file: file.to_string(),
            document: i + 1,
        };
        let value = match serde_json::Value::deserialize(doc) {
            Ok(serde_json::Value::Null) => continue, // empty document (`---` alone)
            Ok(v) => v,
            Err(e) => {
                out.errors.push(ManifestError {
                    source,
                    object: None,
                    errors: vec![FieldError::new(
                        "<document>",
                        "valid YAML or JSON",
                        e.to_string(),
                    )],
                });
                // The YAML stream cannot be resynchronised after a syntax error.
                break;
            }
        };
        decode_value(value, &source, &mut out);
    }
    out
}

fn decode_value(value: serde_json::Value, source: &Source, out: &mut Loaded) {
    if value.get("kind").and_then(|k| k.as_str()) == Some("List") {
        if let Some(items) = value.get("items").and_then(|i| i.as_array()) {
            for item in items {
                decode_value(item.clone(), source, out);
            }
            return;
        }
    }
    match decode_one(value) {
        Ok(object) => out.manifests.push(Manifest {
            source: source.clone(),
            object,
        }),
        Err((object, errors)) => out.errors.push(ManifestError {
            source: source.clone(),
            object,
            errors,
        }),
    }
}

/// Decodes one object, naming the field path of a type error
/// (`spec.ports[0].port: expected i32, found string "eighty"`).
pub fn decode_one(
    value: serde_json::Value,
) -> Result<Object, (Option<ObjectRef>, Vec<FieldError>)> {
    let str_at = |k: &str| value.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let meta_str = |k: &str| {
        value
            .get("metadata")
            .and_then(|m| m.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let (Some(api_version), Some(kind_name)) = (str_at("apiVersion"), str_at("kind")) else {
        let mut errs = Vec::new();
        if str_at("apiVersion").is_none() {
            errs.push(FieldError::new(
                "apiVersion",
                "a string such as \"v1\"",
                "nothing",
            ));
        }
        if str_at("kind").is_none() {
            errs.push(FieldError::new(
                "kind",
                "a string such as \"Service\"",
                "nothing",
            ));
        }
        return Err((None, errs));
    };
    let Some(kind) = Kind::from_type(&api_version, &kind_name) else {
        return Err((
            None,
            vec![FieldError::new(
                "apiVersion/kind",
                "one of v1 Namespace|Node|Pod|Service|Secret|ConfigMap, discovery.k8s.io/v1 EndpointSlice, networking.k8s.io/v1 NetworkPolicy|Ingress, podnet.io/v1alpha1 ClusterConfig",
                format!("{api_version} {kind_name}"),
            )],
        ));
    };
    let name = meta_str("name").unwrap_or_default();
    let namespace = meta_str("namespace");
    let oref = ObjectRef::new(kind, namespace.as_deref(), &name);
    typed(kind, value).map_err(|e| (Some(oref), vec![e]))
}

fn typed(kind: Kind, value: serde_json::Value) -> Result<Object, FieldError> {
    fn de<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, FieldError> {
        serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            let (expected, found) = split_serde_message(&inner);
            FieldError::new(
                if path == "." { "<object>".into() } else { path },
                expected,
                found,
            )
        })
    }
    Ok(match kind {
        Kind::Namespace => Object::Namespace(de(value)?),
        Kind::Node => Object::Node(de(value)?),
        Kind::Pod => Object::Pod(de(value)?),
        Kind::Service => Object::Service(de(value)?),
        Kind::Secret => Object::Secret(de(value)?),
        Kind::ConfigMap => Object::ConfigMap(de(value)?),
        Kind::EndpointSlice => Object::EndpointSlice(de(value)?),
        Kind::NetworkPolicy => Object::NetworkPolicy(de(value)?),
        Kind::Ingress => Object::Ingress(de(value)?),
        Kind::ClusterConfig => Object::ClusterConfig(de(value)?),
    })
}

/// Turns serde's "invalid type: string \"x\", expected i32" into (expected, found).
fn split_serde_message(msg: &str) -> (String, String) {
    if let Some(rest) = msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "))
    {
        if let Some((found, expected)) = rest.rsplit_once(", expected ") {
            return (expected.to_string(), found.to_string());
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        if let Some((field, expected)) = rest.split_once(", expected ") {
            return (
                format!("a known field ({expected})"),
                format!("unknown field {field}"),
            );
        }
    }
    if let Some(rest) = msg.strip_prefix("missing field ") {
        return (format!("field {rest}"), "nothing".to_string());
    }
    ("a valid value".to_string(), msg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_and_lists() {
        let text = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: a, namespace: shop}
  spec: {ports: [{port: 80}]}
- {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
"#;
        let l = load_str(text, "x.yaml");
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        let names: Vec<_> = l
            .manifests
            .iter()
            .map(|m| m.object.object_ref().to_string())
            .collect();
        assert_eq!(
            names,
            ["Namespace shop", "Service shop/a", "ConfigMap default/c"]
        );
        assert_eq!(l.manifests[1].source.document, 3);
    }

    #[test]
    fn json_documents_load() {
        let l = load_str(
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]}}"#,
            "p.json",
        );
        assert_eq!(l.manifests.len(), 1);
        assert_eq!(l.manifests[0].object.kind(), Kind::Pod);
    }

    #[test]
    fn type_errors_name_object_and_field_and_all_are_kept() {
        let text = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports: [{port: 80}, {port: eighty}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
---
apiVersion: v1
kind: Pod
metadata: {name: ok}
spec: {containers: [{name: c}]}
"#;
        let l = load_str(text, "bad.yaml");
        assert_eq!(l.manifests.len(), 1);
        assert_eq!(l.errors.len(), 2);
        let first = l.errors[0].to_string();
        assert!(
            first.starts_with(
                "Service shop/web: spec.ports[1].port: expected i32, found string \"eighty\""
            ),
            "{first}"
        );
        assert!(first.contains("bad.yaml (document 1)"), "{first}");
        assert!(
            l.errors[1].to_string().contains("apps/v1 Deployment"),
            "{}",
            l.errors[1]
        );
    }

    #[test]
    fn yaml_syntax_errors_are_reported() {
        let l = load_str("apiVersion: v1\nkind: [unclosed\n", "s.yaml");
        assert_eq!(l.errors.len(), 1);
        assert!(
            l.errors[0].to_string().contains("valid YAML"),
            "{}",
            l.errors[0]
        );
    }

    #[test]
    fn directories_are_read_recursively_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(
            dir.path().join("b.yaml"),
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("sub/c.yml"),
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: c}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("README.md"), "not a manifest").unwrap();
        let l = load_path(dir.path()).unwrap();
        let names: Vec<_> = l
            .manifests
            .iter()
            .map(|m| m.object.name().to_string())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }
}
