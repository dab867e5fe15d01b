//! What `lab up` prints at the end: nodes, pods, services, and how to go on.

use podnet_client::printer;
use podnet_lab::up::Running;
use podnet_model::Kind;
use podnet_store::Api;

use crate::output;

pub async fn print(lab: &Running) -> anyhow::Result<()> {
    let api = Api::new(podnet_store::open(&lab.store_url).await?);
    let now = jiff::Timestamp::now();
    for (kind, title) in [
        (Kind::Node, "Nodes"),
        (Kind::Pod, "Pods"),
        (Kind::Service, "Services"),
    ] {
        let (objs, _) = api.list(kind, None).await?;
        if objs.is_empty() {
            continue;
        }
        output::line(&format!("\n{title}:"));
        output::out(&printer::table(kind, &objs, true, kind.namespaced(), now));
    }
    let hosts: Vec<String> = lab
        .plan
        .hosts
        .iter()
        .map(|h| format!("{} ({})", h.name, h.ip))
        .collect();
    output::line(&format!("\nHosts: {}", hosts.join(", ")));
    let name = &lab.plan.name;
    let from = if lab.plan.host("external").is_some() {
        "external"
    } else {
        "node-1"
    };
    let target = lab
        .plan
        .nodes()
        .last()
        .map(|n| n.ip.to_string())
        .unwrap_or_default();
    output::line(&format!(
        "\nGo on with:\n  export PODNET_STORE={}\n  podnet get pods -A -o wide\n  podnet exec POD -n NAMESPACE -- ip addr\n  podnet logs POD -n NAMESPACE\n  podnet lab exec --name {name} {from} -- ping -c1 {target}\n  podnet lab check --name {name}\n  podnet lab down --name {name}",
        lab.store_url
    ));
    Ok(())
}
