//! Helpers of the nftables kernel tests: the `nft` tool as a probe inside a
//! test namespace, and small TCP servers and clients in namespaces.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use podnet_linux::NetNs;

use crate::common::require_tool;

/// `ip netns exec NS nft ARGS...`; returns (success, stdout + stderr).
pub fn nft_cmd(netns: &str, args: &[&str]) -> (bool, String) {
    require_tool("nft", "nftables");
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "nft"])
        .args(args)
        .output()
        .expect("running ip netns exec ... nft");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// `nft ARGS` that must succeed; returns stdout.
pub fn nft_ok(netns: &str, args: &[&str]) -> String {
    let (ok, text) = nft_cmd(netns, args);
    assert!(ok, "nft {args:?} in {netns} failed: {text}");
    text
}

/// Lines of `nft list ...` output, trimmed, without blank lines.
pub fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// A TCP server in a namespace: accepts connections, records the peer
/// address and answers with its own local port (2 bytes, big-endian).
pub struct Server {
    stop: Arc<AtomicBool>,
    pub peers: Arc<Mutex<Vec<SocketAddr>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(netns: &str, addr: SocketAddr) -> Server {
        let ns = NetNs::open(netns).expect("opening the server's netns");
        let stop = Arc::new(AtomicBool::new(false));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let (stop, peers) = (stop.clone(), peers.clone());
            std::thread::spawn(move || {
                ns.run(move || {
                    let listener = TcpListener::bind(addr).expect("binding the test server");
                    listener
                        .set_nonblocking(true)
                        .expect("nonblocking listener");
                    ready_tx.send(()).expect("announcing the server");
                    // Bounded: a test never runs for more than a minute.
                    let deadline = std::time::Instant::now() + Duration::from_secs(60);
                    while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                        match listener.accept() {
                            Ok((mut stream, peer)) => {
                                peers.lock().unwrap().push(peer);
                                let _ = stream.write_all(&addr.port().to_be_bytes());
                            }
                            Err(_) => std::thread::sleep(Duration::from_millis(2)),
                        }
                    }
                })
                .expect("entering the server's netns");
            })
        };
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("server did not start");
        Server {
            stop,
            peers,
            thread: Some(thread),
        }
    }

    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connect from inside `netns` to `addr`; Ok(the server's port) or the
/// connect error.
pub fn connect(netns: &NetNs, addr: SocketAddr) -> std::io::Result<u16> {
    netns
        .run(|| {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            let mut port = [0u8; 2];
            s.read_exact(&mut port)?;
            Ok(u16::from_be_bytes(port))
        })
        .expect("entering the client's netns")
}
