//! `/dial?request=...&host=...&port=...&protocol=http|udp&tries=N`: netexec asks another
//! server (usually another netexec) `tries` times and reports what came back as JSON
//! `{"responses": [...], "errors": [...]}`, as upstream's e2e tests expect.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::HOST;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{lookup_host, TcpStream, UdpSocket};

use crate::http::{text, Query, Resp};
use crate::net::go_error_text;

/// Upstream's per-try limit for HTTP and UDP alike.
const TRY_TIMEOUT: Duration = Duration::from_secs(5);
/// A bound on `tries`, so that one request cannot loop for hours.
const MAX_TRIES: i64 = 1000;

#[derive(Debug, Clone, Copy)]
enum Protocol {
    Http,
    Udp,
}

pub(super) async fn handle(q: &Query) -> Resp {
    let (host, port, request) = (q.get("host"), q.get("port"), q.get("request"));
    let (protocol, tries) = (q.get("protocol"), q.get("tries"));
    let bad = |msg: String| text(StatusCode::BAD_REQUEST, format!("{msg}\n"));
    let tries = if tries.is_empty() {
        1
    } else {
        match tries.parse::<i64>() {
            Ok(n) if (0..=MAX_TRIES).contains(&n) => n,
            _ => {
                return bad(format!(
                    "tries parameter is invalid: expected an integer from 0 to {MAX_TRIES}, found {tries:?}"
                ))
            }
        }
    };
    if request.is_empty() {
        return bad("request parameter not specified.".into());
    }
    let protocol = match protocol.to_ascii_lowercase().as_str() {
        "" | "http" => Protocol::Http,
        "udp" => Protocol::Udp,
        "sctp" => {
            return bad("unsupported protocol. sctp (podnet's built-in agnhost has no sctp)".into())
        }
        other => return bad(format!("unsupported protocol. {other}")),
    };
    let addr = match resolve(host, port).await {
        Ok(a) => a,
        Err(e) => return bad(format!("host and/or port param are invalid. {e}")),
    };

    let mut responses = Vec::new();
    let mut errors = Vec::new();
    let mut last = String::new();
    for _ in 0..tries {
        let result = match protocol {
            Protocol::Http => dial_http(request, addr).await,
            Protocol::Udp => dial_udp(request, addr).await,
        };
        match result {
            Ok(body) => {
                last = body.clone();
                responses.push(body);
            }
            Err(e) => {
                last.clear();
                errors.push(e);
            }
        }
    }
    // As upstream: "responses" appears only when the last try returned something.
    let mut out: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    if !last.is_empty() {
        out.insert("responses", responses);
    }
    if !errors.is_empty() {
        out.insert("errors", errors);
    }
    match serde_json::to_string(&out) {
        Ok(body) => text(StatusCode::OK, body),
        Err(e) => text(
            StatusCode::EXPECTATION_FAILED,
            format!("response could not be serialized. {e}\n"),
        ),
    }
}

async fn resolve(host: &str, port: &str) -> Result<SocketAddr, String> {
    let port: u16 = port
        .parse()
        .map_err(|_| format!("expected a port number, found {port:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = if host.is_empty() { "localhost" } else { host };
    lookup_host((host, port))
        .await
        .map_err(|e| format!("lookup {host}: {}", go_error_text(&e)))?
        .next()
        .ok_or_else(|| format!("lookup {host}: no such host"))
}

/// GET `http://addr/request`; the body whatever the status, as upstream.
async fn dial_http(request: &str, addr: SocketAddr) -> Result<String, String> {
    let url = format!("http://{addr}/{request}");
    let fail = |detail: String| format!("Get {url:?}: {detail}");
    let exchange = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| fail(format!("dial tcp {addr}: connect: {}", go_error_text(&e))))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fail(e.to_string()))?;
        let driver = tokio::spawn(conn);
        let req = Request::get(format!("/{request}"))
            .header(HOST, addr.to_string())
            .body(Empty::<Bytes>::new())
            .map_err(|e| fail(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(e.to_string()))?
            .to_bytes();
        driver.abort();
        Ok(String::from_utf8_lossy(&body).into_owned())
    };
    tokio::time::timeout(TRY_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(fail(
                "context deadline exceeded (Client.Timeout exceeded while awaiting headers)".into(),
            ))
        })
}

/// Sends `request` as one datagram and waits for one answer.
async fn dial_udp(request: &str, addr: SocketAddr) -> Result<String, String> {
    let local = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sock = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("udp dial failed. err:{}", go_error_text(&e)))?;
    sock.connect(addr)
        .await
        .map_err(|e| format!("udp dial failed. err:{}", go_error_text(&e)))?;
    sock.send(request.as_bytes())
        .await
        .map_err(|e| format!("udp connection write failed. err:{}", go_error_text(&e)))?;
    let mut buf = vec![0u8; 2048];
    let read_failed =
        |detail: String| format!("reading from udp connection failed. err:'{detail}'");
    match tokio::time::timeout(TRY_TIMEOUT, sock.recv(&mut buf)).await {
        Err(_) => Err(read_failed(format!("read udp {addr}: i/o timeout"))),
        Ok(Err(e)) => Err(read_failed(format!(
            "read udp {addr}: {}",
            go_error_text(&e)
        ))),
        Ok(Ok(0)) => Err(read_failed("<nil>".into())),
        Ok(Ok(n)) => Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
    }
}
