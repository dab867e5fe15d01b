//! ctnetlink: list and delete flows inside a namespace of the test's own. The flows
//! are created with the `conntrack` tool (conntrack package), as the kernel would
//! create them for a DNATed UDP client.

mod common;

use std::process::Command;

use common::{require_tool, Namespaces};
use podnet_linux::conntrack;

fn insert(
    ns: &str,
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
    reply_src: &str,
    reply_sport: u16,
) {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "conntrack",
            "-I",
            "-p",
            "udp",
            "-t",
            "120",
        ])
        .args([
            "-s",
            src,
            "-d",
            dst,
            "--sport",
            &sport.to_string(),
            "--dport",
            &dport.to_string(),
        ])
        .args(["--reply-src", reply_src, "--reply-dst", src])
        .args([
            "--reply-port-src",
            &reply_sport.to_string(),
            "--reply-port-dst",
            &sport.to_string(),
        ])
        .output()
        .expect("running conntrack -I");
    assert!(
        out.status.success(),
        "conntrack -I: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn deletes_only_the_dnatted_flows_of_removed_endpoints() {
    require_tool("conntrack", "conntrack");
    let mut nss = Namespaces::new();
    let (name, ns) = nss.create("ct");
    // two clients of a DNS service: one went to the endpoint being removed
    insert(
        &name,
        "10.244.1.2",
        "10.96.0.10",
        40001,
        53,
        "10.244.2.5",
        53,
    );
    insert(
        &name,
        "10.244.1.3",
        "10.96.0.10",
        40002,
        53,
        "10.244.3.5",
        53,
    );
    // a direct (not DNATed) flow to the same endpoint stays
    insert(
        &name,
        "10.244.1.4",
        "10.244.2.5",
        40003,
        53,
        "10.244.2.5",
        53,
    );

    let (before, deleted, after) = ns
        .run(|| {
            let before = conntrack::list().expect("list");
            let pair = (
                ("10.96.0.10".parse().unwrap(), 53),
                ("10.244.2.5".parse().unwrap(), 53),
            );
            let deleted = conntrack::delete_dnatted(17, &[pair]).expect("delete");
            (before, deleted, conntrack::list().expect("list"))
        })
        .expect("entering the namespace");
    assert_eq!(before.len(), 3, "{before:?}");
    assert_eq!(deleted, 1);
    let mut left: Vec<String> = after.iter().map(|f| f.original.src.to_string()).collect();
    left.sort();
    assert_eq!(left, ["10.244.1.3", "10.244.1.4"]);
    // the tool sees the same table
    let out = Command::new("ip")
        .args(["netns", "exec", &name, "conntrack", "-L"])
        .output()
        .expect("conntrack -L");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("src=10.244.1.2 "), "{text}");
    assert!(text.contains("src=10.244.1.3 "), "{text}");
    // deleting a flow that is gone is not an error
    let gone = before
        .iter()
        .find(|f| f.original.src.to_string() == "10.244.1.2")
        .unwrap();
    assert!(!ns.run(|| conntrack::delete(gone).expect("delete")).unwrap());
}
