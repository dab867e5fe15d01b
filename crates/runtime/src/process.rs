//! Container processes: started detached (own session, output to the log file) under a
//! tiny `sh` shim that records the exit code, so that they survive the runtime and a
//! restarted runtime can adopt them from their records.
//!
//! Process tree of one container: `setsid sh -c SHIM podnet-shim <exit file> ip netns
//! exec <podns> <argv...>`. `setsid` makes the shim a session and process-group leader
//! (pgid = its pid); `ip netns exec` execs the program in the pod's namespace; the shim
//! waits for it, ignoring SIGTERM itself (a trap, which the program does not inherit),
//! and writes the exit code. Stopping a container signals the whole process group.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};

use crate::error::RuntimeError;
use crate::launch::{Launch, DEFAULT_PATH};
use crate::names::ContainerFiles;
use crate::procfs;

/// The shim: `$1` is the exit file, the rest the command. `trap :` (not `trap ''`) so
/// that the command starts with default signal handling.
pub const SHIM: &str =
    r#"f="$1"; shift; trap : TERM INT HUP; "$@"; c=$?; echo "$c" > "$f"; exit "$c""#;

/// Exit code reported when a process vanished without an exit record (as the kubelet's
/// `ContainerStatusUnknown`).
pub const UNKNOWN_EXIT: i32 = 137;

/// What the runtime remembers of a started container, in `<container>.state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProcessRecord {
    /// The shim's pid, which is also the process group.
    pub pid: u32,
    /// Its start time (`/proc/<pid>/stat` field 22): guards against PID reuse.
    pub start_ticks: u64,
    /// RFC 3339, whole seconds.
    pub started_at: String,
    /// The container's restart count when this process started.
    pub restart_count: i32,
}

impl ProcessRecord {
    pub fn load(path: &Path) -> Option<ProcessRecord> {
        let bytes = std::fs::read(path).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable process record");
                None
            }
        }
    }

    /// Writes the record atomically.
    pub fn store(&self, path: &Path) -> Result<(), RuntimeError> {
        crate::writefile::atomic(path, &serde_json::to_vec(self).unwrap_or_default())
    }

    /// Whether the recorded process is still running.
    pub fn is_alive(&self) -> bool {
        procfs::is_alive(self.pid, self.start_ticks)
    }
}

/// Absolute paths of the helper programs, found once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    pub setsid: PathBuf,
    pub sh: PathBuf,
    pub ip: PathBuf,
}

impl Tools {
    pub fn find() -> Result<Tools, RuntimeError> {
        Ok(Tools {
            setsid: find_program("setsid")?,
            sh: find_program("sh")?,
            ip: find_program("ip")?,
        })
    }

    /// The prefix that runs a program in a named network namespace.
    pub fn netns_exec(&self, netns: &str) -> Vec<String> {
        vec![
            self.ip.display().to_string(),
            "netns".into(),
            "exec".into(),
            netns.into(),
        ]
    }
}

fn find_program(name: &str) -> Result<PathBuf, RuntimeError> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(DEFAULT_PATH.split(':'))
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| RuntimeError::MissingTool {
            tool: name.to_string(),
        })
}

/// A started container process.
#[derive(Debug)]
pub struct Spawned {
    pub child: Child,
    pub pid: u32,
    pub start_ticks: u64,
}

/// Starts `launch` under `prefix` (e.g. `ip netns exec <podns>`), detached, with output
/// appended to the container's log.
pub fn spawn(
    tools: &Tools,
    launch: &Launch,
    prefix: &[String],
    files: &ContainerFiles,
) -> Result<Spawned, RuntimeError> {
    let _ = std::fs::remove_file(&files.exit);
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| RuntimeError::Io { op, path, source }
    };
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&files.log)
        .map_err(io("opening container log", &files.log))?;
    let log2 = log
        .try_clone()
        .map_err(io("opening container log", &files.log))?;
    let mut cmd = Command::new(&tools.setsid);
    cmd.arg(&tools.sh)
        .arg("-c")
        .arg(SHIM)
        .arg("podnet-shim")
        .arg(&files.exit)
        .args(prefix)
        .args(&launch.argv)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .kill_on_drop(false);
    if let Some(dir) = &launch.working_dir {
        cmd.current_dir(dir);
    }
    let child = cmd.spawn().map_err(|source| RuntimeError::Spawn {
        argv: launch.argv.join(" "),
        source,
    })?;
    let pid = child.id().unwrap_or_default();
    let start_ticks = procfs::stat(pid).map(|s| s.start_ticks).unwrap_or_default();
    Ok(Spawned {
        child,
        pid,
        start_ticks,
    })
}

/// How a container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: i32,
    /// False when the process vanished without an exit record (code is [`UNKNOWN_EXIT`]).
    pub known: bool,
}

fn read_exit_file(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Waits for our own child to end.
pub async fn wait_child(mut child: Child, exit_file: &Path) -> ExitInfo {
    use std::os::unix::process::ExitStatusExt;
    let status = child.wait().await;
    if let Some(code) = read_exit_file(exit_file) {
        return ExitInfo { code, known: true };
    }
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => ExitInfo { code, known: true },
            (None, Some(sig)) => ExitInfo {
                code: 128 + sig,
                known: true,
            },
            _ => ExitInfo {
                code: UNKNOWN_EXIT,
                known: false,
            },
        },
        Err(_) => ExitInfo {
            code: UNKNOWN_EXIT,
            known: false,
        },
    }
}

/// Waits for an adopted process (not our child) to end, polling `/proc`.
pub async fn wait_adopted(record: &ProcessRecord, exit_file: &Path) -> ExitInfo {
    while record.is_alive() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    match read_exit_file(exit_file) {
        Some(code) => ExitInfo { code, known: true },
        None => ExitInfo {
            code: UNKNOWN_EXIT,
            known: false,
        },
    }
}

/// The exit recorded for a process that is gone, if the shim wrote one.
pub fn recorded_exit(exit_file: &Path) -> ExitInfo {
    match read_exit_file(exit_file) {
        Some(code) => ExitInfo { code, known: true },
        None => ExitInfo {
            code: UNKNOWN_EXIT,
            known: false,
        },
    }
}

/// Sends `sig` to the process group of a recorded process, if anything of it remains:
/// the leader itself (same start time, even as a zombie) or members that started after
/// it. True when a signal was sent.
pub fn signal_group(record: &ProcessRecord, sig: Signal) -> bool {
    let pgid = record.pid as i32;
    if !procfs::is_same(record.pid, record.start_ticks)
        && !procfs::group_has_members(pgid, record.start_ticks)
    {
        return false;
    }
    match killpg(Pid::from_raw(pgid), sig) {
        Ok(()) => true,
        Err(nix::errno::Errno::ESRCH) => false,
        Err(e) => {
            tracing::warn!(pgid, signal = %sig, error = %e, "signalling a container's process group failed");
            false
        }
    }
}

/// Whether anything of the recorded process group is still running.
pub fn group_running(record: &ProcessRecord) -> bool {
    record.is_alive() || procfs::group_has_members(record.pid as i32, record.start_ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.state");
        let r = ProcessRecord {
            pid: 42,
            start_ticks: 7,
            started_at: "2026-01-01T00:00:00Z".into(),
            restart_count: 3,
        };
        r.store(&path).unwrap();
        assert_eq!(ProcessRecord::load(&path), Some(r));
        assert_eq!(ProcessRecord::load(&dir.path().join("none")), None);
    }
}
