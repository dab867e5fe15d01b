//! Loopback-only clients for the built-ins' tests, every wait bounded.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use podnet_images::{bind_tcp, bind_udp, BindTo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

pub const LOOPBACK: BindTo = BindTo::Ip(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST));
/// The bound on every single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn tcp() -> TcpListener {
    bind_tcp(LOOPBACK, 0, "test").expect("bind a loopback tcp port")
}

pub fn udp() -> UdpSocket {
    bind_udp(LOOPBACK, 0, "test").expect("bind a loopback udp port")
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_tcp_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub fn closed_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The client's own address on this connection.
    pub local: SocketAddr,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` on a fresh connection (`Connection: close`), with extra header lines.
pub async fn get_with(addr: SocketAddr, path: &str, extra: &[(&str, &str)]) -> HttpResponse {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let local = stream.local_addr().unwrap();
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in extra {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        parse_response(&raw, local)
    };
    tokio::time::timeout(WAIT, exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {path} on {addr} took longer than {WAIT:?}"))
}

pub async fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    get_with(addr, path, &[]).await
}

fn parse_response(raw: &[u8], local: SocketAddr) -> HttpResponse {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("a complete http response");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: body.to_string(),
        local,
    }
}

/// Sends one datagram from a fresh loopback socket; returns the answer and our address.
pub async fn udp_ask(to: SocketAddr, payload: &str) -> (String, SocketAddr) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap();
    sock.send_to(payload.as_bytes(), to).await.unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("no UDP answer to {payload:?} from {to} within {WAIT:?}"))
        .unwrap();
    assert_eq!(from, to, "the answer comes from the server's address");
    (String::from_utf8_lossy(&buf[..n]).into_owned(), local)
}
