//! The ADD result cache: one file per attachment, written when ADD succeeds, read by DEL
//! and CHECK as `prevResult`, removed when DEL succeeds.
//!
//! Layout: `<cache dir>/results/<network>:<container id>:<ifname>`. Neither a network
//! name nor a container ID nor an interface name may contain ':' or '/', so the name is
//! unambiguous and cannot escape the directory (libcni joins with '-', which is not).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::InvokeError;
use crate::protocol::config::validate_network_name;
use crate::protocol::{validate_container_id, validate_ifname};

/// The `kind` of podnet's cache records.
pub const CACHE_KIND: &str = "podnetCniCacheV1";

/// One cached attachment: the final ADD result and the parameters that produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachedAttachment {
    /// Always [`CACHE_KIND`].
    pub kind: String,
    /// The network name.
    #[serde(rename = "networkName")]
    pub network_name: String,
    /// `CNI_CONTAINERID`.
    #[serde(rename = "containerId")]
    pub container_id: String,
    /// `CNI_IFNAME`.
    #[serde(rename = "ifName")]
    pub ifname: String,
    /// `CNI_NETNS` at ADD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<PathBuf>,
    /// `CNI_ARGS` at ADD.
    #[serde(rename = "cniArgs", default, skip_serializing_if = "Vec::is_empty")]
    pub cni_args: Vec<(String, String)>,
    /// Capability arguments at ADD.
    #[serde(
        rename = "capabilityArgs",
        default,
        skip_serializing_if = "Map::is_empty"
    )]
    pub capability_args: Map<String, Value>,
    /// The configuration list as it was at ADD.
    pub config: Value,
    /// The final ADD result (in the version it was negotiated at).
    pub result: Value,
}

/// The cache directory (the caller chooses it; libcni's default is `/var/lib/cni`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultCache {
    dir: PathBuf,
}

impl ResultCache {
    /// A cache rooted at `dir`; files go to `dir/results/`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ResultCache { dir: dir.into() }
    }

    /// The directory holding the result files.
    pub fn results_dir(&self) -> PathBuf {
        self.dir.join("results")
    }

    /// The file of one attachment; validates all three parts first.
    pub fn path_for(
        &self,
        network: &str,
        container_id: &str,
        ifname: &str,
    ) -> Result<PathBuf, InvokeError> {
        validate_network_name(network)?;
        validate_container_id(container_id)?;
        validate_ifname(ifname)?;
        Ok(self
            .results_dir()
            .join(format!("{network}:{container_id}:{ifname}")))
    }

    /// The cached attachment, if any.
    pub fn load(
        &self,
        network: &str,
        container_id: &str,
        ifname: &str,
    ) -> Result<Option<CachedAttachment>, InvokeError> {
        let path = self.path_for(network, container_id, ifname)?;
        read_record(&path)
    }

    /// Writes a record atomically (temporary file, then rename).
    pub fn store(&self, record: &CachedAttachment) -> Result<(), InvokeError> {
        let path = self.path_for(&record.network_name, &record.container_id, &record.ifname)?;
        let dir = self.results_dir();
        let cache_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| InvokeError::Cache { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(cache_err(&dir))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(cache_err(&dir))?;
        let bytes = serde_json::to_vec(record).map_err(|source| InvokeError::CacheDecode {
            path: path.clone(),
            source,
        })?;
        tmp.write_all(&bytes).map_err(cache_err(&path))?;
        tmp.as_file().sync_all().map_err(cache_err(&path))?;
        tmp.persist(&path).map_err(|e| InvokeError::Cache {
            path: path.clone(),
            source: e.error,
        })?;
        tracing::debug!(path = %path.display(), "cached cni result");
        Ok(())
    }

    /// Removes a record; a missing one is not an error.
    pub fn remove(
        &self,
        network: &str,
        container_id: &str,
        ifname: &str,
    ) -> Result<(), InvokeError> {
        let path = self.path_for(network, container_id, ifname)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(InvokeError::Cache { path, source }),
        }
    }

    /// Every cached attachment of `network`, sorted by container ID and interface.
    pub fn list(&self, network: &str) -> Result<Vec<CachedAttachment>, InvokeError> {
        validate_network_name(network)?;
        let dir = self.results_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(InvokeError::Cache { path: dir, source }),
        };
        let prefix = format!("{network}:");
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| InvokeError::Cache {
                path: dir.clone(),
                source,
            })?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with(&prefix) || name[prefix.len()..].matches(':').count() != 1 {
                continue;
            }
            if let Some(record) = read_record(&entry.path())? {
                out.push(record);
            }
        }
        out.sort_by(|a, b| (&a.container_id, &a.ifname).cmp(&(&b.container_id, &b.ifname)));
        Ok(out)
    }
}

fn read_record(path: &Path) -> Result<Option<CachedAttachment>, InvokeError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(InvokeError::Cache {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let record: CachedAttachment =
        serde_json::from_slice(&bytes).map_err(|source| InvokeError::CacheDecode {
            path: path.to_path_buf(),
            source,
        })?;
    if record.kind != CACHE_KIND {
        return Err(InvokeError::CacheDecode {
            path: path.to_path_buf(),
            source: serde::de::Error::custom(format!(
                "expected kind {CACHE_KIND:?}, found {:?}",
                record.kind
            )),
        });
    }
    Ok(Some(record))
}
