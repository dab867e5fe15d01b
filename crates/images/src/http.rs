//! A small HTTP/1 server over hyper with graceful shutdown, and the request helpers the
//! built-ins share (Go's `FormValue` over the query string, plain-text responses).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// The response type of every built-in handler.
pub(crate) type Resp = Response<Full<Bytes>>;

/// A response with a body and a content type.
pub(crate) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A plain-text response, as Go's `fmt.Fprint(w, ...)` gives.
pub(crate) fn text(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    respond(status, "text/plain; charset=utf-8", body)
}

/// Serves HTTP/1 on `listener`, calling `handler(request, peer)` for every request,
/// until `shutdown` resolves; it resolves to how long in-flight requests may still run.
/// Connections still open after that are dropped.
pub(crate) async fn serve<H, F, S>(listener: TcpListener, handler: H, shutdown: S)
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Resp> + Send + 'static,
    S: Future<Output = Duration>,
{
    let graceful = GracefulShutdown::new();
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    let grace = loop {
        while conns.try_join_next().is_some() {}
        tokio::select! {
            grace = &mut shutdown => break grace,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let handler = handler.clone();
                let service = service_fn(move |req| {
                    let fut = handler(req, peer);
                    async move { Ok::<_, Infallible>(fut.await) }
                });
                let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                conns.spawn(async move {
                    if let Err(error) = conn.await {
                        tracing::debug!(%error, %peer, "http connection ended with an error");
                    }
                });
            }
        }
    };
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!(
            ?grace,
            "connections still open after the grace period; closing them"
        );
    }
    conns.shutdown().await;
}

/// The decoded `key=value` pairs of a query string, in order.
#[derive(Debug, Default, Clone)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(query: Option<&str>) -> Self {
        let pairs = query
            .unwrap_or("")
            .split(['&', ';'])
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(p), String::new()),
            })
            .collect();
        Query(pairs)
    }

    /// The first value of `key`, or "" (Go's `FormValue`).
    pub(crate) fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// Percent-decoding with `+` as space, as `application/x-www-form-urlencoded` has it.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && hex_pair(bytes[i + 1], bytes[i + 2]).is_some() => {
                out.extend(hex_pair(bytes[i + 1], bytes[i + 2]));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    let digit = |c: u8| (c as char).to_digit(16);
    Some((digit(hi)? * 16 + digit(lo)?) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some(
            "msg=hello+world%21&code=&cmd=echo%20a%26b&msg=second&bad=%zz",
        ));
        assert_eq!(q.get("msg"), "hello world!");
        assert_eq!(q.get("code"), "");
        assert_eq!(q.get("cmd"), "echo a&b");
        assert_eq!(q.get("bad"), "%zz");
        assert_eq!(q.get("absent"), "");
        assert_eq!(Query::parse(None).get("x"), "");
        assert_eq!(Query::parse(Some("x=%4")).get("x"), "%4");
    }
}
