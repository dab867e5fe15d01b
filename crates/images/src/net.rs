//! Sockets: binding the way Go's `net.Listen(":port")` does (dual-stack `[::]`, falling
//! back to `0.0.0.0` where IPv6 is unavailable), and printing peers the way Go does.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};

use crate::error::ImageError;

/// Where to bind: one address, or every address of both families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindTo {
    /// `[::]` accepting IPv4 too, or `0.0.0.0` when the namespace has no IPv6.
    Any,
    /// Exactly this address.
    Ip(IpAddr),
}

/// Binds a TCP listener on `port` (0: any free port); call it inside a tokio runtime.
pub fn bind_tcp(to: BindTo, port: u16, what: &'static str) -> Result<TcpListener, ImageError> {
    bind(to, port, what, Type::STREAM, Protocol::TCP).and_then(|(socket, addr)| {
        let listener: std::net::TcpListener = socket.into();
        TcpListener::from_std(listener).map_err(|source| ImageError::Bind { what, addr, source })
    })
}

/// Binds a UDP socket on `port` (0: any free port); call it inside a tokio runtime.
pub fn bind_udp(to: BindTo, port: u16, what: &'static str) -> Result<UdpSocket, ImageError> {
    bind(to, port, what, Type::DGRAM, Protocol::UDP).and_then(|(socket, addr)| {
        let sock: std::net::UdpSocket = socket.into();
        UdpSocket::from_std(sock).map_err(|source| ImageError::Bind { what, addr, source })
    })
}

fn bind(
    to: BindTo,
    port: u16,
    what: &'static str,
    ty: Type,
    proto: Protocol,
) -> Result<(Socket, SocketAddr), ImageError> {
    match to {
        BindTo::Ip(ip) => bind_one(SocketAddr::new(ip, port), ty, proto, what),
        BindTo::Any => {
            let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
            match bind_one(v6, ty, proto, what) {
                Err(ImageError::Bind { source, .. }) if no_ipv6(&source) => {
                    tracing::debug!(%source, "no IPv6 here; binding 0.0.0.0 only");
                    let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
                    bind_one(v4, ty, proto, what)
                }
                other => other,
            }
        }
    }
}

fn no_ipv6(e: &io::Error) -> bool {
    // EAFNOSUPPORT (97) and EADDRNOTAVAIL (99) on Linux.
    matches!(e.raw_os_error(), Some(97 | 99)) || e.kind() == io::ErrorKind::AddrNotAvailable
}

fn bind_one(
    addr: SocketAddr,
    ty: Type,
    proto: Protocol,
    what: &'static str,
) -> Result<(Socket, SocketAddr), ImageError> {
    let err = |source| ImageError::Bind { what, addr, source };
    let socket = Socket::new(Domain::for_address(addr), ty, Some(proto)).map_err(err)?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket.set_only_v6(false).map_err(err)?;
    }
    if ty == Type::STREAM {
        socket.set_reuse_address(true).map_err(err)?;
    }
    socket.bind(&SockAddr::from(addr)).map_err(err)?;
    if ty == Type::STREAM {
        socket.listen(1024).map_err(err)?;
    }
    socket.set_nonblocking(true).map_err(err)?;
    let bound = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .unwrap_or(addr);
    Ok((socket, bound))
}

/// `ip:port` as Go prints a peer: IPv4-mapped IPv6 addresses as plain IPv4.
pub(crate) fn peer_string(addr: SocketAddr) -> String {
    SocketAddr::new(addr.ip().to_canonical(), addr.port()).to_string()
}

/// Go-like text of an I/O error: `connection refused`, not `Connection refused (os error 111)`.
pub(crate) fn go_error_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Answers every UDP datagram with `text` until `stop` (serve-hostname's and porter's
/// UDP servers); `what` names the server in logs.
pub(crate) async fn answer_udp(
    sock: UdpSocket,
    text: String,
    what: &'static str,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if let Ok(addr) = sock.local_addr() {
        tracing::info!(%addr, what, "serving UDP");
    }
    let mut buf = [0u8; 2048];
    loop {
        let peer = tokio::select! {
            () = crate::stopped(&mut stop) => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok((_, peer)) => peer,
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(error) => {
                    tracing::warn!(%error, what, "UDP receive failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        tracing::debug!(%peer, what, "UDP request");
        if let Err(error) = sock.send_to(text.as_bytes(), peer).await {
            tracing::debug!(%error, %peer, what, "UDP answer not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_print_like_go() {
        let mapped: SocketAddr = "[::ffff:10.0.0.7]:4000".parse().unwrap();
        assert_eq!(peer_string(mapped), "10.0.0.7:4000");
        let v6: SocketAddr = "[fd00::1]:80".parse().unwrap();
        assert_eq!(peer_string(v6), "[fd00::1]:80");
    }

    #[test]
    fn io_errors_read_like_go() {
        let e = io::Error::from_raw_os_error(111);
        assert_eq!(go_error_text(&e), "connection refused");
    }

    #[tokio::test]
    async fn any_accepts_ipv4_clients() {
        let listener = bind_tcp(BindTo::Any, 0, "test").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = tokio::net::TcpStream::connect(("127.0.0.1", port));
        let (accepted, connected) = tokio::join!(listener.accept(), client);
        let (_, peer) = accepted.unwrap();
        let local = connected.unwrap().local_addr().unwrap();
        assert_eq!(peer_string(peer), local.to_string());
    }
}
