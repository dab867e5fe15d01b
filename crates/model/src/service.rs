//! Facts about Services that several parts need alike (controller, proxy, lab checks):
//! the port protocol, the label that ties EndpointSlices to their Service, and whether
//! a Service's ClusterIP was really allocated.

use std::fmt;

use k8s_openapi::api::core::v1::Service;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The controller's condition on a Service saying whether `spec.clusterIP` was
/// allocated (False: the requested address was refused, the spec only asks for it).
pub const CLUSTER_IP_ALLOCATED: &str = "podnet.io/ClusterIPAllocated";

/// The L4 protocol of a service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// Parses a Kubernetes protocol name; None (unset) is TCP.
    pub fn parse(s: Option<&str>) -> Option<Protocol> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    /// The IP protocol number (`meta l4proto`).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Service's ClusterIP as text when it has a real one: not for headless
/// (`None`) or ExternalName services, not when unset, and not when the controller
/// refused the requested address (condition [`CLUSTER_IP_ALLOCATED`] False).
pub fn allocated_cluster_ip(svc: &Service) -> Option<&str> {
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    let ip = spec
        .cluster_ip
        .as_deref()
        .filter(|ip| !ip.is_empty() && *ip != "None")?;
    let refused = svc
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == CLUSTER_IP_ALLOCATED && c.status == "False");
    (!refused).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_really_allocated_cluster_ips_count() {
        let ok = svc(serde_json::json!({"spec": {"clusterIP": "10.96.0.5"}}));
        assert_eq!(allocated_cluster_ip(&ok), Some("10.96.0.5"));
        let headless = svc(serde_json::json!({"spec": {"clusterIP": "None"}}));
        assert_eq!(allocated_cluster_ip(&headless), None);
        let ext =
            svc(serde_json::json!({"spec": {"type": "ExternalName", "clusterIP": "10.96.0.6"}}));
        assert_eq!(allocated_cluster_ip(&ext), None);
        let refused = svc(serde_json::json!({"spec": {"clusterIP": "10.96.0.7"},
            "status": {"conditions": [{"type": CLUSTER_IP_ALLOCATED, "status": "False",
                "reason": "AlreadyAllocated", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}));
        assert_eq!(allocated_cluster_ip(&refused), None);
    }

    #[test]
    fn protocols() {
        assert_eq!(Protocol::parse(None), Some(Protocol::Tcp));
        assert_eq!(
            Protocol::parse(Some("SCTP")).map(Protocol::number),
            Some(132)
        );
        assert_eq!(Protocol::parse(Some("ICMP")), None);
        assert_eq!(Protocol::Udp.to_string(), "UDP");
    }
}
