//! agnhost porter: values served over HTTP and UDP on loopback.

mod common;

use common::{get, udp_ask, WAIT};
use podnet_images::{serve_porter, Exit, PorterSockets};
use tokio::sync::oneshot;

#[tokio::test]
async fn serves_each_value_on_its_port() {
    for json in [false, true] {
        let (a, b, u) = (common::tcp(), common::tcp(), common::udp());
        let (a_addr, b_addr, u_addr) = (
            a.local_addr().unwrap(),
            b.local_addr().unwrap(),
            u.local_addr().unwrap(),
        );
        let sockets = PorterSockets {
            http: vec![(a, "foo".into()), (b, "bar".into())],
            udp: vec![(u, "baz".into())],
        };
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_porter(sockets, json, async {
            let _ = rx.await;
        }));
        let r = get(a_addr, "/any").await;
        if json {
            assert_eq!(r.body, r#"{"Method":"GET","Body":"foo"}"#);
            assert_eq!(r.header("content-type"), Some("application/json"));
        } else {
            assert_eq!(r.body, "foo");
        }
        assert!(get(b_addr, "/").await.body.contains("bar"));
        assert_eq!(udp_ask(u_addr, "x").await.0, "baz");
        tx.send(()).unwrap();
        assert_eq!(
            tokio::time::timeout(WAIT, task).await.unwrap().unwrap(),
            Exit(0)
        );
    }
}
