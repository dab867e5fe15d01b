//! `agnhost porter`: for every environment variable `SERVE_PORT_<n>` or
//! `SERVE_TCP_PORT_<n>`, an HTTP server on port n answering the variable's value to any
//! request; for `SERVE_UDP_PORT_<n>`, a UDP server answering it to any datagram.
//! `SERVE_TLS_PORT_<n>` and `SERVE_SCTP_PORT_<n>` are logged and skipped: the lab has
//! neither the image's certificate nor SCTP.

use std::future::Future;
use std::time::Duration;

use hyper::StatusCode;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use crate::http::{respond, text};
use crate::Exit;

/// The transport a porter variable asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PorterProtocol {
    Tcp,
    Udp,
    Tls,
    Sctp,
}

/// One port porter serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PorterPort {
    pub protocol: PorterProtocol,
    pub port: u16,
    pub value: String,
}

/// The ports named by `SERVE_*PORT_<n>` variables, in the order given; names with a
/// bad port number are logged and skipped.
pub fn porter_ports(vars: impl IntoIterator<Item = (String, String)>) -> Vec<PorterPort> {
    const PREFIXES: [(&str, PorterProtocol); 5] = [
        ("SERVE_PORT_", PorterProtocol::Tcp),
        ("SERVE_TCP_PORT_", PorterProtocol::Tcp),
        ("SERVE_UDP_PORT_", PorterProtocol::Udp),
        ("SERVE_TLS_PORT_", PorterProtocol::Tls),
        ("SERVE_SCTP_PORT_", PorterProtocol::Sctp),
    ];
    let mut ports = Vec::new();
    for (key, value) in vars {
        let Some((rest, protocol)) = PREFIXES
            .iter()
            .find_map(|(p, proto)| key.strip_prefix(p).map(|rest| (rest, *proto)))
        else {
            continue;
        };
        match rest.parse::<u16>() {
            Ok(port) => ports.push(PorterPort {
                protocol,
                port,
                value,
            }),
            Err(_) => tracing::warn!(%key, "porter: not a port number; skipped"),
        }
    }
    ports
}

/// The bound sockets of porter, each with the value it serves.
#[derive(Debug, Default)]
pub struct PorterSockets {
    pub http: Vec<(TcpListener, String)>,
    pub udp: Vec<(UdpSocket, String)>,
}

/// Serves every socket until `shutdown` resolves.
pub async fn serve_porter(
    sockets: PorterSockets,
    json_response: bool,
    shutdown: impl Future<Output = ()>,
) -> Exit {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for (listener, value) in sockets.http {
        let mut stop = stop_rx.clone();
        let handler = move |req: hyper::Request<hyper::body::Incoming>, _peer| {
            let body = if json_response {
                // Field order as upstream's Go struct marshals it.
                let quote = |s: &str| serde_json::Value::from(s).to_string();
                format!(
                    "{{\"Method\":{},\"Body\":{}}}",
                    quote(req.method().as_str()),
                    quote(&value)
                )
            } else {
                value.clone()
            };
            async move {
                if json_response {
                    respond(StatusCode::OK, "application/json", body)
                } else {
                    text(StatusCode::OK, body)
                }
            }
        };
        tasks.spawn(async move {
            let stopped = async move {
                crate::stopped(&mut stop).await;
                Duration::from_secs(2)
            };
            crate::http::serve(listener, handler, stopped).await;
        });
    }
    for (sock, value) in sockets.udp {
        tasks.spawn(crate::net::answer_udp(
            sock,
            value,
            "porter",
            stop_rx.clone(),
        ));
    }
    shutdown.await;
    tracing::info!("porter: shutting down");
    let _ = stop_tx.send(true);
    tasks.join_all().await;
    Exit(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_from_the_environment() {
        let vars = [
            ("SERVE_PORT_80", "foo"),
            ("SERVE_TCP_PORT_81", "bar"),
            ("SERVE_UDP_PORT_82", "baz"),
            ("SERVE_SCTP_PORT_83", "qux"),
            ("SERVE_PORT_x", "bad"),
            ("PATH", "/bin"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let ports = porter_ports(vars);
        let got: Vec<_> = ports
            .iter()
            .map(|p| (p.protocol, p.port, p.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (PorterProtocol::Tcp, 80, "foo"),
                (PorterProtocol::Tcp, 81, "bar"),
                (PorterProtocol::Udp, 82, "baz"),
                (PorterProtocol::Sctp, 83, "qux"),
            ]
        );
    }
}
