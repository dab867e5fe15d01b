//! Running a whole configuration list the way libcni does (spec section 3).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Map, Value};

use super::cache::{CachedAttachment, ResultCache, CACHE_KIND};
use super::error::InvokeError;
use super::exec::{exec_plugin, RuntimeEnv, DEFAULT_PATH, DEFAULT_TIMEOUT};
use crate::protocol::derive::{derive_request, plugin_order, version_request, RequestParams};
use crate::protocol::{
    AttachmentEnv, CniResult, Command, GcAttachment, NetworkConfigList, SpecVersion, VersionInfo,
};

/// The per-attachment parameters a runtime supplies (spec section 3).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attachment {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`: the container's network namespace path. May be `None` for DEL only.
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME`: the interface name inside the container.
    pub ifname: String,
    /// Generic arguments, passed as `CNI_ARGS`.
    pub args: Vec<(String, String)>,
    /// Capability arguments (e.g. `portMappings`, `bandwidth`), given to the plugins
    /// that declare them as `runtimeConfig`.
    pub capability_args: Map<String, Value>,
}

impl Attachment {
    /// An attachment without arguments.
    pub fn new(
        container_id: impl Into<String>,
        netns: impl Into<PathBuf>,
        ifname: impl Into<String>,
    ) -> Self {
        Attachment {
            container_id: container_id.into(),
            netns: Some(netns.into()),
            ifname: ifname.into(),
            ..Attachment::default()
        }
    }

    /// Adds a `CNI_ARGS` pair.
    pub fn with_arg(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.args.push((key.into(), value.into()));
        self
    }

    /// Adds a capability argument.
    pub fn with_capability(mut self, key: impl Into<String>, value: Value) -> Self {
        self.capability_args.insert(key.into(), value);
        self
    }
}

/// Runs configuration lists: plugin directories, result cache, how to execute plugins.
#[derive(Debug)]
pub struct ChainRunner {
    plugin_dirs: Vec<PathBuf>,
    cache: ResultCache,
    exec_prefix: Vec<String>,
    timeout: Duration,
    path: std::ffi::OsString,
    probe_versions: bool,
    probed: Mutex<HashMap<String, VersionInfo>>,
}

impl ChainRunner {
    /// A runner that looks for plugins in `plugin_dirs` (also given to them as
    /// `CNI_PATH`) and caches ADD results under `cache_dir/results`.
    pub fn new(plugin_dirs: Vec<PathBuf>, cache_dir: impl Into<PathBuf>) -> Self {
        ChainRunner {
            plugin_dirs,
            cache: ResultCache::new(cache_dir),
            exec_prefix: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            path: DEFAULT_PATH.into(),
            probe_versions: true,
            probed: Mutex::new(HashMap::new()),
        }
    }

    /// Runs every plugin under `prefix`, e.g. `["ip", "netns", "exec", "node1"]`, so that
    /// host-side changes land in that namespace instead of the caller's.
    pub fn with_exec_prefix(mut self, prefix: Vec<String>) -> Self {
        self.exec_prefix = prefix;
        self
    }

    /// Sets the per-plugin timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets `PATH` for plugins.
    pub fn with_path(mut self, path: impl Into<std::ffi::OsString>) -> Self {
        self.path = path.into();
        self
    }

    /// Whether to ask each plugin for VERSION (once per plugin type per runner) and
    /// negotiate a version every plugin supports. On by default; off, the highest version
    /// the configuration and podnet share is used.
    pub fn with_version_probing(mut self, on: bool) -> Self {
        self.probe_versions = on;
        self
    }

    /// The result cache.
    pub fn cache(&self) -> &ResultCache {
        &self.cache
    }

    fn env(&self, attachment: Option<&Attachment>) -> RuntimeEnv {
        RuntimeEnv {
            attachment: attachment.map(|a| AttachmentEnv {
                container_id: a.container_id.clone(),
                netns: a.netns.clone(),
                ifname: a.ifname.clone(),
            }),
            args: attachment.map(|a| a.args.clone()).unwrap_or_default(),
            exec_prefix: self.exec_prefix.clone(),
            timeout: self.timeout,
            path: self.path.clone(),
        }
    }

    /// Asks one plugin for the versions it supports.
    pub fn version(
        &self,
        plugin_type: &str,
        cni_version: &str,
    ) -> Result<VersionInfo, InvokeError> {
        let out = exec_plugin(
            &self.plugin_dirs,
            plugin_type,
            Command::Version,
            &self.env(None),
            &version_request(cni_version),
        )?
        .unwrap_or(Value::Null);
        serde_json::from_value(out.clone()).map_err(|source| InvokeError::Decode {
            plugin: plugin_type.to_string(),
            command: Command::Version,
            stdout: out.to_string(),
            source,
        })
    }

    /// The version to run `list` with (see [`ChainRunner::with_version_probing`]).
    pub fn negotiate(&self, list: &NetworkConfigList) -> Result<SpecVersion, InvokeError> {
        if !self.probe_versions {
            return Ok(list.negotiate(&[])?);
        }
        let highest = list.negotiate(&[])?.to_string();
        let mut reported = Vec::new();
        for plugin in &list.plugins {
            let known = self.probed_info(&plugin.plugin_type);
            let info = match known {
                Some(info) => info,
                None => {
                    let info = self.version(&plugin.plugin_type, &highest)?;
                    if let Ok(mut probed) = self.probed.lock() {
                        probed.insert(plugin.plugin_type.clone(), info.clone());
                    }
                    info
                }
            };
            reported.push((plugin.plugin_type.clone(), info.supported_versions));
        }
        Ok(list.negotiate(&reported)?)
    }

    fn probed_info(&self, plugin_type: &str) -> Option<VersionInfo> {
        self.probed.lock().ok()?.get(plugin_type).cloned()
    }

    fn run_one(
        &self,
        list: &NetworkConfigList,
        index: usize,
        params: &RequestParams<'_>,
        attachment: Option<&Attachment>,
    ) -> Result<Option<Value>, InvokeError> {
        let plugin = &list.plugins[index];
        let request = derive_request(&list.name, plugin, params);
        tracing::debug!(network = %list.name, plugin = %plugin.plugin_type,
            command = %params.command, "running plugin of network list");
        exec_plugin(
            &self.plugin_dirs,
            &plugin.plugin_type,
            params.command,
            &self.env(attachment),
            &request,
        )
    }

    /// ADD: runs the plugins in order, each getting the previous one's result as
    /// `prevResult`, caches the final result and returns it. On error the chain stops
    /// and the error is returned; the caller must still run DEL for the attachment, as
    /// the spec requires of runtimes.
    pub fn add_network_list(
        &self,
        list: &NetworkConfigList,
        attachment: &Attachment,
    ) -> Result<CniResult, InvokeError> {
        let version = self.negotiate(list)?;
        let version_text = version.to_string();
        if self
            .cache
            .load(&list.name, &attachment.container_id, &attachment.ifname)?
            .is_some()
        {
            tracing::warn!(network = %list.name, container_id = %attachment.container_id,
                ifname = %attachment.ifname, "ADD of an attachment that was added before without DEL");
        }
        let mut prev: Option<Value> = None;
        for index in plugin_order(Command::Add, list.plugins.len()) {
            let params = RequestParams {
                command: Command::Add,
                cni_version: version,
                capability_args: &attachment.capability_args,
                prev_result: prev.as_ref(),
                valid_attachments: &[],
            };
            let plugin = &list.plugins[index].plugin_type;
            let out = self
                .run_one(list, index, &params, Some(attachment))?
                .ok_or_else(|| InvokeError::MissingOutput {
                    plugin: plugin.clone(),
                    command: Command::Add,
                })?;
            prev = Some(normalise_result(plugin, out, &version_text)?);
        }
        let final_value = prev.unwrap_or(Value::Null);
        let result =
            CniResult::from_value(&final_value, Some(&version_text)).map_err(|source| {
                InvokeError::Result {
                    plugin: list.name.clone(),
                    command: Command::Add,
                    source,
                }
            })?;
        self.cache.store(&CachedAttachment {
            kind: CACHE_KIND.to_string(),
            network_name: list.name.clone(),
            container_id: attachment.container_id.clone(),
            ifname: attachment.ifname.clone(),
            netns: attachment.netns.clone(),
            cni_args: attachment.args.clone(),
            capability_args: attachment.capability_args.clone(),
            config: list.to_value(),
            result: final_value,
        })?;
        Ok(result)
    }

    /// The cached final ADD result of an attachment, converted to `version`.
    fn cached_prev(
        &self,
        list: &NetworkConfigList,
        attachment: &Attachment,
        version: &str,
    ) -> Result<Option<Value>, InvokeError> {
        let cached = self
            .cache
            .load(&list.name, &attachment.container_id, &attachment.ifname)?;
        cached
            .map(|c| normalise_result(&list.name, c.result, version))
            .transpose()
    }

    /// DEL: runs the plugins in reverse order, each getting the cached ADD result as
    /// `prevResult` (from 0.4.0 on; none if nothing is cached), and removes the cache
    /// entry when all succeed. Stops at the first error.
    pub fn del_network_list(
        &self,
        list: &NetworkConfigList,
        attachment: &Attachment,
    ) -> Result<(), InvokeError> {
        let version = self.negotiate(list)?;
        let prev = if version.has_prev_result_on_del() {
            self.cached_prev(list, attachment, &version.to_string())?
        } else {
            None
        };
        for index in plugin_order(Command::Del, list.plugins.len()) {
            let params = RequestParams {
                command: Command::Del,
                cni_version: version,
                capability_args: &attachment.capability_args,
                prev_result: prev.as_ref(),
                valid_attachments: &[],
            };
            self.run_one(list, index, &params, Some(attachment))?;
        }
        self.cache
            .remove(&list.name, &attachment.container_id, &attachment.ifname)
    }

    /// CHECK: unless `disableCheck`, runs the plugins in order with the cached ADD result
    /// as `prevResult`. Needs 0.4.0 or later and a cached result.
    pub fn check_network_list(
        &self,
        list: &NetworkConfigList,
        attachment: &Attachment,
    ) -> Result<(), InvokeError> {
        if list.disable_check {
            tracing::debug!(network = %list.name, "CHECK skipped: disableCheck is set");
            return Ok(());
        }
        let version = self.negotiate(list)?;
        if !version.has_check() {
            return Err(InvokeError::CheckUnsupported {
                network: list.name.clone(),
                version: version.to_string(),
            });
        }
        let prev = self
            .cached_prev(list, attachment, &version.to_string())?
            .ok_or_else(|| InvokeError::NoCachedResult {
                network: list.name.clone(),
                container_id: attachment.container_id.clone(),
                ifname: attachment.ifname.clone(),
            })?;
        for index in plugin_order(Command::Check, list.plugins.len()) {
            let params = RequestParams {
                command: Command::Check,
                cni_version: version,
                capability_args: &attachment.capability_args,
                prev_result: Some(&prev),
                valid_attachments: &[],
            };
            self.run_one(list, index, &params, Some(attachment))?;
        }
        Ok(())
    }

    /// STATUS: runs the plugins in order and stops at the first error (codes 50/51 say
    /// the plugin cannot serve ADD). Versions before 1.1.0 have no STATUS: success.
    pub fn status_network_list(&self, list: &NetworkConfigList) -> Result<(), InvokeError> {
        let version = self.negotiate(list)?;
        if !version.has_status_and_gc() {
            tracing::debug!(network = %list.name, %version, "STATUS skipped: needs 1.1.0");
            return Ok(());
        }
        let empty = Map::new();
        for index in plugin_order(Command::Status, list.plugins.len()) {
            let params = RequestParams {
                command: Command::Status,
                cni_version: version,
                capability_args: &empty,
                prev_result: None,
                valid_attachments: &[],
            };
            self.run_one(list, index, &params, None)?;
        }
        Ok(())
    }

    /// GC: unless `disableGC`, removes cached results of attachments not in `valid`, then
    /// (from 1.1.0 on) runs every plugin with the valid list, continuing past errors and
    /// returning them all.
    pub fn gc_network_list(
        &self,
        list: &NetworkConfigList,
        valid: &[GcAttachment],
    ) -> Result<(), InvokeError> {
        if list.disable_gc {
            tracing::debug!(network = %list.name, "GC skipped: disableGC is set");
            return Ok(());
        }
        let version = self.negotiate(list)?;
        let mut errors = Vec::new();
        for cached in self.cache.list(&list.name)? {
            let still_valid = valid
                .iter()
                .any(|v| v.container_id == cached.container_id && v.ifname == cached.ifname);
            if !still_valid {
                if let Err(e) = self
                    .cache
                    .remove(&list.name, &cached.container_id, &cached.ifname)
                {
                    errors.push(e);
                }
            }
        }
        if version.has_status_and_gc() {
            let empty = Map::new();
            for index in plugin_order(Command::Gc, list.plugins.len()) {
                let params = RequestParams {
                    command: Command::Gc,
                    cni_version: version,
                    capability_args: &empty,
                    prev_result: None,
                    valid_attachments: valid,
                };
                if let Err(e) = self.run_one(list, index, &params, None) {
                    tracing::warn!(network = %list.name, error = %e, "GC of a plugin failed");
                    errors.push(e);
                }
            }
        } else {
            tracing::debug!(network = %list.name, %version, "plugin GC skipped: needs 1.1.0");
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(InvokeError::Gc {
                network: list.name.clone(),
                errors,
            })
        }
    }
}

/// A plugin's result in the shape of `version`: the raw JSON when already in that version
/// (keeping any extra keys the plugin added), else converted.
fn normalise_result(plugin: &str, out: Value, version: &str) -> Result<Value, InvokeError> {
    let result =
        CniResult::from_value(&out, Some(version)).map_err(|source| InvokeError::Result {
            plugin: plugin.to_string(),
            command: Command::Add,
            source,
        })?;
    if result.cni_version.to_string() == version {
        return Ok(out);
    }
    let converted = result.to_version(version)?;
    Ok(converted.to_value())
}
