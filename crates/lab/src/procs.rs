//! The lab's long-running processes (controller, agents, etcd members): started inside
//! a host's network namespace with `nsenter --net` (so they share the machine's mount
//! namespace, and the pod namespaces they create are visible to `podnet exec`), their
//! output kept in the lab's log directory, their PIDs in its pid directory so that
//! `lab down` kills exactly what the lab started, also after a crash of `lab up`.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::LabError;

/// A process of the lab, by role name (`controller`, `agent-node-1`, `etcd-1`).
pub struct Spawned {
    pub name: String,
    pub pid: u32,
    pub log: PathBuf,
}

pub fn log_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("logs")
}

pub fn pid_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("pids")
}

/// Starts `argv` inside network namespace `netns`, detached (its own session), with
/// stdout and stderr appended to `<state>/logs/<name>.log`.
pub fn spawn_in(
    state_dir: &Path,
    name: &str,
    netns: &str,
    argv: &[String],
    env: &[(String, String)],
) -> Result<Spawned, LabError> {
    let logs = log_dir(state_dir);
    let pids = pid_dir(state_dir);
    for d in [&logs, &pids] {
        std::fs::create_dir_all(d).map_err(LabError::io("creating", d))?;
    }
    let log = logs.join(format!("{name}.log"));
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(LabError::io("opening", &log))?;
    let err = out.try_clone().map_err(LabError::io("opening", &log))?;
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/run/netns/{netns}"))
        .arg("--")
        .args(argv)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(state_dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn().map_err(|source| LabError::Spawn {
        what: format!("{name} ({})", argv.join(" ")),
        source,
    })?;
    let pid = child.id();
    let pid_file = pids.join(format!("{name}.pid"));
    std::fs::write(&pid_file, format!("{pid}\n")).map_err(LabError::io("writing", &pid_file))?;
    // The child is reaped by whoever outlives it; `lab up` returns while it runs.
    std::mem::forget(child);
    Ok(Spawned {
        name: name.into(),
        pid,
        log,
    })
}

/// PIDs recorded in the pid directory, with their names.
pub fn recorded(state_dir: &Path) -> Vec<(String, u32)> {
    let Ok(entries) = std::fs::read_dir(pid_dir(state_dir)) else {
        return Vec::new();
    };
    let mut out: Vec<(String, u32)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e
                .file_name()
                .to_string_lossy()
                .strip_suffix(".pid")?
                .to_string();
            let pid = std::fs::read_to_string(e.path())
                .ok()?
                .trim()
                .parse()
                .ok()?;
            Some((name, pid))
        })
        .collect();
    out.sort();
    out
}

/// Whether a process is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}
