//! Endpoint selection for one service port, as kube-proxy's `CategorizeEndpoints` does
//! it (without topology hints):
//!
//! - *cluster* endpoints: the ready ones; when none is ready, the ones that are serving
//!   and terminating (so a rolling update that leaves only terminating pods does not
//!   black-hole new connections);
//! - *local* endpoints: the same rule applied to the endpoints on this node.
//!
//! Conditions follow the EndpointSlice API: `ready` unset means ready, `serving` unset
//! means the value of `ready`, `terminating` unset means false.

use std::collections::BTreeSet;

use podnet_model::k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::input::{EndpointInput, SliceInput};

use crate::model::{Backend, Protocol};

/// One endpoint of a service port, with its conditions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Candidate {
    pub backend: Backend,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub local: bool,
}

/// Every endpoint the slices give for the port named `port_name` with `protocol`,
/// deduplicated (an address listed in two slices counts once, ready if either says so).
pub fn candidates<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    port_name: &str,
    protocol: Protocol,
    node: &str,
) -> Vec<Candidate> {
    let inputs: Vec<SliceInput> = slices
        .into_iter()
        .map(|s| SliceInput::new(s, node))
        .collect();
    candidates_of(inputs.iter(), port_name, protocol)
}

/// [`candidates`] of slices already reduced to what is read (for one node).
pub fn candidates_of<'a>(
    slices: impl IntoIterator<Item = &'a SliceInput>,
    port_name: &str,
    protocol: Protocol,
) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for slice in slices {
        if !slice.ipv4 {
            continue;
        }
        let Some(port) = slice
            .ports
            .iter()
            .find(|p| &*p.name == port_name && p.protocol == Some(protocol))
        else {
            continue;
        };
        let Some(number) = port.port else {
            continue;
        };
        for ep in slice.endpoints.iter() {
            let c = candidate(ep, number);
            match out.iter_mut().find(|o| o.backend == c.backend) {
                Some(o) => {
                    o.ready |= c.ready;
                    o.serving |= c.serving;
                    o.terminating &= c.terminating;
                    o.local |= c.local;
                }
                None => out.push(c),
            }
        }
    }
    out.sort();
    out
}

fn candidate(ep: &EndpointInput, port: u16) -> Candidate {
    let ready = ep.ready.unwrap_or(true);
    Candidate {
        backend: Backend { ip: ep.ip, port },
        ready,
        serving: ep.serving.unwrap_or(ready),
        terminating: ep.terminating.unwrap_or(false),
        local: ep.local,
    }
}

/// The backends new connections may use among `candidates` (all of them, or only the
/// local ones): the ready ones, else the serving-and-terminating ones.
pub fn usable(candidates: &[Candidate], local_only: bool) -> BTreeSet<Backend> {
    let scope = || candidates.iter().filter(move |c| !local_only || c.local);
    let ready: BTreeSet<Backend> = scope().filter(|c| c.ready).map(|c| c.backend).collect();
    if !ready.is_empty() {
        return ready;
    }
    scope()
        .filter(|c| c.serving && c.terminating)
        .map(|c| c.backend)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use podnet_model::k8s_openapi::api::discovery::v1::{
        Endpoint, EndpointConditions, EndpointPort,
    };

    fn ep(
        ip: &str,
        node: &str,
        ready: Option<bool>,
        serving: Option<bool>,
        term: Option<bool>,
    ) -> Endpoint {
        Endpoint {
            addresses: vec![ip.into()],
            node_name: Some(node.into()),
            conditions: Some(EndpointConditions {
                ready,
                serving,
                terminating: term,
            }),
            ..Default::default()
        }
    }

    fn slice(eps: Vec<Endpoint>) -> EndpointSlice {
        EndpointSlice {
            address_type: "IPv4".into(),
            endpoints: eps,
            ports: Some(vec![
                EndpointPort {
                    name: Some("http".into()),
                    port: Some(8080),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                },
                EndpointPort {
                    name: Some("dns".into()),
                    port: Some(53),
                    protocol: Some("UDP".into()),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }
    }

    fn ips(set: &BTreeSet<Backend>) -> Vec<String> {
        set.iter().map(|b| format!("{}:{}", b.ip, b.port)).collect()
    }

    #[test]
    fn ready_endpoints_win_over_terminating_ones() {
        let s = slice(vec![
            ep("10.244.1.2", "a", Some(true), None, None),
            ep("10.244.2.2", "b", Some(false), Some(true), Some(true)),
        ]);
        let c = candidates([&s], "http", Protocol::Tcp, "a");
        assert_eq!(ips(&usable(&c, false)), ["10.244.1.2:8080"]);
    }

    #[test]
    fn serving_terminating_endpoints_are_used_when_no_ready_one_is_left() {
        let s = slice(vec![
            ep("10.244.1.2", "a", Some(false), Some(true), Some(true)),
            ep("10.244.2.2", "b", Some(false), Some(false), Some(true)),
            ep("10.244.2.3", "b", Some(false), Some(false), Some(false)),
        ]);
        let c = candidates([&s], "http", Protocol::Tcp, "a");
        assert_eq!(ips(&usable(&c, false)), ["10.244.1.2:8080"]);
    }

    #[test]
    fn local_endpoints_fall_back_separately() {
        let s = slice(vec![
            ep("10.244.1.2", "a", Some(false), Some(true), Some(true)),
            ep("10.244.2.2", "b", Some(true), None, None),
        ]);
        let c = candidates([&s], "http", Protocol::Tcp, "a");
        assert_eq!(ips(&usable(&c, false)), ["10.244.2.2:8080"]);
        assert_eq!(ips(&usable(&c, true)), ["10.244.1.2:8080"]);
        let c = candidates([&s], "http", Protocol::Tcp, "c");
        assert!(usable(&c, true).is_empty());
    }

    #[test]
    fn ports_are_matched_by_name_and_protocol_and_duplicates_merge() {
        let s1 = slice(vec![ep("10.244.1.2", "a", Some(false), None, None)]);
        let s2 = slice(vec![ep("10.244.1.2", "a", Some(true), None, None)]);
        let c = candidates([&s1, &s2], "dns", Protocol::Udp, "a");
        assert_eq!(c.len(), 1);
        assert_eq!(ips(&usable(&c, false)), ["10.244.1.2:53"]);
        assert!(candidates([&s1], "dns", Protocol::Tcp, "a").is_empty());
        assert!(candidates([&s1], "other", Protocol::Tcp, "a").is_empty());
    }

    #[test]
    fn unset_conditions_mean_ready() {
        let mut e = ep("10.244.1.9", "a", None, None, None);
        e.conditions = None;
        let c = candidates([&slice(vec![e])], "http", Protocol::Tcp, "a");
        assert_eq!(ips(&usable(&c, false)), ["10.244.1.9:8080"]);
    }
}
