//! `agnhost connect`: one TCP or UDP connection attempt. Success is exit 0; a failure
//! prints one line starting with a fixed category that tests match on (`TIMEOUT`,
//! `REFUSED`, `DNS`, `OTHER`, `UNKNOWN`), as upstream's NetworkPolicy probes expect.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{lookup_host, TcpStream, UdpSocket};

use crate::cmd::{ConnectArgs, ConnectProtocol};
use crate::net::go_error_text;

/// The category of a failed attempt, printed first on the report line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Not a network error (bad arguments, unsupported protocol).
    Unknown,
    Timeout,
    Dns,
    Refused,
    Other,
}

/// A failed connection attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectFailure {
    pub kind: FailureKind,
    pub detail: Option<String>,
}

impl ConnectFailure {
    fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        ConnectFailure {
            kind,
            detail: Some(detail.into()),
        }
    }

    /// The line upstream prints on stderr: `TIMEOUT`, `REFUSED`, `DNS: <error>`, ...
    pub fn report_line(&self) -> String {
        let kind = match self.kind {
            FailureKind::Unknown => "UNKNOWN",
            FailureKind::Timeout => "TIMEOUT",
            FailureKind::Dns => "DNS",
            FailureKind::Refused => "REFUSED",
            FailureKind::Other => "OTHER",
        };
        match &self.detail {
            Some(d) => format!("{kind}: {d}"),
            None => kind.to_string(),
        }
    }
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection attempt failed: {}", self.report_line())
    }
}

impl std::error::Error for ConnectFailure {}

/// Makes one connection attempt as `args` describe.
pub async fn connect(args: &ConnectArgs) -> Result<(), ConnectFailure> {
    match args.protocol {
        ConnectProtocol::Tcp => connect_tcp(&args.target, args.timeout).await,
        ConnectProtocol::Udp => connect_udp(&args.target, args.timeout, &args.udp_data).await,
        ConnectProtocol::Sctp => Err(ConnectFailure::new(
            FailureKind::Unknown,
            "sctp is not supported by podnet's built-in agnhost",
        )),
    }
}

/// Splits `host:port` as Go's `net.SplitHostPort` does (brackets around IPv6 hosts).
fn split_host_port(target: &str) -> Result<(&str, u16), String> {
    let (host, port) = match target.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("address {target}: missing ']' in address"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| format!("address {target}: missing port in address"))?;
            (host, port)
        }
        None => {
            let (host, port) = target
                .rsplit_once(':')
                .ok_or_else(|| format!("address {target}: missing port in address"))?;
            if host.contains(':') {
                return Err(format!("address {target}: too many colons in address"));
            }
            (host, port)
        }
    };
    let port = port
        .parse()
        .map_err(|_| format!("address {target}: invalid port {port:?}"))?;
    Ok((host, port))
}

async fn resolve(target: &str) -> Result<Vec<SocketAddr>, ConnectFailure> {
    let (host, port) =
        split_host_port(target).map_err(|e| ConnectFailure::new(FailureKind::Unknown, e))?;
    let host = if host.is_empty() { "localhost" } else { host };
    let addrs: Vec<SocketAddr> = lookup_host((host, port))
        .await
        .map_err(|e| {
            ConnectFailure::new(
                FailureKind::Dns,
                format!("lookup {host}: {}", go_error_text(&e)),
            )
        })?
        .collect();
    if addrs.is_empty() {
        return Err(ConnectFailure::new(
            FailureKind::Dns,
            format!("lookup {host}: no such host"),
        ));
    }
    Ok(addrs)
}

/// Awaits `fut`, bounded by `timeout` unless it is zero.
async fn bounded<T>(timeout: Duration, fut: impl std::future::Future<Output = T>) -> Option<T> {
    if timeout.is_zero() {
        Some(fut.await)
    } else {
        tokio::time::timeout(timeout, fut).await.ok()
    }
}

async fn connect_tcp(target: &str, timeout: Duration) -> Result<(), ConnectFailure> {
    let addrs = resolve(target).await?;
    match bounded(timeout, TcpStream::connect(&addrs[..])).await {
        None => Err(ConnectFailure {
            kind: FailureKind::Timeout,
            detail: None,
        }),
        Some(Ok(_stream)) => Ok(()),
        Some(Err(e)) => Err(classify_tcp(target, &e)),
    }
}

fn classify_tcp(target: &str, e: &io::Error) -> ConnectFailure {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ConnectFailure {
            kind: FailureKind::Refused,
            detail: None,
        },
        io::ErrorKind::TimedOut => ConnectFailure {
            kind: FailureKind::Timeout,
            detail: None,
        },
        _ => ConnectFailure::new(
            FailureKind::Other,
            format!("dial tcp {target}: connect: {}", go_error_text(e)),
        ),
    }
}

async fn connect_udp(target: &str, timeout: Duration, data: &str) -> Result<(), ConnectFailure> {
    let addrs = resolve(target).await?;
    let remote = addrs[0];
    let other = |e: io::Error| {
        ConnectFailure::new(
            FailureKind::Other,
            format!("dial udp {target}: {}", go_error_text(&e)),
        )
    };
    let local: SocketAddr = if remote.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(|_| ConnectFailure::new(FailureKind::Unknown, "bad local address"))?;
    let sock = UdpSocket::bind(local).await.map_err(other)?;
    sock.connect(remote).await.map_err(other)?;
    let local = sock.local_addr().map_err(other)?;
    let describe = |op: &str, e: &io::Error| {
        format!(
            "{op} udp {}->{remote}: {}",
            crate::net::peer_string(local),
            go_error_text(e)
        )
    };
    let classify = |op: &str, e: io::Error| {
        let kind = if e.kind() == io::ErrorKind::ConnectionRefused {
            FailureKind::Refused
        } else {
            FailureKind::Unknown
        };
        ConnectFailure::new(kind, describe(op, &e))
    };
    let payload = format!("{data}\n");
    let mut buf = [0u8; 1024];
    let exchange = async {
        sock.send(payload.as_bytes())
            .await
            .map_err(|e| classify("write", e))?;
        sock.recv(&mut buf).await.map_err(|e| classify("read", e))
    };
    match bounded(timeout, exchange).await {
        None => Err(ConnectFailure::new(
            FailureKind::Timeout,
            format!(
                "read udp {}->{remote}: i/o timeout",
                crate::net::peer_string(local)
            ),
        )),
        Some(Err(f)) => Err(f),
        Some(Ok(0)) => Err(ConnectFailure::new(
            FailureKind::Other,
            "No data received from the server. Cannot guarantee the server received the request.",
        )),
        Some(Ok(_)) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_splitting() {
        assert_eq!(split_host_port("10.0.0.1:80"), Ok(("10.0.0.1", 80)));
        assert_eq!(split_host_port("[fd00::1]:443"), Ok(("fd00::1", 443)));
        assert_eq!(
            split_host_port("svc.ns.svc.cluster.local:53"),
            Ok(("svc.ns.svc.cluster.local", 53))
        );
        assert!(split_host_port("10.0.0.1")
            .unwrap_err()
            .contains("missing port"));
        assert!(split_host_port("fd00::1:80")
            .unwrap_err()
            .contains("too many colons"));
        assert!(split_host_port("h:http").is_err());
    }

    #[test]
    fn report_lines_match_upstream() {
        let refused = classify_tcp("a:1", &io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(refused.report_line(), "REFUSED");
        let timed_out = classify_tcp("a:1", &io::Error::from_raw_os_error(110));
        assert_eq!(timed_out.report_line(), "TIMEOUT");
        let unreachable = classify_tcp("10.9.9.9:80", &io::Error::from_raw_os_error(113));
        assert_eq!(
            unreachable.report_line(),
            "OTHER: dial tcp 10.9.9.9:80: connect: no route to host"
        );
    }

    #[tokio::test]
    async fn bad_target_is_unknown_and_sctp_is_unsupported() {
        let args = |target: &str, protocol| ConnectArgs {
            target: target.into(),
            timeout: Duration::from_secs(1),
            protocol,
            udp_data: "hostname".into(),
            sctp_data: "hostname".into(),
        };
        let e = connect(&args("nocolon", ConnectProtocol::Tcp))
            .await
            .unwrap_err();
        assert_eq!(e.kind, FailureKind::Unknown);
        assert!(e.report_line().starts_with("UNKNOWN: address nocolon"));
        let e = connect(&args("127.0.0.1:1", ConnectProtocol::Sctp))
            .await
            .unwrap_err();
        assert_eq!(e.kind, FailureKind::Unknown);
    }
}
