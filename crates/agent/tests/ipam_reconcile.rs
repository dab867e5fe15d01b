//! The agent's startup IPAM reconcile releases addresses whose pod namespace is gone
//! and keeps the others. Runs in the test's own network namespace (root needed).

use std::sync::Arc;

use podnet_cni::plugin::ipam::Ipam;
use podnet_store::embedded::SqliteStore;
use podnet_store::{Api, Store};

#[test]
fn addresses_of_vanished_namespaces_are_released() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
        })
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "this test needs root (it makes a network namespace)"
    );
    let name = format!("pnag-{}-live", std::process::id());
    let live = podnet_linux::netns::create(&name).expect("creating a test namespace");
    struct Guard(String);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = podnet_linux::netns::delete(&self.0);
        }
    }
    let _guard = Guard(name.clone());
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let live_path = podnet_linux::netns::path_of(&name).display().to_string();
    // The reconcile runs inside the test namespace (its netlink handle is the
    // caller's namespace), never the machine's.
    let released = live
        .run(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let ipam = Ipam::new(store.clone(), "n1");
                let cidr = "10.250.7.0/24".parse().unwrap();
                ipam.allocate(cidr, "alive", "eth0", Some(&live_path), None)
                    .await
                    .unwrap();
                ipam.allocate(
                    cidr,
                    "gone",
                    "eth0",
                    Some("/run/netns/pnag-does-not-exist"),
                    None,
                )
                .await
                .unwrap();
                ipam.allocate(cidr, "unknown", "eth0", None, None)
                    .await
                    .unwrap();
                let n = podnet_agent::ipam_reconcile::reclaim(&Api::new(store.clone()), "n1")
                    .await
                    .unwrap();
                let held: Vec<String> = ipam
                    .attachments()
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|h| h.container_id)
                    .collect();
                (n, held)
            })
        })
        .unwrap();
    assert_eq!(released.0, 1);
    assert_eq!(released.1, ["alive", "unknown"]);
}
