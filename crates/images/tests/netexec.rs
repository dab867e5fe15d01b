//! agnhost netexec on loopback: the HTTP endpoints, the UDP protocol, /dial, /exit and
//! the delayed shutdown.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{closed_tcp_port, get, get_with, udp_ask, WAIT};
use podnet_images::{serve_netexec, Exit, NetexecConfig};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Netexec {
    http: SocketAddr,
    udp: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Exit>,
}

impl Netexec {
    fn start(cfg: NetexecConfig) -> Self {
        let (http, udp) = (common::tcp(), common::udp());
        let (http_addr, udp_addr) = (http.local_addr().unwrap(), udp.local_addr().unwrap());
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(serve_netexec(http, vec![udp], cfg, async {
            let _ = rx.await;
        }));
        Netexec {
            http: http_addr,
            udp: udp_addr,
            stop: Some(tx),
            task,
        }
    }

    fn named(hostname: &str) -> Self {
        Self::start(NetexecConfig::new(hostname))
    }

    /// Sends the shutdown signal and waits for the exit.
    async fn stop(mut self) -> Exit {
        let _ = self.stop.take().unwrap().send(());
        self.exit().await
    }

    async fn exit(self) -> Exit {
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("netexec ends in time")
            .unwrap()
    }
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test]
async fn hostname_clientip_echo_and_root() {
    let n = Netexec::named("pod-a");
    for path in ["/hostname", "/hostName"] {
        let r = get(n.http, path).await;
        assert_eq!((r.status, r.body.as_str()), (200, "pod-a"), "{path}");
    }
    let r = get(n.http, "/clientip").await;
    assert_eq!(r.body, r.local.to_string(), "the client's own ip:port");

    let r = get(n.http, "/echo?msg=hello%20world").await;
    assert_eq!((r.status, r.body.as_str()), (200, "hello world"));
    let r = get(n.http, "/echo?msg=nope&code=404").await;
    assert_eq!((r.status, r.body.as_str()), (404, "nope"));

    for path in ["/", "/anything/else"] {
        let r = get(n.http, path).await;
        assert!(r.body.starts_with("NOW: 20"), "{path}: {}", r.body);
    }
    let r = get_with(n.http, "/header?key=X-Test", &[("X-Test", "v1")]).await;
    assert_eq!(r.body, "v1");
    let r = get_with(n.http, "/header", &[("x-test", "v2")]).await;
    assert_eq!(json(&r.body)["X-Test"], serde_json::json!(["v2"]));

    let r = get(n.http, "/redirect?location=/echo%3Fmsg%3Dfoobar&code=307").await;
    assert_eq!(
        (r.status, r.header("location")),
        (307, Some("/echo?msg=foobar"))
    );
    let r = get(n.http, "/healthz").await;
    assert_eq!(r.status, 200);
    let r = get(n.http, "/readyz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    assert_eq!(n.stop().await, Exit(0));
}

#[tokio::test]
async fn udp_protocol() {
    let n = Netexec::named("pod-u");
    assert_eq!(udp_ask(n.udp, "hostname").await.0, "pod-u");
    assert_eq!(udp_ask(n.udp, "echo Hello there\n").await.0, "hello there");
    let (answer, local) = udp_ask(n.udp, "clientip").await;
    assert_eq!(answer, local.to_string());
    assert_eq!(n.stop().await, Exit(0));
}

#[tokio::test]
async fn shell_runs_sh_and_reports_output_and_failure() {
    let n = Netexec::named("pod-s");
    let r = get(n.http, "/shell?cmd=echo%20hello").await;
    assert_eq!(
        (r.status, json(&r.body)),
        (200, serde_json::json!({"output": "hello\n"}))
    );
    let r = get(
        n.http,
        "/shell?shellCommand=echo+out%3B+echo+err+1%3E%262%3B+exit+3",
    )
    .await;
    assert_eq!(
        json(&r.body),
        serde_json::json!({"output": "out\nerr\n", "error": "exit status 3"})
    );
    let r = get(n.http, "/shell?cmd=true").await;
    assert_eq!(json(&r.body), serde_json::json!({}));
    assert_eq!(n.stop().await, Exit(0));
}

#[tokio::test]
async fn dial_http_and_udp_to_itself() {
    let n = Netexec::named("pod-d");
    let (hp, up) = (n.http.port(), n.udp.port());
    let r = get(
        n.http,
        &format!("/dial?request=hostname&host=127.0.0.1&port={hp}&protocol=http&tries=2"),
    )
    .await;
    assert_eq!(
        (r.status, json(&r.body)),
        (200, serde_json::json!({"responses": ["pod-d", "pod-d"]}))
    );
    let r = get(
        n.http,
        &format!("/dial?request=echo%3Fmsg%3Dhi&host=127.0.0.1&port={hp}"),
    )
    .await;
    assert_eq!(json(&r.body), serde_json::json!({"responses": ["hi"]}));
    let r = get(
        n.http,
        &format!("/dial?request=hostname&host=127.0.0.1&port={up}&protocol=udp"),
    )
    .await;
    assert_eq!(json(&r.body), serde_json::json!({"responses": ["pod-d"]}));
    let r = get(
        n.http,
        &format!("/dial?request=echo%20x&host=localhost&port={up}&protocol=udp"),
    )
    .await;
    assert_eq!(json(&r.body), serde_json::json!({"responses": ["x"]}));

    let closed = closed_tcp_port();
    let r = get(
        n.http,
        &format!("/dial?request=hostname&host=127.0.0.1&port={closed}&tries=2"),
    )
    .await;
    let v = json(&r.body);
    assert_eq!(r.status, 200);
    assert!(v.get("responses").is_none(), "{v}");
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert!(
        errors[0].as_str().unwrap().contains("connection refused"),
        "{v}"
    );

    for bad in [
        "/dial?host=127.0.0.1&port=1",
        "/dial?request=x&host=127.0.0.1&port=1&tries=x",
        "/dial?request=x&host=127.0.0.1&port=1&protocol=quic",
        "/dial?request=x&host=127.0.0.1&port=nope",
    ] {
        assert_eq!(get(n.http, bad).await.status, 400, "{bad}");
    }
    assert_eq!(n.stop().await, Exit(0));
}

#[tokio::test]
async fn exit_answers_then_ends_with_the_code() {
    let n = Netexec::named("pod-e");
    let r = get(n.http, "/exit?code=3").await;
    assert_eq!(r.status, 200);
    assert_eq!(n.exit().await, Exit(3));

    let n = Netexec::named("pod-e");
    let r = get(n.http, "/exit?code=x").await;
    assert!(r.body.contains("must be an integer"), "{}", r.body);
    let r = get(n.http, "/shutdown").await;
    assert_eq!(r.status, 200);
    assert_eq!(n.exit().await, Exit(0));
}

#[tokio::test]
async fn delayed_shutdown_keeps_serving_but_is_not_ready() {
    let mut cfg = NetexecConfig::new("pod-slow");
    cfg.delay_shutdown = Duration::from_secs(2);
    let mut n = Netexec::start(cfg);
    let _ = n.stop.take().unwrap().send(());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = get(n.http, "/readyz").await;
    assert_eq!((r.status, r.body.as_str()), (503, "shutting down"));
    assert_eq!(get(n.http, "/healthz").await.status, 200);
    assert_eq!(get(n.http, "/hostname").await.body, "pod-slow");
    assert_eq!(udp_ask(n.udp, "hostname").await.0, "pod-slow");
    assert!(!n.task.is_finished());
    assert_eq!(n.exit().await, Exit(0));
}

#[tokio::test]
async fn idle_keep_alive_connections_do_not_hold_up_shutdown() {
    let n = Netexec::named("pod-k");
    let mut conn = tokio::net::TcpStream::connect(n.http).await.unwrap();
    conn.write_all(b"GET /hostname HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(WAIT, conn.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..read]).ends_with("pod-k"));
    let started = std::time::Instant::now();
    assert_eq!(n.stop().await, Exit(0));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn http_override_answers_every_path_alike() {
    let mut cfg = NetexecConfig::new("pod-o");
    cfg.http_override = Some("/echo?msg=overridden".into());
    let n = Netexec::start(cfg);
    assert_eq!(get(n.http, "/hostname").await.body, "overridden");
    assert_eq!(n.stop().await, Exit(0));
}
