//! `/shell?cmd=...` (or `?shellCommand=...`): runs `sh -c <cmd>` and answers
//! `{"output": <stdout and stderr, interleaved>, "error": <how it failed>}`, each field
//! present only when non-empty, with status 200 as upstream's handler does.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;

use hyper::StatusCode;
use tokio::io::AsyncReadExt;

use crate::http::{text, Query, Resp};
use crate::net::go_error_text;

pub(super) async fn handle(shell: &Path, q: &Query) -> Resp {
    let cmd = match q.get("shellCommand") {
        "" => q.get("cmd"),
        c => c,
    };
    tracing::debug!(cmd, "netexec: /shell");
    let (output, error) = run_shell(shell, cmd).await;
    let mut out = BTreeMap::new();
    if !output.is_empty() {
        out.insert("output", String::from_utf8_lossy(&output).into_owned());
    }
    if let Some(e) = error {
        out.insert("error", e);
    }
    match serde_json::to_string(&out) {
        Ok(body) => text(StatusCode::OK, body),
        Err(e) => text(
            StatusCode::EXPECTATION_FAILED,
            format!("response could not be serialized. {e}\n"),
        ),
    }
}

/// Runs `<shell> -c <cmd>` and returns its combined stdout and stderr, in the order it
/// wrote them, and Go's text of how it failed (`exit status 1`, `signal: killed`), if it did.
pub async fn run_shell(shell: &Path, cmd: &str) -> (Vec<u8>, Option<String>) {
    let spawn_failed = |e: std::io::Error| {
        let msg = format!("fork/exec {}: {}", shell.display(), go_error_text(&e));
        (Vec::new(), Some(msg))
    };
    // One socket for both streams keeps their interleaving, as Go's CombinedOutput does.
    let (ours, theirs) = match StdUnixStream::pair() {
        Ok(p) => p,
        Err(e) => return spawn_failed(e),
    };
    let theirs_too = match theirs.try_clone() {
        Ok(t) => t,
        Err(e) => return spawn_failed(e),
    };
    let child = {
        // Dropping the command right after spawning closes our copies of the child's end.
        let mut command = tokio::process::Command::new(shell);
        command
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::from(OwnedFd::from(theirs)))
            .stderr(Stdio::from(OwnedFd::from(theirs_too)))
            .kill_on_drop(true);
        command.spawn()
    };
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return spawn_failed(e),
    };
    let mut output = Vec::new();
    let read = async {
        ours.set_nonblocking(true)?;
        let mut stream = tokio::net::UnixStream::from_std(ours)?;
        stream.read_to_end(&mut output).await
    };
    let (read, status) = tokio::join!(read, child.wait());
    if let Err(e) = read {
        tracing::warn!(error = %e, "netexec: reading the shell's output failed");
    }
    let error = match status {
        Err(e) => Some(go_error_text(&e)),
        Ok(s) if s.success() => None,
        Ok(s) => Some(match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(sig)) => format!("signal: {}", signal_name(sig)),
            (None, None) => s.to_string(),
        }),
    };
    (output, error)
}

fn signal_name(sig: i32) -> String {
    match sig {
        1 => "hangup".into(),
        2 => "interrupt".into(),
        6 => "aborted".into(),
        9 => "killed".into(),
        13 => "broken pipe".into(),
        15 => "terminated".into(),
        n => format!("signal {n}"),
    }
}
