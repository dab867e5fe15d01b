//! Network configuration lists (`.conflist`), as an administrator writes them (spec
//! section 1), and the wrapping of a bare single-plugin `.conf` into a list.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::config::{validate_network_name, validate_plugin_type, ConfigError};
use super::version::{negotiate, SpecVersion, VersionError};

/// One entry of `plugins`: its type and declared capabilities, plus the whole object raw
/// (the runtime must pass unknown keys through unchanged).
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// `type`: the plugin binary name.
    pub plugin_type: String,
    /// `capabilities`: the capability arguments this plugin wants in `runtimeConfig`.
    pub capabilities: BTreeMap<String, bool>,
    /// The entry as written.
    pub raw: Map<String, Value>,
}

impl PluginConfig {
    /// Reads one plugin entry; `at` names it in errors (e.g. `plugins[1]`).
    pub fn from_map(at: &str, raw: Map<String, Value>) -> Result<PluginConfig, ConfigError> {
        let plugin_type = match raw.get("type") {
            None => {
                return Err(ConfigError::Missing {
                    key: format!("{at}.type"),
                    expected: "the plugin binary name",
                })
            }
            Some(Value::String(t)) => t.clone(),
            Some(other) => {
                return Err(ConfigError::Invalid {
                    key: format!("{at}.type"),
                    expected: "a string".to_string(),
                    found: other.to_string(),
                })
            }
        };
        validate_plugin_type(&format!("{at}.type"), &plugin_type)?;
        let capabilities = match raw.get("capabilities") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(v) => BTreeMap::<String, bool>::deserialize(v).map_err(ConfigError::Decode)?,
        };
        Ok(PluginConfig {
            plugin_type,
            capabilities,
            raw,
        })
    }

    /// Whether the plugin declares `capability` (with `true`).
    pub fn wants(&self, capability: &str) -> bool {
        self.capabilities.get(capability).copied().unwrap_or(false)
    }
}

/// A network configuration list.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfigList {
    /// `cniVersion` as written (optional when `cniVersions` is given).
    pub cni_version: Option<String>,
    /// `cniVersions` (1.1.0): every version the configuration supports.
    pub cni_versions: Vec<String>,
    /// The network name.
    pub name: String,
    /// Runtimes must not CHECK this network.
    pub disable_check: bool,
    /// Runtimes must not GC this network.
    pub disable_gc: bool,
    /// Plugins from sources other than this file must be ignored.
    pub load_only_inlined_plugins: bool,
    /// The plugins, in ADD order.
    pub plugins: Vec<PluginConfig>,
}

/// `disableCheck` and friends: a boolean, or the strings "true"/"false" as libcni accepts.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::Null => Ok(false),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(serde::de::Error::custom(format!(
            "expected true or false, found {other}"
        ))),
    }
}

#[derive(Deserialize)]
struct WireList {
    #[serde(rename = "cniVersion", default)]
    cni_version: Option<String>,
    #[serde(rename = "cniVersions", default)]
    cni_versions: Option<Vec<String>>,
    name: String,
    #[serde(rename = "disableCheck", default, deserialize_with = "lenient_bool")]
    disable_check: bool,
    #[serde(rename = "disableGC", default, deserialize_with = "lenient_bool")]
    disable_gc: bool,
    #[serde(
        rename = "loadOnlyInlinedPlugins",
        default,
        deserialize_with = "lenient_bool"
    )]
    load_only_inlined_plugins: bool,
    plugins: Vec<Map<String, Value>>,
}

impl NetworkConfigList {
    /// Reads a `.conflist` from bytes.
    pub fn parse(bytes: &[u8]) -> Result<NetworkConfigList, ConfigError> {
        let value: Value = serde_json::from_slice(bytes).map_err(ConfigError::Decode)?;
        NetworkConfigList::from_value(value)
    }

    /// Reads and validates a list. Errors: malformed or wrongly typed JSON → 6; a missing
    /// `name`, `plugins` or plugin `type`, an empty `plugins`, or a bad name → 7; a
    /// malformed version, or no version podnet supports → 1.
    pub fn from_value(value: Value) -> Result<NetworkConfigList, ConfigError> {
        if let Value::Object(map) = &value {
            for (key, expected) in [
                ("name", "the network name"),
                ("plugins", "a list of plugin configurations"),
            ] {
                if !map.contains_key(key) {
                    return Err(ConfigError::Missing {
                        key: key.to_string(),
                        expected,
                    });
                }
            }
        }
        let wire = WireList::deserialize(value).map_err(ConfigError::Decode)?;
        validate_network_name(&wire.name)?;
        if wire.cni_version.is_none() && wire.cni_versions.is_none() {
            return Err(ConfigError::Missing {
                key: "cniVersion".to_string(),
                expected: "the protocol version, e.g. \"1.1.0\" (or a cniVersions list)",
            });
        }
        if wire.plugins.is_empty() {
            return Err(ConfigError::Invalid {
                key: "plugins".to_string(),
                expected: "at least one plugin".to_string(),
                found: "[]".to_string(),
            });
        }
        let plugins = wire
            .plugins
            .into_iter()
            .enumerate()
            .map(|(i, raw)| PluginConfig::from_map(&format!("plugins[{i}]"), raw))
            .collect::<Result<Vec<_>, _>>()?;
        let list = NetworkConfigList {
            cni_version: wire.cni_version,
            cni_versions: wire.cni_versions.unwrap_or_default(),
            name: wire.name,
            disable_check: wire.disable_check,
            disable_gc: wire.disable_gc,
            load_only_inlined_plugins: wire.load_only_inlined_plugins,
            plugins,
        };
        list.negotiate(&[])?;
        Ok(list)
    }

    /// Wraps a bare single-plugin configuration (a `.conf` file) into a list of one,
    /// taking the list's `name` and `cniVersion` from it, as runtimes do.
    pub fn from_single(value: Value) -> Result<NetworkConfigList, ConfigError> {
        let Value::Object(map) = value else {
            return NetworkConfigList::from_value(value);
        };
        let mut list = Map::new();
        for key in ["cniVersion", "name"] {
            if let Some(v) = map.get(key) {
                list.insert(key.to_string(), v.clone());
            }
        }
        list.insert(
            "plugins".to_string(),
            Value::Array(vec![Value::Object(map)]),
        );
        NetworkConfigList::from_value(Value::Object(list))
    }

    /// Every version the configuration offers: `cniVersion` plus `cniVersions`.
    pub fn offered_versions(&self) -> Vec<String> {
        let mut out: Vec<String> = self.cni_version.iter().cloned().collect();
        for v in &self.cni_versions {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        out
    }

    /// The version to run with: the highest one offered that podnet and each listed
    /// plugin (type, supportedVersions) support.
    pub fn negotiate(
        &self,
        plugins: &[(String, Vec<String>)],
    ) -> Result<SpecVersion, VersionError> {
        negotiate(&self.offered_versions(), plugins)
    }

    /// The list as JSON, e.g. to write a `.conflist` file.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        if let Some(v) = &self.cni_version {
            map.insert("cniVersion".into(), Value::String(v.clone()));
        }
        if !self.cni_versions.is_empty() {
            map.insert("cniVersions".into(), self.cni_versions.clone().into());
        }
        map.insert("name".into(), Value::String(self.name.clone()));
        for (key, set) in [
            ("disableCheck", self.disable_check),
            ("disableGC", self.disable_gc),
            ("loadOnlyInlinedPlugins", self.load_only_inlined_plugins),
        ] {
            if set {
                map.insert(key.into(), Value::Bool(true));
            }
        }
        map.insert(
            "plugins".into(),
            Value::Array(
                self.plugins
                    .iter()
                    .map(|p| Value::Object(p.raw.clone()))
                    .collect(),
            ),
        );
        Value::Object(map)
    }
}
