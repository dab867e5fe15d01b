//! The agent's metrics in Prometheus text format (version 0.0.4), served over HTTP/1.1
//! with hyper (already in the agent's dependency graph through the built-in images).
//! `render` is pure; `serve` takes the listener and the shutdown future.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::apply::Changes;

/// Upper bounds of the reconcile duration histogram, in seconds.
pub const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Counters and gauges, shared by the reconcile loop and the HTTP server.
#[derive(Debug, Default)]
pub struct Metrics {
    pub reconciles: AtomicU64,
    pub reconcile_errors: AtomicU64,
    /// Node events after which the desired state was unchanged (no kernel dump).
    pub skipped: AtomicU64,
    pub changes_links: AtomicU64,
    pub changes_addresses: AtomicU64,
    pub changes_routes: AtomicU64,
    pub changes_neighbours: AtomicU64,
    pub changes_fdb: AtomicU64,
    pub managed_routes: AtomicU64,
    pub managed_neighbours: AtomicU64,
    pub managed_fdb: AtomicU64,
    pub nodes: AtomicU64,
    pub unreachable_peers: AtomicU64,
    /// nftables transactions committed (egress and anti-spoofing tables).
    pub firewall_applies: AtomicU64,
    pub firewall_errors: AtomicU64,
    /// Pod interfaces allowed as sources by the anti-spoofing table.
    pub pod_sources: AtomicU64,
    /// The service proxy's counters (rendered with the rest).
    pub proxy: Arc<podnet_proxy::run::ProxyMetrics>,
    durations: Mutex<Histogram>,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    pub fn observe_duration(&self, d: Duration) {
        let s = d.as_secs_f64();
        let mut h = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += s;
        h.count += 1;
    }

    pub fn add_changes(&self, c: &Changes) {
        let add = |a: &AtomicU64, n: usize| a.fetch_add(n as u64, Ordering::Relaxed);
        add(&self.changes_links, c.links);
        add(&self.changes_addresses, c.addresses);
        add(&self.changes_routes, c.routes);
        add(&self.changes_neighbours, c.neighbours);
        add(&self.changes_fdb, c.fdb);
    }

    /// The text exposition (pure).
    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut s = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, u64)]| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in lines {
                let _ = writeln!(s, "{name}{labels} {v}");
            }
        };
        metric(
            "podnet_agent_reconciles_total",
            "counter",
            "Reconciles that dumped and diffed the kernel state.",
            &[(String::new(), g(&self.reconciles))],
        );
        metric(
            "podnet_agent_reconcile_errors_total",
            "counter",
            "Reconciles with at least one failed kernel operation.",
            &[(String::new(), g(&self.reconcile_errors))],
        );
        metric(
            "podnet_agent_reconciles_skipped_total",
            "counter",
            "Node events that left the desired state unchanged (kernel not dumped).",
            &[(String::new(), g(&self.skipped))],
        );
        metric(
            "podnet_agent_kernel_changes_total",
            "counter",
            "Kernel objects created, changed or deleted, by kind.",
            &[
                ("{kind=\"link\"}".into(), g(&self.changes_links)),
                ("{kind=\"address\"}".into(), g(&self.changes_addresses)),
                ("{kind=\"route\"}".into(), g(&self.changes_routes)),
                ("{kind=\"neighbour\"}".into(), g(&self.changes_neighbours)),
                ("{kind=\"fdb\"}".into(), g(&self.changes_fdb)),
            ],
        );
        metric(
            "podnet_agent_managed",
            "gauge",
            "Kernel objects the agent currently manages, by kind.",
            &[
                ("{kind=\"route\"}".into(), g(&self.managed_routes)),
                ("{kind=\"neighbour\"}".into(), g(&self.managed_neighbours)),
                ("{kind=\"fdb\"}".into(), g(&self.managed_fdb)),
            ],
        );
        metric(
            "podnet_agent_nodes",
            "gauge",
            "Nodes known to the agent (this one included).",
            &[(String::new(), g(&self.nodes))],
        );
        metric(
            "podnet_agent_unreachable_peers",
            "gauge",
            "Remote nodes host-gw cannot route to (not on this node's L2 network).",
            &[(String::new(), g(&self.unreachable_peers))],
        );
        metric(
            "podnet_agent_firewall_applies_total",
            "counter",
            "nftables transactions committed (egress masquerade, anti-spoofing).",
            &[(String::new(), g(&self.firewall_applies))],
        );
        metric(
            "podnet_agent_firewall_errors_total",
            "counter",
            "nftables transactions that failed.",
            &[(String::new(), g(&self.firewall_errors))],
        );
        metric(
            "podnet_agent_pod_sources",
            "gauge",
            "Pod interfaces the anti-spoofing table allows as sources.",
            &[(String::new(), g(&self.pod_sources))],
        );
        let h = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        let name = "podnet_agent_reconcile_duration_seconds";
        let _ = writeln!(
            s,
            "# HELP {name} Time of one reconcile (dump, diff, apply).\n# TYPE {name} histogram"
        );
        for (b, c) in BUCKETS.iter().zip(h.counts.iter()) {
            let _ = writeln!(s, "{name}_bucket{{le=\"{b}\"}} {c}");
        }
        let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(s, "{name}_sum {}", h.sum);
        let _ = writeln!(s, "{name}_count {}", h.count);
        self.proxy.render(&mut s);
        s
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(respond(&req, &metrics)) }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
        });
    }
}

fn respond<B>(req: &Request<B>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, body) = match (req.method().as_str(), req.uri().path()) {
        ("GET", "/metrics") => (StatusCode::OK, metrics.render()),
        ("GET", "/healthz") => (StatusCode::OK, "ok\n".to_string()),
        _ => (
            StatusCode::NOT_FOUND,
            "not found: try GET /metrics\n".to_string(),
        ),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format() {
        let m = Metrics::default();
        m.reconciles.fetch_add(3, Ordering::Relaxed);
        m.observe_duration(Duration::from_millis(2));
        m.managed_routes.store(2, Ordering::Relaxed);
        let t = m.render();
        assert!(
            t.contains(
                "# TYPE podnet_agent_reconciles_total counter\npodnet_agent_reconciles_total 3\n"
            ),
            "{t}"
        );
        assert!(
            t.contains("podnet_agent_managed{kind=\"route\"} 2\n"),
            "{t}"
        );
        assert!(
            t.contains("podnet_agent_reconcile_duration_seconds_bucket{le=\"0.001\"} 0\n"),
            "{t}"
        );
        assert!(
            t.contains("podnet_agent_reconcile_duration_seconds_bucket{le=\"0.0025\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("podnet_agent_reconcile_duration_seconds_count 1\n"),
            "{t}"
        );
    }

    #[tokio::test]
    async fn served_over_http() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let m = Metrics::new();
        m.nodes.store(4, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(l, m, async {
            let _ = rx.await;
        }));
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.contains("podnet_agent_nodes 4"), "{out}");
        let _ = tx.send(());
        server.await.unwrap();
    }
}
