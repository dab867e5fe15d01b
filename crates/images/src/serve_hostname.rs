//! `agnhost serve-hostname`: the hostname over HTTP (any path), or raw over TCP (written
//! on accept, then closed) and/or UDP (one datagram back per datagram received).

use std::future::Future;
use std::time::Duration;

use hyper::header::{HeaderValue, CONNECTION};
use hyper::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use crate::http::text;
use crate::Exit;

/// The sockets serve-hostname serves on; the flags decide which are bound.
#[derive(Debug, Default)]
pub struct ServeHostnameSockets {
    pub http: Option<TcpListener>,
    pub tcp: Option<TcpListener>,
    pub udp: Option<UdpSocket>,
}

/// Serves `hostname` on every socket given until `shutdown` resolves. `close` adds
/// `Connection: close` to HTTP responses (`--close`).
pub async fn serve_hostname(
    sockets: ServeHostnameSockets,
    hostname: String,
    close: bool,
    shutdown: impl Future<Output = ()>,
) -> Exit {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(listener) = sockets.tcp {
        tasks.spawn(serve_tcp(listener, hostname.clone(), stop_rx.clone()));
    }
    if let Some(sock) = sockets.udp {
        tasks.spawn(crate::net::answer_udp(
            sock,
            hostname.clone(),
            "serve-hostname",
            stop_rx.clone(),
        ));
    }
    let stopper = async {
        shutdown.await;
        tracing::info!("serve-hostname: shutting down");
        let _ = stop_tx.send(true);
        Duration::from_secs(2)
    };
    match sockets.http {
        Some(listener) => {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "serve-hostname: serving HTTP");
            }
            let handler = move |_req, peer| {
                let hostname = hostname.clone();
                async move {
                    tracing::debug!(%peer, "serve-hostname: HTTP request");
                    let mut resp = text(StatusCode::OK, hostname);
                    if close {
                        resp.headers_mut()
                            .insert(CONNECTION, HeaderValue::from_static("close"));
                    }
                    resp
                }
            };
            crate::http::serve(listener, handler, stopper).await;
        }
        None => {
            stopper.await;
        }
    }
    tasks.join_all().await;
    Exit(0)
}

async fn serve_tcp(listener: TcpListener, hostname: String, mut stop: watch::Receiver<bool>) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serve-hostname: serving TCP");
    }
    loop {
        let (mut stream, peer) = tokio::select! {
            () = crate::stopped(&mut stop) => return,
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(error) => {
                    tracing::warn!(%error, "serve-hostname: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        tracing::debug!(%peer, "serve-hostname: TCP request");
        let hostname = hostname.clone();
        tokio::spawn(async move {
            let _ = stream.write_all(hostname.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
