//! A pod's `/etc/resolv.conf` and `/etc/hosts`, as the kubelet writes them. Pure: the
//! node's resolv.conf comes in as text.

use std::net::IpAddr;

use podnet_model::k8s_openapi::api::core::v1::{PodDNSConfig, PodSpec};

use crate::config::DnsSettings;

/// Kubernetes' limits: at most 3 nameservers, 32 search domains.
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;

/// A parsed or planned resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<String>,
    pub searches: Vec<String>,
    /// `name` or `name:value`.
    pub options: Vec<String>,
}

impl ResolvConf {
    /// Reads the lines that matter (`nameserver`, `search`/`domain`, `options`).
    pub fn parse(text: &str) -> ResolvConf {
        let mut rc = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => rc.nameservers.extend(words.next().map(String::from)),
                Some("search") | Some("domain") => {
                    rc.searches = words.map(String::from).collect();
                }
                Some("options") => rc.options.extend(words.map(String::from)),
                _ => {}
            }
        }
        rc
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for ns in &self.nameservers {
            out.push_str(&format!("nameserver {ns}\n"));
        }
        if !self.searches.is_empty() {
            out.push_str(&format!("search {}\n", self.searches.join(" ")));
        }
        if !self.options.is_empty() {
            out.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        out
    }

    /// Merges a pod's `dnsConfig` the way the kubelet does: nameservers and searches
    /// appended without duplicates, options replaced by name.
    fn merge(&mut self, extra: &PodDNSConfig) {
        for ns in extra.nameservers.iter().flatten() {
            if !self.nameservers.contains(ns) {
                self.nameservers.push(ns.clone());
            }
        }
        for s in extra.searches.iter().flatten() {
            if !self.searches.contains(s) {
                self.searches.push(s.clone());
            }
        }
        for opt in extra.options.iter().flatten() {
            let Some(name) = opt.name.as_deref() else {
                continue;
            };
            let text = match &opt.value {
                Some(v) => format!("{name}:{v}"),
                None => name.to_string(),
            };
            let same = |o: &String| o.split(':').next() == Some(name);
            match self.options.iter_mut().find(|o| same(o)) {
                Some(o) => *o = text,
                None => self.options.push(text),
            }
        }
        self.nameservers.truncate(MAX_NAMESERVERS);
        self.searches.truncate(MAX_SEARCHES);
    }
}

/// The resolv.conf of a pod in `namespace` (not `hostNetwork`).
pub fn pod_resolv_conf(
    spec: &PodSpec,
    namespace: &str,
    dns: &DnsSettings,
    node_resolv_conf: &str,
) -> ResolvConf {
    let mut rc = match spec.dns_policy.as_deref() {
        Some("Default") => ResolvConf::parse(node_resolv_conf),
        Some("None") => ResolvConf::default(),
        // ClusterFirst (the default) and ClusterFirstWithHostNet.
        _ => {
            let d = &dns.cluster_domain;
            ResolvConf {
                nameservers: vec![dns.nameserver.to_string()],
                searches: vec![
                    format!("{namespace}.svc.{d}"),
                    format!("svc.{d}"),
                    d.clone(),
                ],
                options: vec![format!("ndots:{}", dns.ndots)],
            }
        }
    };
    if let Some(extra) = &spec.dns_config {
        rc.merge(extra);
    }
    rc
}

/// The pod's hostname and, with `subdomain`, its FQDN.
pub fn pod_hostnames(
    spec: &PodSpec,
    pod_name: &str,
    namespace: &str,
    domain: &str,
) -> (String, Option<String>) {
    let host = spec
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| pod_name.to_string());
    let fqdn = spec
        .subdomain
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|sub| format!("{host}.{sub}.{namespace}.svc.{domain}"));
    (host, fqdn)
}

/// The kubelet-managed `/etc/hosts` of a pod.
pub fn pod_hosts(
    spec: &PodSpec,
    pod_name: &str,
    namespace: &str,
    domain: &str,
    ips: &[IpAddr],
) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    let (host, fqdn) = pod_hostnames(spec, pod_name, namespace, domain);
    for ip in ips {
        match &fqdn {
            Some(f) => out.push_str(&format!("{ip}\t{f}\t{host}\n")),
            None => out.push_str(&format!("{ip}\t{host}\n")),
        }
    }
    let aliases = spec.host_aliases.iter().flatten();
    let mut first = true;
    for alias in aliases {
        let names = alias.hostnames.clone().unwrap_or_default();
        if names.is_empty() {
            continue;
        }
        if first {
            out.push_str("\n# Entries added by HostAliases.\n");
            first = false;
        }
        out.push_str(&format!("{}\t{}\n", alias.ip, names.join("\t")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use podnet_model::k8s_openapi::api::core::v1::{HostAlias, PodDNSConfigOption};

    #[test]
    fn cluster_first_by_default() {
        let rc = pod_resolv_conf(&PodSpec::default(), "web", &DnsSettings::default(), "");
        assert_eq!(
            rc.render(),
            "nameserver 10.96.0.10\nsearch web.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
        );
    }

    #[test]
    fn default_copies_the_node_and_none_uses_dns_config() {
        let node = "# comment\nnameserver 1.1.1.1\nnameserver 8.8.8.8 # x\nsearch corp.example\noptions edns0\n";
        let spec = PodSpec {
            dns_policy: Some("Default".into()),
            ..PodSpec::default()
        };
        let rc = pod_resolv_conf(&spec, "a", &DnsSettings::default(), node);
        assert_eq!(rc.nameservers, ["1.1.1.1", "8.8.8.8"]);
        assert_eq!(rc.searches, ["corp.example"]);
        assert_eq!(rc.options, ["edns0"]);

        let spec = PodSpec {
            dns_policy: Some("None".into()),
            dns_config: Some(PodDNSConfig {
                nameservers: Some(vec!["192.0.2.53".into()]),
                searches: Some(vec!["x.example".into()]),
                options: Some(vec![PodDNSConfigOption {
                    name: Some("ndots".into()),
                    value: Some("2".into()),
                }]),
            }),
            ..PodSpec::default()
        };
        let rc = pod_resolv_conf(&spec, "a", &DnsSettings::default(), node);
        assert_eq!(
            rc.render(),
            "nameserver 192.0.2.53\nsearch x.example\noptions ndots:2\n"
        );
    }

    #[test]
    fn dns_config_merges_into_cluster_first() {
        let spec = PodSpec {
            dns_config: Some(PodDNSConfig {
                nameservers: Some(vec!["10.96.0.10".into(), "192.0.2.1".into()]),
                searches: Some(vec!["svc.cluster.local".into(), "extra".into()]),
                options: Some(vec![
                    PodDNSConfigOption {
                        name: Some("ndots".into()),
                        value: Some("1".into()),
                    },
                    PodDNSConfigOption {
                        name: Some("edns0".into()),
                        value: None,
                    },
                ]),
            }),
            ..PodSpec::default()
        };
        let rc = pod_resolv_conf(&spec, "ns", &DnsSettings::default(), "");
        assert_eq!(rc.nameservers, ["10.96.0.10", "192.0.2.1"]);
        assert_eq!(
            rc.searches,
            [
                "ns.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "extra"
            ]
        );
        assert_eq!(rc.options, ["ndots:1", "edns0"]);
    }

    #[test]
    fn hosts_file_has_pod_and_aliases() {
        let spec = PodSpec {
            hostname: Some("h".into()),
            subdomain: Some("sub".into()),
            host_aliases: Some(vec![HostAlias {
                ip: "192.0.2.9".into(),
                hostnames: Some(vec!["a.example".into(), "b".into()]),
            }]),
            ..PodSpec::default()
        };
        let hosts = pod_hosts(
            &spec,
            "pod",
            "ns",
            "cluster.local",
            &["10.244.1.5".parse().unwrap()],
        );
        assert!(hosts.contains("127.0.0.1\tlocalhost\n"));
        assert!(hosts.contains("10.244.1.5\th.sub.ns.svc.cluster.local\th\n"));
        assert!(hosts.ends_with("# Entries added by HostAliases.\n192.0.2.9\ta.example\tb\n"));
        let plain = pod_hosts(
            &PodSpec::default(),
            "pod",
            "ns",
            "cluster.local",
            &["10.0.0.1".parse().unwrap()],
        );
        assert!(plain.ends_with("10.0.0.1\tpod\n"));
    }
}
