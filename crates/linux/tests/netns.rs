//! Kernel tests: named namespaces (iproute2-compatible), opening by path,
//! running code inside, and many namespaces quickly.

mod common;

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::time::Instant;

use common::{ip, process_prefix, require_root, unique_name, Namespaces};
use podnet_linux::{netns, NetNs, NetnsError};

#[test]
fn create_list_delete_and_iproute2_sees_them() {
    let mut guard = Namespaces::new();
    let (a, _) = guard.create("list-a");
    let (b, _) = guard.create("list-b");
    assert!(netns::exists(&a) && netns::exists(&b));
    let listed = netns::list_with_prefix(&process_prefix()).unwrap();
    assert!(listed.contains(&a) && listed.contains(&b), "{listed:?}");

    // iproute2 works on what we made: `ip -n NAME` enters it.
    assert!(ip(&a, &["link", "show", "lo"]).contains("lo"));

    netns::delete(&a).unwrap();
    assert!(!netns::exists(&a));
    assert!(!netns::list_with_prefix(&process_prefix())
        .unwrap()
        .contains(&a));
    // Idempotent: deleting again, or a name that never existed, is Ok.
    netns::delete(&a).unwrap();
    netns::delete(&unique_name("never-made")).unwrap();
    assert!(netns::exists(&b));
}

#[test]
fn creating_an_existing_name_fails_clearly() {
    let mut guard = Namespaces::new();
    let (name, _) = guard.create("dup");
    let err = netns::create(&name).unwrap_err();
    assert!(matches!(err, NetnsError::Exists { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("network namespace {name} already exists")
    );
    // The failed create must not have unmounted the first one.
    assert!(netns::exists(&name));
    assert!(matches!(
        netns::create("a/b"),
        Err(NetnsError::InvalidName { .. })
    ));
}

fn inode_of(ns: &NetNs) -> u64 {
    nix::sys::stat::fstat(ns.as_fd()).unwrap().st_ino
}

#[test]
fn run_executes_inside_the_namespace() {
    let mut guard = Namespaces::new();
    let (_, ns) = guard.create("run");
    let host = std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
    let inside = ns
        .run(|| std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino())
        .unwrap();
    assert_eq!(inside, inode_of(&ns));
    assert_ne!(inside, host);
    // The calling thread did not move.
    assert_eq!(
        std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino(),
        host
    );
    // Closures may borrow.
    let names = ["x", "y"];
    assert_eq!(ns.run(|| names.len()).unwrap(), 2);
}

/// `handle()` switches the calling thread into the namespace and back: the
/// thread ends where it started, and the socket stays in the target.
#[tokio::test]
async fn handle_leaves_the_calling_thread_in_its_namespace() {
    let own = || std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
    let mut guard = Namespaces::new();
    let (name_a, a) = guard.create("handle-a");
    let (name_b, b) = guard.create("handle-b");
    // A link that exists only in `a`, made by iproute2 (not by this crate).
    ip(&name_a, &["link", "add", "pnonlya", "type", "bridge"]);
    let index_a = ip(&name_a, &["-o", "link", "show", "pnonlya"]);
    let index_a: u32 = index_a.split(':').next().unwrap().trim().parse().unwrap();

    let before = own();
    assert_ne!(before, inode_of(&a));
    let ha = a.handle().unwrap();
    assert_eq!(own(), before, "handle() left the thread in another netns");
    let hb = b.handle().unwrap();
    assert_eq!(own(), before);

    // Each handle sees its own namespace's links, not the caller's.
    let names = |h: &podnet_linux::Handle| {
        let h = h.clone();
        async move {
            let links = h.links().await.unwrap();
            links.into_iter().map(|l| l.name).collect::<Vec<String>>()
        }
    };
    assert_eq!(
        names(&ha).await,
        ["lo", "pnonlya"],
        "links seen through a's handle"
    );
    assert_eq!(ha.index_of("pnonlya").await.unwrap(), index_a);
    assert_eq!(names(&hb).await, ["lo"], "links seen through b's handle");
    // A change through a handle lands in its namespace, as iproute2 sees it.
    hb.set_up("lo").await.unwrap();
    assert!(ip(&name_b, &["link", "show", "lo"]).contains("UP"));
    assert_eq!(own(), before);

    // The handle works on the namespace file, not its name.
    let by_file = NetNs::from_path(format!("/run/netns/{name_a}")).unwrap();
    netns::delete(&name_a).unwrap();
    // The open file keeps `a` alive: a handle still works after the name went.
    assert!(by_file
        .handle()
        .unwrap()
        .link("pnonlya")
        .await
        .unwrap()
        .is_some());
    assert_eq!(own(), before);
}

#[test]
fn from_path_accepts_namespaces_and_rejects_other_files() {
    let mut guard = Namespaces::new();
    let (name, ns) = guard.create("path");
    let by_run = NetNs::from_path(format!("/run/netns/{name}")).unwrap();
    assert_eq!(inode_of(&by_run), inode_of(&ns));
    assert_eq!(inode_of(&NetNs::open(&name).unwrap()), inode_of(&ns));
    NetNs::from_path("/proc/self/ns/net").unwrap();
    NetNs::current().unwrap();

    let err = NetNs::from_path("/etc/hostname").unwrap_err();
    assert!(matches!(err, NetnsError::NotNetns { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("/etc/hostname is not a network namespace"),
        "{err}"
    );

    let err = NetNs::from_path("/proc/self/ns/mnt").unwrap_err();
    assert_eq!(
        err.to_string(),
        "/proc/self/ns/mnt is not a network namespace: it is a mount namespace"
    );

    let missing = format!("/run/netns/{}", unique_name("missing"));
    let err = NetNs::from_path(&missing).unwrap_err();
    assert!(matches!(err, NetnsError::NotFound { .. }), "{err:?}");
}

#[test]
#[allow(clippy::print_stderr)]
fn two_hundred_namespaces_are_created_and_deleted() {
    require_root();
    let mut guard = Namespaces::new();
    let started = Instant::now();
    let names: Vec<String> = (0..200)
        .map(|i| guard.create(&format!("many{i}")).0)
        .collect();
    let created = started.elapsed();
    for name in &names {
        assert!(netns::exists(name), "{name}");
        netns::delete(name).unwrap();
    }
    let total = started.elapsed();
    eprintln!("200 namespaces: created in {created:?}, created and deleted in {total:?}");
    for name in &names {
        assert!(!netns::exists(name), "{name}");
    }
}
