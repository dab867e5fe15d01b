//! agnhost serve-hostname over HTTP, raw TCP and UDP on loopback.

mod common;

use common::{get, udp_ask, WAIT};
use podnet_images::{serve_hostname, Exit, ServeHostnameSockets};
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;

#[tokio::test]
async fn http_answers_the_hostname_on_any_path() {
    for close in [false, true] {
        let listener = common::tcp();
        let addr = listener.local_addr().unwrap();
        let sockets = ServeHostnameSockets {
            http: Some(listener),
            ..Default::default()
        };
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_hostname(sockets, "web-0".into(), close, async {
            let _ = rx.await;
        }));
        let r = get(addr, "/whatever").await;
        assert_eq!((r.status, r.body.as_str()), (200, "web-0"));
        if close {
            assert_eq!(r.header("connection"), Some("close"));
        }
        tx.send(()).unwrap();
        assert_eq!(
            tokio::time::timeout(WAIT, task).await.unwrap().unwrap(),
            Exit(0)
        );
    }
}

#[tokio::test]
async fn raw_tcp_and_udp_on_one_port_number() {
    let tcp = common::tcp();
    let addr = tcp.local_addr().unwrap();
    // The same port number for UDP, as `--tcp --udp --port N` binds.
    let udp = podnet_images::bind_udp(common::LOOPBACK, addr.port(), "test").unwrap();
    let sockets = ServeHostnameSockets {
        tcp: Some(tcp),
        udp: Some(udp),
        http: None,
    };
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_hostname(sockets, "web-1".into(), false, async {
        let _ = rx.await;
    }));

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut got = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, "web-1", "written on accept, then closed");

    assert_eq!(udp_ask(addr, "anything").await.0, "web-1");
    tx.send(()).unwrap();
    assert_eq!(
        tokio::time::timeout(WAIT, task).await.unwrap().unwrap(),
        Exit(0)
    );
}
