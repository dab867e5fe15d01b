//! netexec's UDP protocol: one datagram in, at most one out. The text is trimmed and
//! lower-cased first (as upstream does, so `echo Hello` answers `hello`):
//! `hostname` -> the hostname, `echo <msg>` -> `<msg>`, `clientip` -> the sender's
//! `ip:port`; anything else is logged and not answered.

use std::io;
use std::net::SocketAddr;

use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::net::peer_string;

/// The answer to one datagram, if any.
pub(crate) fn reply(datagram: &[u8], peer: SocketAddr, hostname: &str) -> Option<String> {
    let text = String::from_utf8_lossy(datagram).trim().to_lowercase();
    if text == "hostname" {
        Some(hostname.to_string())
    } else if let Some(msg) = text.strip_prefix("echo ") {
        Some(msg.to_string())
    } else if text == "clientip" {
        Some(peer_string(peer))
    } else {
        if !text.is_empty() {
            tracing::info!(%peer, command = %text, "netexec: unknown UDP command");
        }
        None
    }
}

/// Answers datagrams on `sock` until `stop` turns true.
pub(super) async fn serve(
    sock: UdpSocket,
    hostname: &str,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    if let Ok(addr) = sock.local_addr() {
        tracing::info!(%addr, "netexec: serving UDP");
    }
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, peer) = tokio::select! {
            () = crate::stopped(&mut stop) => return Ok(()),
            r = sock.recv_from(&mut buf) => match r {
                Ok(r) => r,
                // An ICMP error from an earlier answer; nothing is wrong with the socket.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            },
        };
        if let Some(answer) = reply(&buf[..n], peer, hostname) {
            if let Err(error) = sock.send_to(answer.as_bytes(), peer).await {
                tracing::warn!(%error, %peer, "netexec: UDP answer not sent");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        let peer: SocketAddr = "[::ffff:10.1.2.3]:5000".parse().unwrap();
        assert_eq!(
            reply(b"hostname\n", peer, "pod-a").as_deref(),
            Some("pod-a")
        );
        assert_eq!(
            reply(b" HostName ", peer, "pod-a").as_deref(),
            Some("pod-a")
        );
        assert_eq!(
            reply(b"echo Hello World", peer, "x").as_deref(),
            Some("hello world")
        );
        assert_eq!(
            reply(b"clientip", peer, "x").as_deref(),
            Some("10.1.2.3:5000")
        );
        assert_eq!(reply(b"what", peer, "x"), None);
        assert_eq!(reply(b"", peer, "x"), None);
    }
}
