//! The Services and EndpointSlices of a run.

use super::*;

pub(crate) fn ip_add(base: Ipv4Addr, k: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + k)
}

pub(crate) fn cluster_ip(i: u32) -> Ipv4Addr {
    ip_add(Ipv4Addr::new(10, 96, 0, 10), i)
}

pub(crate) fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(ns.to_string()),
        ..Default::default()
    }
}

/// Service `i` (namespace ns<i/100>, name svc<i>, ClusterIP 10.96.0.10+i, port http
/// 80 -> 8080) and its slice with two ready endpoints.
pub(crate) fn objects(i: u32, eps: &[Ipv4Addr]) -> (Service, EndpointSlice) {
    let ns = format!("ns{}", i / 100);
    let name = format!("svc{i}");
    let svc = Service {
        metadata: meta(&ns, &name),
        spec: Some(ServiceSpec {
            cluster_ip: Some(cluster_ip(i).to_string()),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                protocol: Some("TCP".into()),
                target_port: Some(IntOrString::Int(8080)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    (svc, slice(&ns, &name, eps))
}

pub(crate) fn slice(ns: &str, svc: &str, eps: &[Ipv4Addr]) -> EndpointSlice {
    let mut m = meta(ns, &format!("{svc}-x"));
    m.labels = Some(BTreeMap::from([(
        "kubernetes.io/service-name".to_string(),
        svc.to_string(),
    )]));
    EndpointSlice {
        metadata: m,
        address_type: "IPv4".into(),
        endpoints: eps
            .iter()
            .map(|ip| Endpoint {
                addresses: vec![ip.to_string()],
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    ..Default::default()
                }),
                node_name: Some("other".into()),
                ..Default::default()
            })
            .collect(),
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            port: Some(8080),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
    }
}

pub(crate) fn real(last: u8) -> [Ipv4Addr; 2] {
    [
        Ipv4Addr::new(10, 244, 2, last),
        Ipv4Addr::new(10, 244, 2, last + 1),
    ]
}
