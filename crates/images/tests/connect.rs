//! agnhost connect against loopback servers: success, refusal and timeout.

mod common;

use std::time::Duration;

use common::{closed_tcp_port, closed_udp_port, WAIT};
use podnet_images::{connect, run_argv, ConnectArgs, ConnectProtocol, Exit, FailureKind};

fn args(target: String, protocol: ConnectProtocol, timeout_ms: u64) -> ConnectArgs {
    ConnectArgs {
        target,
        timeout: Duration::from_millis(timeout_ms),
        protocol,
        udp_data: "hostname".into(),
        sctp_data: "hostname".into(),
    }
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.expect("bounded wait")
}

#[tokio::test]
async fn tcp_succeeds_and_is_refused() {
    let listener = common::tcp();
    let port = listener.local_addr().unwrap().port();
    let ok = bounded(connect(&args(
        format!("127.0.0.1:{port}"),
        ConnectProtocol::Tcp,
        2000,
    )))
    .await;
    assert_eq!(ok, Ok(()));
    let (accepted, _) = bounded(listener.accept()).await.unwrap();
    drop(accepted);

    let closed = closed_tcp_port();
    let e = bounded(connect(&args(
        format!("127.0.0.1:{closed}"),
        ConnectProtocol::Tcp,
        2000,
    )))
    .await
    .unwrap_err();
    assert_eq!(
        (e.kind, e.report_line()),
        (FailureKind::Refused, "REFUSED".to_string())
    );
}

#[tokio::test]
async fn the_command_line_exits_0_or_1() {
    let listener = common::tcp();
    let port = listener.local_addr().unwrap().port();
    let argv = |target: String| -> Vec<String> {
        vec![
            "agnhost".into(),
            "connect".into(),
            target,
            "--timeout=2s".into(),
            "--protocol=tcp".into(),
        ]
    };
    let never = std::future::pending::<()>();
    let exit = bounded(run_argv(&argv(format!("localhost:{port}")), never))
        .await
        .unwrap();
    assert_eq!(exit, Exit(0));
    let closed = closed_tcp_port();
    let exit = bounded(run_argv(
        &argv(format!("127.0.0.1:{closed}")),
        std::future::pending(),
    ))
    .await;
    assert_eq!(exit.unwrap(), Exit(1));
}

#[tokio::test]
async fn udp_succeeds_is_refused_and_times_out() {
    // A server that answers every datagram, as serve-hostname --udp does.
    let server = common::udp();
    let addr = server.local_addr().unwrap();
    let echo = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        let (n, peer) = server.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hostname\n", "udp-data plus a newline");
        server.send_to(b"pod", peer).await.unwrap();
        server // kept open, silent, for the timeout case
    });
    let ok = bounded(connect(&args(addr.to_string(), ConnectProtocol::Udp, 2000))).await;
    assert_eq!(ok, Ok(()));
    let silent = bounded(echo).await.unwrap();

    let e = bounded(connect(&args(
        silent.local_addr().unwrap().to_string(),
        ConnectProtocol::Udp,
        300,
    )))
    .await
    .unwrap_err();
    assert_eq!(e.kind, FailureKind::Timeout);
    assert!(
        e.report_line().starts_with("TIMEOUT: read udp 127.0.0.1:"),
        "{}",
        e.report_line()
    );

    let closed = closed_udp_port();
    let e = bounded(connect(&args(
        format!("127.0.0.1:{closed}"),
        ConnectProtocol::Udp,
        2000,
    )))
    .await
    .unwrap_err();
    assert_eq!(e.kind, FailureKind::Refused);
    assert!(
        e.report_line().starts_with("REFUSED: "),
        "{}",
        e.report_line()
    );
}
