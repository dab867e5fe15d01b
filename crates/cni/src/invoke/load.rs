//! Picking a network configuration from a CNI configuration directory, as runtimes do:
//! the lexically first `*.conflist`, `*.conf` or `*.json` file.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::InvokeError;
use crate::protocol::{ConfigError, NetworkConfigList};

/// File extensions runtimes read from a CNI configuration directory.
pub const CONFIG_EXTENSIONS: [&str; 3] = ["conflist", "conf", "json"];

/// The configuration files of `dir`, sorted by file name. A missing directory has none.
pub fn config_files(dir: &Path) -> Result<Vec<PathBuf>, InvokeError> {
    let read_err = |source| InvokeError::ReadConfig {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_err(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(read_err)?.path();
        let ext_ok = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| CONFIG_EXTENSIONS.contains(&e));
        if ext_ok && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads the lexically first configuration file of `dir`.
pub fn load_conflist(dir: &Path) -> Result<NetworkConfigList, InvokeError> {
    let path = config_files(dir)?
        .into_iter()
        .next()
        .ok_or_else(|| InvokeError::NoConfig {
            dir: dir.to_path_buf(),
        })?;
    tracing::debug!(path = %path.display(), "loading cni network configuration");
    load_conflist_file(&path)
}

/// Loads one file: a `.conflist` is a list; a `.conf` or `.json` holding `plugins` is a
/// list too, else a single plugin configuration wrapped into a list of one.
pub fn load_conflist_file(path: &Path) -> Result<NetworkConfigList, InvokeError> {
    let bytes = std::fs::read(path).map_err(|source| InvokeError::ReadConfig {
        path: path.to_path_buf(),
        source,
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(ConfigError::Decode)?;
    let is_list =
        path.extension().is_some_and(|e| e == "conflist") || value.get("plugins").is_some();
    let list = if is_list {
        NetworkConfigList::from_value(value)?
    } else {
        NetworkConfigList::from_single(value)?
    };
    Ok(list)
}
