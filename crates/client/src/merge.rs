//! What `apply` keeps from the stored object when a manifest replaces it: identity
//! (uid, creation time), and what the cluster filled in that the manifest leaves out
//! (allocated ClusterIPs and NodePorts, a Node's pod CIDR, a Pod's node and status),
//! as kube-apiserver's defaulting and field ownership do for `kubectl apply`.

use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
use podnet_model::k8s_openapi;
use podnet_model::Object;

/// Fills `new` (from a manifest) from `old` (stored). Pure.
pub fn preserve(new: &mut Object, old: &Object) {
    let old_meta = old.meta();
    let meta = new.meta_mut();
    meta.uid = old_meta.uid.clone();
    meta.creation_timestamp = old_meta.creation_timestamp.clone();
    meta.generation = old_meta.generation;
    if meta.deletion_timestamp.is_none() {
        meta.deletion_timestamp = old_meta.deletion_timestamp.clone();
    }
    match (new, old) {
        (Object::Service(n), Object::Service(o)) => {
            if let (Some(ns), Some(os)) = (n.spec.as_mut(), o.spec.as_ref()) {
                preserve_service_spec(ns, os);
            }
            if n.status.is_none() {
                n.status = o.status.clone();
            }
        }
        (Object::Node(n), Object::Node(o)) => {
            let os = o.spec.clone().unwrap_or_default();
            let ns = n.spec.get_or_insert_with(Default::default);
            if ns.pod_cidr.is_none() {
                ns.pod_cidr = os.pod_cidr;
                ns.pod_cidrs = os.pod_cidrs;
            }
            if n.status.is_none() {
                n.status = o.status.clone();
            }
        }
        (Object::Pod(n), Object::Pod(o)) => {
            if let (Some(ns), Some(os)) = (n.spec.as_mut(), o.spec.as_ref()) {
                if ns.node_name.is_none() {
                    ns.node_name = os.node_name.clone();
                }
            }
            if n.status.is_none() {
                n.status = o.status.clone();
            }
        }
        (Object::Namespace(n), Object::Namespace(o)) if n.status.is_none() => {
            n.status = o.status.clone();
        }
        // Everything else is wholly the user's.
        _ => {}
    }
}

fn preserve_service_spec(new: &mut ServiceSpec, old: &ServiceSpec) {
    let same_kind_of_ip = |s: &ServiceSpec| s.type_.as_deref() != Some("ExternalName");
    if new.cluster_ip.as_deref().unwrap_or("").is_empty()
        && same_kind_of_ip(new)
        && same_kind_of_ip(old)
    {
        new.cluster_ip = old.cluster_ip.clone();
        new.cluster_ips = old.cluster_ips.clone();
        if new.ip_families.is_none() {
            new.ip_families = old.ip_families.clone();
        }
        if new.ip_family_policy.is_none() {
            new.ip_family_policy = old.ip_family_policy.clone();
        }
    }
    let wants_node_ports =
        |s: &ServiceSpec| matches!(s.type_.as_deref(), Some("NodePort") | Some("LoadBalancer"));
    if wants_node_ports(new) && wants_node_ports(old) {
        let old_ports = old.ports.as_deref().unwrap_or_default();
        for p in new.ports.iter_mut().flatten() {
            if p.node_port.is_none() {
                p.node_port = matching_port(p, old_ports).and_then(|o| o.node_port);
            }
        }
        if new.health_check_node_port.is_none() {
            new.health_check_node_port = old.health_check_node_port;
        }
    }
}

/// The stored port that is "the same" as `p`: same port number and protocol.
fn matching_port<'a>(p: &ServicePort, old: &'a [ServicePort]) -> Option<&'a ServicePort> {
    let proto = |q: &ServicePort| q.protocol.clone().unwrap_or_else(|| "TCP".into());
    old.iter()
        .find(|o| o.port == p.port && proto(o) == proto(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use podnet_model::manifest::load_str;

    fn obj(y: &str) -> Object {
        load_str(y, "t").manifests.remove(0).object
    }

    #[test]
    fn service_keeps_allocations_and_identity() {
        let mut old = obj("apiVersion: v1\nkind: Service\nmetadata: {name: s, uid: u1, creationTimestamp: '2026-01-01T00:00:00Z'}\nspec:\n  type: NodePort\n  clusterIP: 10.96.0.7\n  clusterIPs: [10.96.0.7]\n  ports: [{port: 80, nodePort: 30080}, {port: 53, protocol: UDP, nodePort: 30053}]\n");
        let mut new = obj("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  type: NodePort\n  ports: [{port: 80}, {port: 53, protocol: UDP, nodePort: 31000}, {port: 443}]\n");
        preserve(&mut new, &old);
        let Object::Service(s) = &new else { panic!() };
        let spec = s.spec.as_ref().unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.7"));
        let ports: Vec<_> = spec.ports.iter().flatten().map(|p| p.node_port).collect();
        assert_eq!(ports, [Some(30080), Some(31000), None]);
        assert_eq!(s.metadata.uid.as_deref(), Some("u1"));
        // Changing to ClusterIP drops the node ports (they are released by the controller).
        old = new.clone();
        let mut back = obj(
            "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 80}]\n",
        );
        preserve(&mut back, &old);
        let Object::Service(s) = &back else { panic!() };
        assert_eq!(
            s.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].node_port,
            None
        );
        assert_eq!(
            s.spec.as_ref().unwrap().cluster_ip.as_deref(),
            Some("10.96.0.7")
        );
    }

    #[test]
    fn pod_keeps_node_and_status_unless_given() {
        let old = obj("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {nodeName: n1, containers: [{name: c}]}\nstatus: {podIP: 10.244.1.5}\n");
        let mut new = obj(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n",
        );
        preserve(&mut new, &old);
        let Object::Pod(p) = &new else { panic!() };
        assert_eq!(p.spec.as_ref().unwrap().node_name.as_deref(), Some("n1"));
        assert_eq!(
            p.status.as_ref().unwrap().pod_ip.as_deref(),
            Some("10.244.1.5")
        );
        let mut given = obj("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\nstatus: {podIP: 10.244.1.9}\n");
        preserve(&mut given, &old);
        let Object::Pod(p) = &given else { panic!() };
        assert_eq!(
            p.status.as_ref().unwrap().pod_ip.as_deref(),
            Some("10.244.1.9")
        );
    }
}
