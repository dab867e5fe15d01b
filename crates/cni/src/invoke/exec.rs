//! Executing one plugin command: the effects edge of the runtime side.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::error::InvokeError;
use crate::protocol::config::validate_plugin_type;
use crate::protocol::env::plugin_env_vars;
use crate::protocol::{AttachmentEnv, CniError, Command};

/// `PATH` given to plugins unless the caller sets another.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long a plugin may run before it is killed, unless the caller sets another limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How much of a plugin's output is quoted in errors.
const QUOTE_LIMIT: usize = 4096;

/// Everything about one plugin execution besides the plugin, command and stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeEnv {
    /// The attachment (ADD, DEL, CHECK); `None` for STATUS, GC and VERSION.
    pub attachment: Option<AttachmentEnv>,
    /// `CNI_ARGS` pairs (attachment commands only).
    pub args: Vec<(String, String)>,
    /// A command the plugin is run under, e.g. `["ip", "netns", "exec", "node1"]` or
    /// `["nsenter", "--net=/run/netns/node1"]`; the plugin path is appended. Empty: run
    /// the plugin directly.
    pub exec_prefix: Vec<String>,
    /// Kill the plugin after this long.
    pub timeout: Duration,
    /// `PATH` for the plugin (and for finding the prefix's program).
    pub path: OsString,
}

impl Default for RuntimeEnv {
    fn default() -> Self {
        RuntimeEnv {
            attachment: None,
            args: Vec::new(),
            exec_prefix: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            path: DEFAULT_PATH.into(),
        }
    }
}

impl RuntimeEnv {
    /// The environment for one attachment.
    pub fn for_attachment(
        container_id: impl Into<String>,
        netns: Option<PathBuf>,
        ifname: impl Into<String>,
    ) -> Self {
        RuntimeEnv {
            attachment: Some(AttachmentEnv {
                container_id: container_id.into(),
                netns,
                ifname: ifname.into(),
            }),
            ..RuntimeEnv::default()
        }
    }
}

/// Finds the executable for `plugin_type` in the first directory that has one.
pub fn find_plugin(plugin_dirs: &[PathBuf], plugin_type: &str) -> Result<PathBuf, InvokeError> {
    validate_plugin_type("type", plugin_type)?;
    plugin_dirs
        .iter()
        .map(|dir| dir.join(plugin_type))
        .find(|path| is_executable(path))
        .ok_or_else(|| InvokeError::NotFound {
            plugin: plugin_type.to_string(),
            dirs: plugin_dirs.to_vec(),
        })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Runs `plugin_type` with `cmd`: finds it in `plugin_dirs` (also passed as `CNI_PATH`),
/// gives it only the `CNI_*` variables and `PATH`, writes `stdin_config` to its stdin and
/// reads its stdout.
///
/// Exit status 0: `Ok(Some(json))`, or `Ok(None)` when stdout is empty, which only DEL,
/// CHECK, STATUS and GC may do. Non-zero: [`InvokeError::Plugin`] with the error object
/// from stdout (or stderr), else [`InvokeError::Failed`]. Over `env.timeout`: the
/// process is killed and [`InvokeError::Timeout`] returned.
pub fn exec_plugin(
    plugin_dirs: &[PathBuf],
    plugin_type: &str,
    cmd: Command,
    env: &RuntimeEnv,
    stdin_config: &Value,
) -> Result<Option<Value>, InvokeError> {
    let plugin_path = find_plugin(plugin_dirs, plugin_type)?;
    let vars = plugin_env_vars(cmd, env.attachment.as_ref(), &env.args, plugin_dirs)?;
    let mut process = match env.exec_prefix.split_first() {
        Some((program, rest)) => {
            let mut p = Process::new(program);
            p.args(rest).arg(&plugin_path);
            p
        }
        None => Process::new(&plugin_path),
    };
    process
        .env_clear()
        .env("PATH", &env.path)
        .envs(vars)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let input = serde_json::to_vec(stdin_config).map_err(|source| InvokeError::Decode {
        plugin: plugin_type.to_string(),
        command: cmd,
        stdout: String::new(),
        source,
    })?;
    tracing::debug!(plugin = plugin_type, command = %cmd, path = %plugin_path.display(),
        prefix = ?env.exec_prefix, "executing cni plugin");
    let spawned_path = env
        .exec_prefix
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| plugin_path.clone());
    let mut child = spawn_retrying(&mut process).map_err(|source| InvokeError::Spawn {
        path: spawned_path,
        source,
    })?;
    let io_err = |source| InvokeError::Io {
        plugin: plugin_type.to_string(),
        command: cmd,
        source,
    };
    let stdin = child.stdin.take();
    let writer = thread::spawn(move || -> std::io::Result<()> {
        if let Some(mut stdin) = stdin {
            match stdin.write_all(&input) {
                // A plugin may exit without reading its stdin; that is its business.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other?,
            }
        }
        Ok(())
    });
    let stdout = spawn_reader(child.stdout.take());
    let stderr = spawn_reader(child.stderr.take());

    let status = match wait_with_timeout(&mut child, env.timeout).map_err(io_err)? {
        Some(status) => status,
        None => {
            // Best effort: the child may have exited between the last poll and the kill.
            let _ = child.kill();
            let _ = child.wait();
            tracing::warn!(plugin = plugin_type, command = %cmd, timeout = ?env.timeout,
                "cni plugin timed out and was killed");
            return Err(InvokeError::Timeout {
                plugin: plugin_type.to_string(),
                command: cmd,
                timeout: env.timeout,
            });
        }
    };
    writer.join().unwrap_or(Ok(())).map_err(io_err)?;
    let stdout = stdout.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
    if !stderr.trim().is_empty() {
        tracing::debug!(plugin = plugin_type, command = %cmd, stderr = %stderr.trim(),
            "cni plugin stderr");
    }
    interpret_output(plugin_type, cmd, status, &stdout, stderr)
}

/// Spawns, retrying a few times on ETXTBSY ("text file busy"): a binary that was just
/// written (an upgrade, or a test) can be briefly held open for writing by a process that
/// another thread forked and that has not yet exec'd.
fn spawn_retrying(process: &mut Process) -> std::io::Result<Child> {
    const ETXTBSY: i32 = 26;
    let mut attempt = 0;
    loop {
        match process.spawn() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && attempt < 5 => {
                attempt += 1;
                thread::sleep(Duration::from_millis(20 * attempt));
            }
            other => return other,
        }
    }
}

fn spawn_reader<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error ends the output; what was read so far is kept.
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// Polls the child until it exits (`Some`) or `timeout` passes (`None`).
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// Turns a finished plugin's exit status and output into the outcome. Pure.
pub fn interpret_output(
    plugin: &str,
    cmd: Command,
    status: ExitStatus,
    stdout: &[u8],
    stderr: String,
) -> Result<Option<Value>, InvokeError> {
    let trimmed = stdout.trim_ascii();
    if !status.success() {
        let from = |bytes: &[u8]| serde_json::from_slice::<CniError>(bytes.trim_ascii()).ok();
        if let Some(error) = from(trimmed).or_else(|| from(stderr.as_bytes())) {
            return Err(InvokeError::Plugin {
                plugin: plugin.to_string(),
                command: cmd,
                error,
                stderr,
            });
        }
        return Err(InvokeError::Failed {
            plugin: plugin.to_string(),
            command: cmd,
            status: status.to_string(),
            stdout: quote(stdout),
            stderr: quote(stderr.as_bytes()),
        });
    }
    if trimmed.is_empty() {
        return if cmd.requires_output() {
            Err(InvokeError::MissingOutput {
                plugin: plugin.to_string(),
                command: cmd,
            })
        } else {
            Ok(None)
        };
    }
    serde_json::from_slice(trimmed)
        .map(Some)
        .map_err(|source| InvokeError::Decode {
            plugin: plugin.to_string(),
            command: cmd,
            stdout: quote(stdout),
            source,
        })
}
