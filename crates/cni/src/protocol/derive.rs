//! Spec section 3, "Deriving request configuration from plugin configuration": how a
//! runtime turns one entry of a configuration list into the JSON a plugin reads.

use serde_json::{Map, Value};

use super::command::Command;
use super::config::GcAttachment;
use super::conflist::PluginConfig;
use super::version::SpecVersion;

/// The per-invocation inputs of the derivation.
#[derive(Debug, Clone, Copy)]
pub struct RequestParams<'a> {
    /// The command the plugin is run with.
    pub command: Command,
    /// The negotiated protocol version, inserted as `cniVersion`.
    pub cni_version: SpecVersion,
    /// Capability arguments the runtime offers (e.g. `portMappings`); each plugin gets in
    /// `runtimeConfig` only those it declares in `capabilities`.
    pub capability_args: &'a Map<String, Value>,
    /// `prevResult` for ADD (the previous plugin's result; none for the first plugin),
    /// DEL and CHECK (the cached final ADD result).
    pub prev_result: Option<&'a Value>,
    /// GC's still-valid attachments.
    pub valid_attachments: &'a [GcAttachment],
}

/// The key GC's attachment list has in the released spec 1.1.0.
pub const VALID_ATTACHMENTS_KEY: &str = "cni.dev/valid-attachments";
/// The key GC's attachment list had at the spec-v1.1.0 tag; sent too, for older plugins.
pub const LEGACY_ATTACHMENTS_KEY: &str = "cni.dev/attachments";

/// The order in which a list's plugins run for `command`: reverse for DEL, else as listed.
pub fn plugin_order(command: Command, count: usize) -> Vec<usize> {
    if command == Command::Del {
        (0..count).rev().collect()
    } else {
        (0..count).collect()
    }
}

/// The `runtimeConfig` for one plugin: capability arguments it declares and the runtime
/// provides. Empty when there is no overlap.
pub fn runtime_config_for(
    plugin: &PluginConfig,
    capability_args: &Map<String, Value>,
) -> Map<String, Value> {
    plugin
        .capabilities
        .iter()
        .filter(|(_, wanted)| **wanted)
        .filter_map(|(cap, _)| capability_args.get(cap).map(|v| (cap.clone(), v.clone())))
        .collect()
}

/// Derives the request configuration for `plugin` of the network `network_name`:
/// - `cniVersion` (the negotiated version) and `name` are always inserted;
/// - `capabilities` and any `cni.dev/` keys of the entry are removed;
/// - ADD, DEL, CHECK: `runtimeConfig` is inserted when non-empty (replacing a written
///   one), and `prevResult` when given (a written one is always removed);
/// - GC: the still-valid attachments under both GC keys;
/// - STATUS, VERSION: nothing more.
///
/// Every other key is passed through unchanged.
pub fn derive_request(
    network_name: &str,
    plugin: &PluginConfig,
    params: &RequestParams<'_>,
) -> Value {
    let mut map = plugin.raw.clone();
    map.retain(|k, _| k != "capabilities" && k != "prevResult" && !k.starts_with("cni.dev/"));
    map.insert(
        "cniVersion".to_string(),
        Value::String(params.cni_version.to_string()),
    );
    map.insert("name".to_string(), Value::String(network_name.to_string()));
    match params.command {
        Command::Add | Command::Del | Command::Check => {
            let rc = runtime_config_for(plugin, params.capability_args);
            if !rc.is_empty() {
                map.insert("runtimeConfig".to_string(), Value::Object(rc));
            }
            if let Some(prev) = params.prev_result {
                map.insert("prevResult".to_string(), prev.clone());
            }
        }
        Command::Gc => {
            let list = serde_json::to_value(params.valid_attachments)
                .unwrap_or_else(|_| Value::Array(Vec::new()));
            map.insert(VALID_ATTACHMENTS_KEY.to_string(), list.clone());
            map.insert(LEGACY_ATTACHMENTS_KEY.to_string(), list);
        }
        Command::Status | Command::Version => {}
    }
    Value::Object(map)
}

/// The stdin of a VERSION request: only `cniVersion`.
pub fn version_request(cni_version: &str) -> Value {
    let mut map = Map::new();
    map.insert(
        "cniVersion".to_string(),
        Value::String(cni_version.to_string()),
    );
    Value::Object(map)
}
