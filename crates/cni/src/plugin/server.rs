//! The plugin server: runs the plugin ([`super::run`]) in a long-lived process for the
//! `podnet` CNI shim (`crates/cni/shim/main.rs`), so that a pod event costs one small
//! static executable and a unix-socket round trip instead of starting the whole plugin
//! (the C library's start-up, the async runtime, opening the store). The node agent
//! serves it (`podnet agent --cni-server`), or `podnet-cni serve` alone.
//!
//! The socket is the abstract unix socket `@podnet-cni` of the server's network
//! namespace: a runtime runs CNI plugins in the node's network namespace, so the shim
//! finds the server of its own node (in the lab, each node namespace has its own)
//! without any path in the configuration. Abstract sockets have no file permissions:
//! a connection is served only when the peer's uid is root or the server's own.
//!
//! Protocol, one request per connection:
//! - request: `PNC1`, a u32 (little endian) byte length of the environment, the
//!   `CNI_*` variables as `KEY=VALUE\0` entries, then the network configuration (the
//!   plugin's stdin) until the client shuts its side down;
//! - answer: the exit code as an i32 (little endian), then the plugin's stdout until
//!   the server closes.

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::protocol::{CniError, ErrorCode};

/// The abstract socket name (`@podnet-cni`), the same in every network namespace.
pub const SOCKET_NAME: &[u8] = b"podnet-cni";
const MAGIC: &[u8; 4] = b"PNC1";
/// The largest environment accepted (the shim sends at most 64 KiB).
const MAX_ENV: usize = 1 << 16;
/// The largest configuration accepted (a chained `prevResult` is small; 16 MiB is
/// far above anything a runtime sends).
const MAX_STDIN: u64 = 16 << 20;
/// Requests served at once; more are answered "try again later" (11).
const MAX_IN_FLIGHT: usize = 64;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[error("podnet CNI server: binding the abstract unix socket @podnet-cni in this network namespace: {0} (is another server running here?)")]
pub struct BindError(#[source] std::io::Error);

/// Binds `@podnet-cni` in the calling thread's network namespace.
pub fn bind() -> Result<UnixListener, BindError> {
    let addr = SocketAddr::from_abstract_name(SOCKET_NAME).map_err(BindError)?;
    UnixListener::bind_addr(&addr).map_err(BindError)
}

/// Serves connections until accepting fails for good; one thread per request.
/// Blocking: run it on a thread of its own (the plugin builds its own async runtime
/// per request, which cannot happen on a thread that runs one already).
pub fn serve(listener: UnixListener) -> std::io::Error {
    // DEL's link deletion waits for the kernel on a thread, not a forked child.
    podnet_linux::netlink::set_long_lived(true);
    // The embedded store stays open between requests (no open and schema read each).
    super::context::keep_stores_open();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let own_uid = nix::unistd::geteuid().as_raw();
    let mut errors = 0u32;
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => {
                errors = 0;
                s
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Out of descriptors and the like: back off, give up after a while.
                errors += 1;
                if errors > 100 {
                    return e;
                }
                tracing::warn!(error = %e, "CNI server: accept failed");
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
        };
        match peer_uid(&stream) {
            Some(uid) if uid == 0 || uid == own_uid => {}
            other => {
                tracing::warn!(peer_uid = ?other, "CNI server: refused a connection from another user");
                continue;
            }
        }
        if in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            in_flight.fetch_sub(1, Ordering::AcqRel);
            let _ = answer(&stream, &busy());
            continue;
        }
        let count = in_flight.clone();
        let spawned = std::thread::Builder::new()
            .name("podnet-cni-req".into())
            .spawn(move || {
                handle(stream);
                count.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            in_flight.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(error = %e, "CNI server: starting a request thread failed");
        }
    }
}

fn peer_uid(stream: &UnixStream) -> Option<u32> {
    nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .ok()
        .map(|c| c.uid())
}

/// "Try again later" (11), for a request that cannot be served now.
fn busy() -> super::Output {
    error_output(
        ErrorCode::TryAgainLater,
        "the podnet CNI server is at its limit of requests in flight",
    )
}

fn error_output(code: ErrorCode, msg: &str) -> super::Output {
    super::Output {
        stdout: CniError::new(crate::protocol::CURRENT_VERSION, code, msg).to_json(),
        exit_code: 1,
    }
}

/// How long a client may take to send its request or read the answer (a shim sends at
/// once; this only bounds a stuck or idle client's hold on a request thread).
const CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn handle(mut stream: UnixStream) {
    let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
    let _ = stream.set_write_timeout(Some(CLIENT_TIMEOUT));
    let out = match read_request(&mut stream) {
        Ok((vars, stdin)) => super::run(vars, Ok(stdin)),
        Err(msg) => {
            tracing::warn!(error = %msg, "CNI server: bad request");
            error_output(ErrorCode::DecodeFailure, &msg)
        }
    };
    if let Err(e) = answer(&stream, &out) {
        tracing::warn!(error = %e, "CNI server: answering failed (the shim is gone)");
    }
}

/// The `CNI_*` variables and the configuration of one request.
type Request = (Vec<(String, String)>, Vec<u8>);

fn read_request(stream: &mut UnixStream) -> Result<Request, String> {
    let mut head = [0u8; 8];
    stream
        .read_exact(&mut head)
        .map_err(|e| format!("reading the request header: {e}"))?;
    if &head[..4] != MAGIC {
        return Err(format!(
            "expected the request to start with {MAGIC:?}, found {:?}",
            &head[..4]
        ));
    }
    let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if len > MAX_ENV {
        return Err(format!(
            "environment of {len} bytes, expected at most {MAX_ENV}"
        ));
    }
    let mut env = vec![0u8; len];
    stream
        .read_exact(&mut env)
        .map_err(|e| format!("reading the environment: {e}"))?;
    let vars = parse_env(&env)?;
    let mut stdin = Vec::new();
    stream
        .take(MAX_STDIN + 1)
        .read_to_end(&mut stdin)
        .map_err(|e| format!("reading the configuration: {e}"))?;
    if stdin.len() as u64 > MAX_STDIN {
        return Err(format!("configuration larger than {MAX_STDIN} bytes"));
    }
    Ok((vars, stdin))
}

/// `KEY=VALUE\0` entries; only `CNI_*` keys are kept (the plugin reads nothing else).
pub(crate) fn parse_env(env: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for entry in env.split(|&b| b == 0).filter(|e| !e.is_empty()) {
        let text = std::str::from_utf8(entry)
            .map_err(|_| "an environment entry is not UTF-8".to_string())?;
        let (k, v) = text
            .split_once('=')
            .ok_or_else(|| format!("environment entry {text:?} has no '='"))?;
        if k.starts_with("CNI_") {
            vars.push((k.to_string(), v.to_string()));
        }
    }
    Ok(vars)
}

fn answer(mut stream: &UnixStream, out: &super::Output) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(out.stdout.len() + 5);
    bytes.extend_from_slice(&out.exit_code.to_le_bytes());
    if !out.stdout.is_empty() {
        bytes.extend_from_slice(out.stdout.as_bytes());
        bytes.push(b'\n');
    }
    stream.write_all(&bytes)?;
    // The end of the answer is the end of the stream. Shut it down rather than wait for
    // the last close: a child forked by the request (DEL's link deletion) holds a copy
    // of this descriptor until the kernel has torn the link down, ~20 ms later.
    stream.shutdown(std::net::Shutdown::Both)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_keeps_cni_variables_and_refuses_garbage() {
        let vars = parse_env(b"CNI_COMMAND=ADD\0HOME=/root\0CNI_ARGS=IP=10.0.0.5;X=1\0\0").unwrap();
        assert_eq!(
            vars,
            [
                ("CNI_COMMAND".to_string(), "ADD".to_string()),
                ("CNI_ARGS".to_string(), "IP=10.0.0.5;X=1".to_string())
            ]
        );
        assert!(parse_env(b"CNI_COMMAND\0").unwrap_err().contains("no '='"));
        assert!(parse_env(b"CNI_X=\xff\0").is_err());
    }
}
