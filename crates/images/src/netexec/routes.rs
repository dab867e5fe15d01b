//! netexec's HTTP endpoints. Paths match exactly, and anything else is answered by `/`
//! (Go's `ServeMux` sends unmatched paths to the `/` pattern).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, LOCATION};
use hyper::{Request, StatusCode};

use super::{dial, shell, ExitRequest, State};
use crate::flags::parse_go_duration;
use crate::http::{respond, text, Query, Resp};
use crate::net::peer_string;

pub(super) async fn handle(state: Arc<State>, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let (path, query) = match &state.cfg.http_override {
        Some(o) => match o.split_once('?') {
            Some((p, q)) => (p.to_string(), Query::parse(Some(q))),
            None => (o.clone(), Query::default()),
        },
        None => (
            req.uri().path().to_string(),
            Query::parse(req.uri().query()),
        ),
    };
    tracing::debug!(method = %req.method(), %path, %peer, "netexec: request");
    match path.as_str() {
        "/clientip" => text(StatusCode::OK, peer_string(peer)),
        "/header" => header(req.headers(), &query),
        "/dial" => dial::handle(&query).await,
        "/echo" => echo(&query),
        "/exit" => exit(&state, &query).await,
        "/healthz" => healthz(&state),
        "/readyz" => readyz(&state),
        "/hostname" | "/hostName" => text(StatusCode::OK, state.cfg.hostname.clone()),
        "/redirect" => redirect(&query),
        "/shell" => shell::handle(&state.cfg.shell, &query).await,
        "/shutdown" => exit_with(&state, 0, Duration::ZERO).await,
        "/upload" => text(
            StatusCode::NOT_IMPLEMENTED,
            "upload is not supported by podnet's built-in agnhost\n",
        ),
        _ => root(),
    }
}

fn root() -> Resp {
    let now = jiff::Zoned::now();
    text(
        StatusCode::OK,
        format!("NOW: {}", now.strftime("%Y-%m-%d %H:%M:%S%.f %z %Z")),
    )
}

fn echo(q: &Query) -> Resp {
    let (msg, code) = (q.get("msg"), q.get("code"));
    if code.is_empty() {
        return text(StatusCode::OK, msg.to_string());
    }
    match code
        .parse::<u16>()
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
    {
        Some(status) => text(status, msg.to_string()),
        None => text(
            StatusCode::OK,
            format!("argument 'code' must be an integer or empty, got {code:?}\n"),
        ),
    }
}

/// One header's value (`?key=`), or every header as JSON `{"Name": ["value"]}`.
fn header(headers: &HeaderMap, q: &Query) -> Resp {
    let key = q.get("key");
    if !key.is_empty() {
        let value = headers
            .get(key)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        return text(StatusCode::OK, value);
    }
    let mut all: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if name == hyper::header::HOST {
            continue; // Go keeps Host apart from the header map.
        }
        all.entry(canonical_header_key(name.as_str()))
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let body = serde_json::to_string(&all)
        .unwrap_or_else(|e| format!("error marshalling header, err: {e}"));
    text(StatusCode::OK, body)
}

/// Go's canonical MIME header key: `x-forwarded-for` -> `X-Forwarded-For`.
fn canonical_header_key(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

async fn exit(state: &State, q: &Query) -> Resp {
    let (code, timeout, wait) = (q.get("code"), q.get("timeout"), q.get("wait"));
    let duration = |name: &str, v: &str| -> Result<Duration, Resp> {
        if v.is_empty() {
            return Ok(Duration::ZERO);
        }
        parse_go_duration(v).map_err(|_| {
            text(
                StatusCode::OK,
                format!("argument '{name}' must be a valid golang duration or empty, got {v:?}\n"),
            )
        })
    };
    let timeout = match duration("timeout", timeout) {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let wait = match duration("wait", wait) {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let code = if code.is_empty() {
        0
    } else {
        match code.parse::<u8>() {
            Ok(c) => c,
            Err(_) => {
                return text(
                    StatusCode::OK,
                    format!("argument 'code' must be an integer [0-127] or empty, got {code:?}\n"),
                )
            }
        }
    };
    tracing::info!(code, ?timeout, ?wait, "netexec: exit requested");
    tokio::time::sleep(wait).await;
    exit_with(state, code, timeout).await
}

async fn exit_with(state: &State, code: u8, grace: Duration) -> Resp {
    // The server stops once this response is written.
    let _ = state.exit_tx.send(ExitRequest { code, grace }).await;
    text(StatusCode::OK, "")
}

fn healthy(state: &State) -> bool {
    state.udp_healthy.load(Ordering::SeqCst)
}

fn healthz(state: &State) -> Resp {
    let status = if healthy(state) {
        StatusCode::OK
    } else {
        StatusCode::PRECONDITION_FAILED
    };
    text(status, "")
}

fn readyz(state: &State) -> Resp {
    if state.terminating.load(Ordering::SeqCst) {
        text(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else if healthy(state) {
        text(StatusCode::OK, "ok")
    } else {
        text(StatusCode::PRECONDITION_FAILED, "")
    }
}

fn redirect(q: &Query) -> Resp {
    let (location, code) = (q.get("location"), q.get("code"));
    let status = if code.is_empty() {
        StatusCode::FOUND
    } else {
        match code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
        {
            Some(s) => s,
            None => {
                return text(
                    StatusCode::OK,
                    format!("argument 'code' must be an integer or empty, got {code:?}\n"),
                )
            }
        }
    };
    let reason = status.canonical_reason().unwrap_or("");
    let body = format!("<a href=\"{}\">{reason}</a>.\n\n", html_escape(location));
    let mut resp = respond(status, "text/html; charset=utf-8", body);
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_keys_are_canonical() {
        assert_eq!(canonical_header_key("x-forwarded-for"), "X-Forwarded-For");
        assert_eq!(canonical_header_key("USER-AGENT"), "User-Agent");
    }

    #[test]
    fn echo_codes() {
        let q = Query::parse(Some("msg=hi&code=404"));
        assert_eq!(echo(&q).status(), StatusCode::NOT_FOUND);
        let q = Query::parse(Some("msg=hi&code=x"));
        assert_eq!(echo(&q).status(), StatusCode::OK);
    }

    #[test]
    fn redirects_carry_the_location() {
        let r = redirect(&Query::parse(Some(
            "location=/echo%3Fmsg%3Dfoobar&code=307",
        )));
        assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(r.headers()[LOCATION], "/echo?msg=foobar");
    }
}
