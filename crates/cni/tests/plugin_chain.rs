//! podnet-cni driven by the runtime side of this crate (ChainRunner), the way the lab's
//! node runtime and any libcni runtime call it: a conflist with the `podnet` plugin.

mod plugin_support;

use std::path::PathBuf;

use plugin_support::{ping, Lab};
use podnet_cni::invoke::ChainRunner;
use podnet_cni::protocol::{GcAttachment, NetworkConfigList};
use podnet_cni::Attachment;
use serde_json::json;

#[test]
fn conflist_add_check_status_gc_del() {
    let mut lab = Lab::new(Some("10.244.13.0/24"));
    let pod = lab.pod();
    let bin_dir = lab.dir.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(plugin_support::PLUGIN, bin_dir.join("podnet")).unwrap();
    let list = NetworkConfigList::parse(
        json!({
            "cniVersion": "1.1.0",
            "name": "podnet",
            "plugins": [{
                "type": "podnet",
                "store": lab.db.display().to_string(),
                "node": plugin_support::NODE_NAME,
                "mtu": 1400,
            }]
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let runner = ChainRunner::new(vec![bin_dir.clone()], lab.dir.path().join("cache"))
        .with_exec_prefix(vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            lab.node_ns.clone(),
        ]);
    let att = Attachment::new("chain1", PathBuf::from(&pod), "eth0");
    let result = runner.add_network_list(&list, &att).unwrap();
    assert_eq!(result.ips[0].address.to_string(), "10.244.13.2/24");
    assert_eq!(result.interfaces[2].mtu, Some(1400));
    assert!(ping(Lab::ns_of(&pod), "10.244.13.1"));
    runner.check_network_list(&list, &att).unwrap();
    runner.status_network_list(&list).unwrap();
    runner
        .gc_network_list(
            &list,
            &[GcAttachment {
                container_id: "chain1".into(),
                ifname: "eth0".into(),
            }],
        )
        .unwrap();
    assert_eq!(lab.ipam_keys().len(), 2, "GC released a valid attachment");
    runner.del_network_list(&list, &att).unwrap();
    assert!(lab.ipam_keys().is_empty());
    assert!(lab.node_veths().is_empty());
}
