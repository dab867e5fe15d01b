//! Health-check node ports of `externalTrafficPolicy: Local` LoadBalancer services,
//! answered as kube-proxy answers them: `200` with the number of local endpoints when
//! this node has at least one, `503` otherwise, so an external load balancer sends
//! traffic only to nodes that can serve it without a second hop.
//!
//! A few lines of HTTP/1.1 by hand: one GET, one short JSON answer, connection closed.
//! Load balancers' probes need nothing more, and it keeps the proxy free of a server
//! framework.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::model::HealthCheck;

struct Listener {
    namespace: String,
    name: String,
    count: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

/// The running health-check servers, one per port.
#[derive(Default)]
pub struct HealthServers {
    bind: Option<Ipv4Addr>,
    listeners: BTreeMap<u16, Listener>,
}

impl HealthServers {
    /// Servers listening on `bind` (default: every address of the namespace).
    pub fn new(bind: Option<Ipv4Addr>) -> HealthServers {
        HealthServers {
            bind,
            listeners: BTreeMap::new(),
        }
    }

    /// Makes the running servers match `checks`: starts new ports, stops removed ones,
    /// updates the counts of the rest (without restarting them).
    pub async fn reconcile(&mut self, checks: &BTreeMap<u16, HealthCheck>) {
        let gone: Vec<u16> = self
            .listeners
            .iter()
            .filter(|(port, l)| {
                checks
                    .get(port)
                    .is_none_or(|c| c.namespace != l.namespace || c.name != l.name)
            })
            .map(|(p, _)| *p)
            .collect();
        for port in gone {
            if let Some(l) = self.listeners.remove(&port) {
                l.task.abort();
                let _ = l.task.await;
            }
        }
        for (port, check) in checks {
            if let Some(l) = self.listeners.get(port) {
                l.count.store(check.local_endpoints, Ordering::Relaxed);
                continue;
            }
            let addr = SocketAddr::from((self.bind.unwrap_or(Ipv4Addr::UNSPECIFIED), *port));
            let listener = match TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(port, service = %format!("{}/{}", check.namespace, check.name), error = %e,
                        "cannot listen on the health-check node port");
                    continue;
                }
            };
            let count = Arc::new(AtomicUsize::new(check.local_endpoints));
            let task = tokio::spawn(serve(
                listener,
                check.namespace.clone(),
                check.name.clone(),
                count.clone(),
            ));
            self.listeners.insert(
                *port,
                Listener {
                    namespace: check.namespace.clone(),
                    name: check.name.clone(),
                    count,
                    task,
                },
            );
        }
    }

    pub fn ports(&self) -> Vec<u16> {
        self.listeners.keys().copied().collect()
    }
}

impl Drop for HealthServers {
    fn drop(&mut self) {
        for l in self.listeners.values() {
            l.task.abort();
        }
    }
}

async fn serve(listener: TcpListener, namespace: String, name: String, count: Arc<AtomicUsize>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // e.g. out of file descriptors: don't spin
                tracing::warn!(error = %e, "health-check accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let body = answer(&namespace, &name, count.load(Ordering::Relaxed));
        tokio::spawn(async move {
            let _ = respond(stream, body).await;
        });
    }
}

/// The status line and JSON body for `local` endpoints.
pub fn answer(namespace: &str, name: &str, local: usize) -> (u16, String) {
    let status = if local > 0 { 200 } else { 503 };
    let body = format!(
        "{{\"service\":{{\"namespace\":\"{}\",\"name\":\"{}\"}},\"localEndpoints\":{local},\"serviceProxyHealthy\":true}}\n",
        namespace.escape_default(),
        name.escape_default()
    );
    (status, body)
}

async fn respond(mut stream: TcpStream, (status, body): (u16, String)) -> std::io::Result<()> {
    // Read the request head (bounded); the path does not matter, as with kube-proxy.
    let mut buf = [0u8; 4096];
    let mut seen = 0;
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while seen < buf.len() {
            let n = stream.read(&mut buf[seen..]).await?;
            if n == 0 {
                break;
            }
            seen += n;
            if buf[..seen].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return Ok(());
    }
    let reason = if status == 200 {
        "OK"
    } else {
        "Service Unavailable"
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(port: u16) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test]
    async fn answers_200_with_local_endpoints_and_503_without() {
        let port = free_port();
        let mut servers = HealthServers::new(Some(Ipv4Addr::LOCALHOST));
        let check = |n| HealthCheck {
            port,
            namespace: "default".into(),
            name: "web".into(),
            local_endpoints: n,
        };
        servers.reconcile(&[(port, check(2))].into()).await;
        let a = get(port).await;
        assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
        assert!(a.contains("\"localEndpoints\":2"), "{a}");
        servers.reconcile(&[(port, check(0))].into()).await;
        let a = get(port).await;
        assert!(a.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{a}");
        assert!(a.contains("\"name\":\"web\""), "{a}");
        servers.reconcile(&BTreeMap::new()).await;
        assert!(servers.ports().is_empty());
        assert!(
            TcpStream::connect(("127.0.0.1", port)).await.is_err(),
            "the port is closed again"
        );
    }
}
