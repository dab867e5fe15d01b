//! Synthetic clusters for benchmarks: N Services, each selecting 2 ready Pods.

use podnet_model::manifest::{load_str, Manifest};

/// A namespace, 3 nodes, `services` Services and 2 ready Pods for each.
pub fn cluster(services: usize) -> Vec<Manifest> {
    let mut y = String::with_capacity(services * 900);
    y.push_str("apiVersion: v1\nkind: Namespace\nmetadata: {name: bench}\n");
    for n in 0..3 {
        y.push_str(&format!(
            "---\napiVersion: v1\nkind: Node\nmetadata: {{name: node-{n}}}\nstatus: {{conditions: [{{type: Ready, status: \"True\"}}], addresses: [{{type: InternalIP, address: 172.18.0.{}}}]}}\n",
            n + 2
        ));
    }
    for i in 0..services {
        y.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: svc-{i}, namespace: bench}}\nspec: {{selector: {{app: svc-{i}}}, ports: [{{name: http, port: 80, targetPort: 8080}}]}}\n"
        ));
        for p in 0..2 {
            let ordinal = i * 2 + p;
            let ip = format!("10.244.{}.{}", ordinal / 250, ordinal % 250 + 2);
            y.push_str(&format!(
                "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: svc-{i}-{p}, namespace: bench, labels: {{app: svc-{i}}}}}\nspec: {{nodeName: node-{}, containers: [{{name: c, ports: [{{containerPort: 8080}}]}}]}}\nstatus: {{phase: Running, podIP: {ip}, conditions: [{{type: Ready, status: \"True\"}}]}}\n",
                ordinal % 3
            ));
        }
    }
    let loaded = load_str(&y, "<bench>");
    assert!(
        loaded.errors.is_empty(),
        "generator bug: {:?}",
        loaded.errors.first()
    );
    loaded.manifests
}

#[cfg(test)]
mod tests {
    #[test]
    fn generates_services_and_pods() {
        let m = super::cluster(3);
        assert_eq!(m.len(), 1 + 3 + 3 + 6);
    }
}
