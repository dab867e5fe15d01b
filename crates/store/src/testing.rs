//! A real etcd for tests and benchmarks: one member on loopback ports, in a temp dir.
//! (Test support: failures panic with what to install or what etcd printed.)
//!
//! Dropping the server kills etcd and removes its directory. A watchdog shell reads
//! the server's stdin pipe: should the test process die (or exit with the shared server
//! still in a static), the pipe closes and the watchdog kills etcd and cleans up.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct EtcdServer {
    bin: PathBuf,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    etcd: Option<Child>,
    watchdog: Option<Child>,
}

/// The etcd binary, or a failure saying what to install.
fn etcd_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let chosen: Vec<PathBuf> = match std::env::var_os("PODNET_ETCD_BIN") {
        Some(p) => vec![PathBuf::from(p)],
        None => std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
            .map(|d| d.join("etcd"))
            .collect(),
    };
    chosen.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!(
            "the etcd backend tests need an etcd binary, found none (PODNET_ETCD_BIN, \
                 PATH, /usr/bin, /usr/local/bin): install etcd-server \
                 (apt-get install etcd-server) or set PODNET_ETCD_BIN"
        )
    })
}

/// Two free loopback ports.
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let b = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

impl EtcdServer {
    /// Starts etcd and waits until it has a leader.
    pub fn start() -> EtcdServer {
        let bin = etcd_binary();
        let dir = tempfile::Builder::new()
            .prefix("podnet-etcd-")
            .tempdir()
            .expect("a temp dir for etcd")
            .keep();
        let (client_port, peer_port) = free_ports();
        let mut server = EtcdServer {
            bin,
            dir,
            client_port,
            peer_port,
            etcd: None,
            watchdog: None,
        };
        server.spawn();
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    pub fn url(&self) -> String {
        format!("etcd://127.0.0.1:{}", self.client_port)
    }

    fn log(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    fn spawn(&mut self) {
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .expect("etcd log file");
        let etcd = Command::new(&self.bin)
            .arg("--name=t")
            .arg(format!("--data-dir={}", self.dir.join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=t={peer}"))
            .args(["--heartbeat-interval=50", "--election-timeout=500"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.bin.display()));
        let watchdog = Command::new("sh")
            .args([
                "-c",
                r#"read _; kill -9 "$1" 2>/dev/null; rm -rf "$2""#,
                "podnet-etcd-watchdog",
            ])
            .arg(etcd.id().to_string())
            .arg(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the etcd watchdog (sh)");
        self.etcd = Some(etcd);
        self.watchdog = Some(watchdog);
        self.wait_ready();
    }

    fn healthy(&self) -> bool {
        let addr = ([127, 0, 0, 1], self.client_port).into();
        let Ok(mut conn) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let req = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if conn.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut resp = String::new();
        let _ = conn.read_to_string(&mut resp);
        resp.contains(r#""health":"true""#)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.etcd.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "etcd exited with {status} while starting:\n{}",
                    tail(&self.log())
                );
            }
            if self.healthy() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "expected etcd to become healthy within 30 s, it did not:\n{}",
                tail(&self.log())
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills etcd (SIGKILL) and waits for it to be gone; the data dir stays.
    pub fn kill(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if let Some(mut e) = self.etcd.take() {
            let _ = e.kill();
            let _ = e.wait();
        }
    }

    /// Starts etcd again on the same data dir and ports.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
