//! main_from_args() as a process (the `image` example, built by `cargo test`): exit
//! codes, the connect report line, HOSTNAME, and SIGTERM ending the servers with 0.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::closed_tcp_port;

fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("examples").join("image"))
        .unwrap();
    assert!(
        path.exists(),
        "{} is missing: run `cargo test -p podnet-images` (it builds the examples)",
        path.display()
    );
    path
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(example());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn the image example")
}

/// Waits for the child, killing it if it outlives `limit`.
fn finish(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("the kill command is needed to send SIGTERM");
    assert!(status.success());
}

#[test]
fn connect_refused_prints_the_category_and_exits_1() {
    let port = closed_tcp_port();
    let target = format!("127.0.0.1:{port}");
    let out = finish(
        spawn(&["agnhost", "connect", &target, "--timeout=2s"], &[]),
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "REFUSED\n");
}

#[test]
fn bad_command_lines_exit_1_with_an_error() {
    let out = finish(
        spawn(&["agnhost", "liveness"], &[]),
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: agnhost subcommand \"liveness\""),
        "{err}"
    );
}

#[test]
fn pause_exits_0_on_sigterm() {
    let child = spawn(&["pause"], &[]);
    std::thread::sleep(Duration::from_millis(300));
    sigterm(&child);
    let out = finish(child, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn netexec_serves_hostname_from_env_and_exits_0_on_sigterm() {
    let port = closed_tcp_port().to_string();
    let child = spawn(
        &["agnhost", "netexec", "--http-port", &port, "--udp-port=-1"],
        &[("HOSTNAME", "proc-pod")],
    );
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = runtime.block_on(async {
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return common::get(addr, "/hostname").await.body;
            }
            assert!(
                Instant::now() < deadline,
                "netexec did not listen on {addr} in time"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    assert_eq!(body, "proc-pod");
    sigterm(&child);
    let out = finish(child, Duration::from_secs(10));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
