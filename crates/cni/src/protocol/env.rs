//! The `CNI_*` environment: parsed and validated on the plugin side, rendered on the
//! runtime side. Every failure is error code 4 (invalid environment variables) and names
//! the variable.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use super::command::Command;
use super::error::{ErrorCode, HasErrorCode};

/// `CNI_COMMAND`.
pub const CNI_COMMAND: &str = "CNI_COMMAND";
/// `CNI_CONTAINERID`.
pub const CNI_CONTAINERID: &str = "CNI_CONTAINERID";
/// `CNI_NETNS`.
pub const CNI_NETNS: &str = "CNI_NETNS";
/// `CNI_IFNAME`.
pub const CNI_IFNAME: &str = "CNI_IFNAME";
/// `CNI_ARGS`.
pub const CNI_ARGS: &str = "CNI_ARGS";
/// `CNI_PATH`.
pub const CNI_PATH: &str = "CNI_PATH";

/// Longest interface name Linux accepts (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = 15;

const CONTAINER_ID_EXPECTED: &str =
    "an alphanumeric character followed by alphanumerics, '_', '.' or '-'";
const IFNAME_EXPECTED: &str =
    "a non-empty name of at most 15 bytes, not '.' or '..', without '/', ':' or whitespace";

/// An invalid or missing `CNI_*` variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// A variable the command requires is unset.
    #[error("missing environment variable {var}: expected {expected} (required for {command}), found it unset")]
    Missing {
        /// The variable's name.
        var: &'static str,
        /// What it should hold.
        expected: &'static str,
        /// The command that requires it (or "every command").
        command: String,
    },
    /// A variable holds a value that breaks the spec's rules.
    #[error("invalid environment variable {var}: expected {expected}, found {found:?}")]
    Invalid {
        /// The variable's name.
        var: &'static str,
        /// What it should hold.
        expected: String,
        /// The value found.
        found: String,
    },
}

impl HasErrorCode for EnvError {
    fn error_code(&self) -> ErrorCode {
        ErrorCode::InvalidEnvironment
    }
}

impl EnvError {
    /// The name of the offending variable.
    pub fn var(&self) -> &'static str {
        match self {
            EnvError::Missing { var, .. } | EnvError::Invalid { var, .. } => var,
        }
    }
}

/// The per-attachment parameters of ADD, DEL and CHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentEnv {
    /// `CNI_CONTAINERID`, validated.
    pub container_id: String,
    /// `CNI_NETNS`; `None` only for a DEL whose namespace is already gone.
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME`, validated.
    pub ifname: String,
}

/// What a plugin was asked to do, from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginEnv {
    /// `CNI_COMMAND`.
    pub command: Command,
    /// Present exactly for ADD, DEL and CHECK.
    pub attachment: Option<AttachmentEnv>,
    /// `CNI_ARGS` as ordered pairs (attachment commands only; empty otherwise).
    pub args: Vec<(String, String)>,
    /// `CNI_PATH` split on ':' (empty segments dropped).
    pub path: Vec<PathBuf>,
}

impl PluginEnv {
    /// Parses the environment. Takes any iterator of (key, value), e.g.
    /// `std::env::vars_os()`, so that tests need not touch the process environment.
    /// Only `CNI_*` keys are looked at; the last occurrence of a key wins.
    pub fn from_vars<I, K, V>(vars: I) -> Result<PluginEnv, EnvError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let mut found: [Option<OsString>; 6] = Default::default();
        let names = [
            CNI_COMMAND,
            CNI_CONTAINERID,
            CNI_NETNS,
            CNI_IFNAME,
            CNI_ARGS,
            CNI_PATH,
        ];
        for (k, v) in vars {
            if let Some(i) = names.iter().position(|n| OsStr::new(n) == k.as_ref()) {
                found[i] = Some(v.as_ref().to_os_string());
            }
        }
        let [command, container_id, netns, ifname, args, path] = found;
        let utf8 = |var: &'static str, v: Option<OsString>| -> Result<Option<String>, EnvError> {
            v.map(|v| {
                v.into_string().map_err(|v| EnvError::Invalid {
                    var,
                    expected: "valid UTF-8".to_string(),
                    found: v.to_string_lossy().into_owned(),
                })
            })
            .transpose()
        };

        let command_text = utf8(CNI_COMMAND, command)?.ok_or_else(|| EnvError::Missing {
            var: CNI_COMMAND,
            expected: "one of ADD, DEL, CHECK, STATUS, GC, VERSION",
            command: "every command".to_string(),
        })?;
        let command: Command = command_text.parse().map_err(|_| EnvError::Invalid {
            var: CNI_COMMAND,
            expected: "one of ADD, DEL, CHECK, STATUS, GC, VERSION".to_string(),
            found: command_text.clone(),
        })?;

        let path_text = utf8(CNI_PATH, path)?;
        if command == Command::Gc && path_text.as_deref().is_none_or(|p| p.is_empty()) {
            return Err(EnvError::Missing {
                var: CNI_PATH,
                expected: "a ':'-separated list of plugin directories",
                command: command.to_string(),
            });
        }
        let path = path_text.as_deref().map(split_cni_path).unwrap_or_default();

        if !command.is_attachment_command() {
            return Ok(PluginEnv {
                command,
                attachment: None,
                args: Vec::new(),
                path,
            });
        }

        let required = |var: &'static str, expected: &'static str, v: Option<String>| {
            v.ok_or_else(|| EnvError::Missing {
                var,
                expected,
                command: command.to_string(),
            })
        };
        let container_id = required(
            CNI_CONTAINERID,
            CONTAINER_ID_EXPECTED,
            utf8(CNI_CONTAINERID, container_id)?,
        )?;
        validate_container_id(&container_id)?;
        let ifname = required(CNI_IFNAME, IFNAME_EXPECTED, utf8(CNI_IFNAME, ifname)?)?;
        validate_ifname(&ifname)?;
        let netns = match (command, netns) {
            (Command::Del, None) => None,
            (Command::Del, Some(v)) if v.is_empty() => None,
            (_, Some(v)) if !v.is_empty() => Some(PathBuf::from(v)),
            (_, Some(_)) => {
                return Err(EnvError::Invalid {
                    var: CNI_NETNS,
                    expected: format!("a network namespace path (required for {command})"),
                    found: String::new(),
                })
            }
            (_, None) => {
                return Err(EnvError::Missing {
                    var: CNI_NETNS,
                    expected: "a network namespace path such as /run/netns/NAME",
                    command: command.to_string(),
                })
            }
        };
        let args = match utf8(CNI_ARGS, args)? {
            Some(text) => parse_cni_args(&text)?,
            None => Vec::new(),
        };
        Ok(PluginEnv {
            command,
            attachment: Some(AttachmentEnv {
                container_id,
                netns,
                ifname,
            }),
            args,
            path,
        })
    }

    /// The value of a `CNI_ARGS` key, if given.
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits `CNI_PATH` on ':' and drops empty segments.
pub fn split_cni_path(text: &str) -> Vec<PathBuf> {
    text.split(':')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// Checks a container ID: `[A-Za-z0-9][A-Za-z0-9_.-]*`. This rules out '/', spaces and
/// a leading '.', so an ID is always safe as one file-name component.
pub fn validate_container_id(id: &str) -> Result<(), EnvError> {
    let mut bytes = id.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(EnvError::Invalid {
            var: CNI_CONTAINERID,
            expected: CONTAINER_ID_EXPECTED.to_string(),
            found: id.to_string(),
        })
    }
}

/// Checks an interface name against Linux's rules as the spec states them.
pub fn validate_ifname(name: &str) -> Result<(), EnvError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_IFNAME_LEN
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(EnvError::Invalid {
            var: CNI_IFNAME,
            expected: IFNAME_EXPECTED.to_string(),
            found: name.to_string(),
        })
    }
}

fn args_key_ok(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// Parses `CNI_ARGS`: `K=V;K=V`. Empty segments (a trailing ';') are ignored; every
/// other segment must be `KEY=VALUE` with an alphanumeric (or '_', '-') key.
pub fn parse_cni_args(text: &str) -> Result<Vec<(String, String)>, EnvError> {
    text.split(';')
        .filter(|seg| !seg.is_empty())
        .map(|seg| match seg.split_once('=') {
            Some((k, v)) if args_key_ok(k) => Ok((k.to_string(), v.to_string())),
            _ => Err(EnvError::Invalid {
                var: CNI_ARGS,
                expected: "KEY=VALUE pairs separated by ';' with alphanumeric keys".to_string(),
                found: text.to_string(),
            }),
        })
        .collect()
}

/// Renders `CNI_ARGS` from pairs, rejecting pairs that could not be parsed back.
pub fn render_cni_args(args: &[(String, String)]) -> Result<String, EnvError> {
    let mut out = Vec::with_capacity(args.len());
    for (k, v) in args {
        if !args_key_ok(k) || v.contains(';') {
            return Err(EnvError::Invalid {
                var: CNI_ARGS,
                expected: "alphanumeric keys and values without ';'".to_string(),
                found: format!("{k}={v}"),
            });
        }
        out.push(format!("{k}={v}"));
    }
    Ok(out.join(";"))
}

/// The runtime side: the exact `CNI_*` variables to give a plugin for `command`.
/// Attachment commands need `attachment`; the others get only `CNI_COMMAND` and
/// `CNI_PATH`. Every value is validated as the plugin side would.
pub fn plugin_env_vars(
    command: Command,
    attachment: Option<&AttachmentEnv>,
    args: &[(String, String)],
    cni_path: &[PathBuf],
) -> Result<Vec<(&'static str, OsString)>, EnvError> {
    let mut vars: Vec<(&'static str, OsString)> = vec![(CNI_COMMAND, command.as_str().into())];
    let mut path = OsString::new();
    for (i, dir) in cni_path.iter().enumerate() {
        if dir.as_os_str().to_string_lossy().contains(':') {
            return Err(EnvError::Invalid {
                var: CNI_PATH,
                expected: "directories without ':'".to_string(),
                found: dir.display().to_string(),
            });
        }
        if i > 0 {
            path.push(":");
        }
        path.push(dir.as_os_str());
    }
    vars.push((CNI_PATH, path));
    if !command.is_attachment_command() {
        return Ok(vars);
    }
    let att = attachment.ok_or_else(|| EnvError::Missing {
        var: CNI_CONTAINERID,
        expected: CONTAINER_ID_EXPECTED,
        command: command.to_string(),
    })?;
    validate_container_id(&att.container_id)?;
    validate_ifname(&att.ifname)?;
    let netns = match (&att.netns, command) {
        (Some(p), _) if !p.as_os_str().is_empty() => p.as_os_str().to_os_string(),
        (_, Command::Del) => OsString::new(),
        _ => {
            return Err(EnvError::Missing {
                var: CNI_NETNS,
                expected: "a network namespace path such as /run/netns/NAME",
                command: command.to_string(),
            })
        }
    };
    vars.push((CNI_CONTAINERID, att.container_id.clone().into()));
    vars.push((CNI_NETNS, netns));
    vars.push((CNI_IFNAME, att.ifname.clone().into()));
    vars.push((CNI_ARGS, render_cni_args(args)?.into()));
    Ok(vars)
}
