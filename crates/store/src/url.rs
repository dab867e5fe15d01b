//! Store URLs: `etcd://host:port[,host:port...]`, `etcd+unix:///path[,/path...]` (etcd
//! members listening on unix sockets, e.g. a lab's etcd reached from outside its
//! network namespaces), `sqlite:///path`, `file:///path`, or a plain path to the
//! embedded database file.

use std::path::PathBuf;
use std::sync::Arc;

use crate::api::{Store, StoreError};

/// Where the embedded database lives when nothing else is said.
pub const DEFAULT_EMBEDDED_PATH: &str = "/var/lib/podnet/state.db";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Embedded(PathBuf),
    Etcd(Vec<String>),
    /// etcd members' unix sockets.
    EtcdUnix(Vec<PathBuf>),
}

impl StoreUrl {
    pub fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        let bad = |message: &str| StoreError::BadUrl {
            url: url.to_string(),
            message: message.to_string(),
        };
        if let Some(rest) = url.strip_prefix("etcd+unix://") {
            let paths: Vec<PathBuf> = rest
                .split(',')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect();
            if paths.is_empty() || paths.iter().any(|p| !p.is_absolute()) {
                return Err(bad("expected etcd+unix:///absolute/path[,/path...]"));
            }
            return Ok(StoreUrl::EtcdUnix(paths));
        }
        if let Some(rest) = url.strip_prefix("etcd://") {
            let endpoints: Vec<String> = rest
                .trim_end_matches('/')
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| format!("http://{s}"))
                .collect();
            if endpoints.is_empty() {
                return Err(bad(
                    "expected etcd://host:port[,host:port...], found no endpoint",
                ));
            }
            for e in &endpoints {
                let hostport = e.trim_start_matches("http://");
                match hostport.rsplit_once(':') {
                    Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => {}
                    _ => {
                        return Err(bad(&format!(
                            "expected host:port for each endpoint, found {hostport:?}"
                        )))
                    }
                }
            }
            return Ok(StoreUrl::Etcd(endpoints));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("file://"))
            .unwrap_or(url);
        if path.is_empty() {
            return Err(bad(
                "expected a file path, sqlite:///path or etcd://host:port",
            ));
        }
        if url.contains("://") && !url.starts_with("sqlite://") && !url.starts_with("file://") {
            return Err(bad(
                "unknown scheme: expected etcd://, sqlite:// or file://",
            ));
        }
        Ok(StoreUrl::Embedded(PathBuf::from(path)))
    }
}

/// Opens the store a URL names.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    match StoreUrl::parse(url)? {
        StoreUrl::Embedded(path) => Ok(Arc::new(crate::embedded::SqliteStore::open(&path)?)),
        StoreUrl::EtcdUnix(paths) => {
            let endpoints = crate::etcd::unix::forward(&paths).await?;
            Ok(Arc::new(crate::etcd::EtcdStore::connect(&endpoints).await?))
        }
        StoreUrl::Etcd(endpoints) => {
            Ok(Arc::new(crate::etcd::EtcdStore::connect(&endpoints).await?))
        }
    }
}

/// Like [`open`], for a short-lived process: an embedded store is opened with
/// [`crate::embedded::SqliteStore::open_oneshot`] (no background threads, no lease
/// expiry, no watches); etcd is opened as by [`open`].
pub async fn open_oneshot(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    match StoreUrl::parse(url)? {
        StoreUrl::Embedded(path) => {
            Ok(Arc::new(crate::embedded::SqliteStore::open_oneshot(&path)?))
        }
        _ => open(url).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            StoreUrl::parse("etcd://127.0.0.1:2379,10.0.0.2:2379").unwrap(),
            StoreUrl::Etcd(vec![
                "http://127.0.0.1:2379".into(),
                "http://10.0.0.2:2379".into()
            ])
        );
        assert_eq!(
            StoreUrl::parse("/tmp/x.db").unwrap(),
            StoreUrl::Embedded("/tmp/x.db".into())
        );
        assert_eq!(
            StoreUrl::parse("sqlite:///tmp/x.db").unwrap(),
            StoreUrl::Embedded("/tmp/x.db".into())
        );
        assert_eq!(
            StoreUrl::parse("etcd+unix:///run/a.sock,/run/b.sock").unwrap(),
            StoreUrl::EtcdUnix(vec!["/run/a.sock".into(), "/run/b.sock".into()])
        );
        assert!(StoreUrl::parse("etcd+unix://rel.sock").is_err());
        assert!(StoreUrl::parse("etcd://").is_err());
        assert!(StoreUrl::parse("etcd://host").is_err());
        assert!(StoreUrl::parse("redis://x:1").is_err());
    }
}
