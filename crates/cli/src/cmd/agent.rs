//! `podnet agent --node NAME`: the per-node agent (see crates/agent).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use podnet_agent::cniconf::CniChain;
use podnet_agent::{AgentOptions, CniOptions, NodeIdentity};

#[derive(clap::Args)]
pub struct Args {
    /// The Node this agent runs.
    #[arg(long)]
    node: String,
    /// The node's IP (default: the first IPv4 address of --node-ip-from).
    #[arg(long)]
    node_ip: Option<IpAddr>,
    /// The interface whose address is the node's IP.
    #[arg(long, default_value = "eth0")]
    node_ip_from: String,
    /// Labels for the Node, k=v[,k=v...].
    #[arg(long, value_delimiter = ',')]
    node_labels: Vec<String>,
    /// Leave cross-node routing alone (by default the agent keeps the VXLAN overlay or
    /// the host-gw routes, as the ClusterConfig's overlay mode says).
    #[arg(long)]
    no_routing: bool,
    /// Accepted for compatibility; routing is on unless --no-routing.
    #[arg(long, hide = true)]
    host_gw_routes: bool,
    /// Leave nftables alone: no egress masquerade (`ip podnet`), no anti-spoofing
    /// (`bridge podnet`; kept only with --cni-chain podnet).
    #[arg(long)]
    no_firewall: bool,
    /// Don't run the service proxy (the `ip podnet-proxy` nftables table that gives
    /// ClusterIPs, NodePorts, externalIPs and LoadBalancer IPs their endpoints).
    #[arg(long)]
    no_service_proxy: bool,
    /// Don't serve the `podnet` CNI shim's requests (abstract unix socket
    /// `@podnet-cni` of this network namespace; without a server the shim runs
    /// `podnet-cni` itself, see docs/cni.md).
    #[arg(long)]
    no_cni_server: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9150).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Write the node's CNI conflist here once the node has a pod CIDR.
    #[arg(long)]
    cni_conf_dir: Option<PathBuf>,
    /// The plugin chain of that conflist: `podnet` (podnet-cni, IPAM in the store) or
    /// `reference` (Debian's bridge + host-local).
    #[arg(long, default_value = "reference", value_parser = ["podnet", "reference"])]
    cni_chain: String,
    /// Run the node runtime (lab): pods bound to this node become processes in their
    /// own network namespaces; state (logs, pids, IPAM, CNI cache) lives here.
    #[arg(long)]
    runtime_dir: Option<PathBuf>,
    /// Prefix of the pod network namespaces the runtime creates.
    #[arg(long, default_value = "podnet-")]
    netns_prefix: String,
    /// Directories searched for CNI plugins (CNI_PATH).
    #[arg(long, default_value = "/usr/lib/cni", value_delimiter = ':')]
    cni_bin_dir: Vec<PathBuf>,
    /// The cluster DNS address pods get (default: from the ClusterConfig).
    #[arg(long)]
    cluster_dns: Option<IpAddr>,
}

pub async fn run(store: &str, args: Args) -> anyhow::Result<ExitCode> {
    let api = super::api(store).await?;
    let cfg = podnet_client::apply::stored_config(&api).await?;
    let ip = match args.node_ip {
        Some(ip) => ip,
        None => detect_ip(&args.node_ip_from).await?,
    };
    let labels = args
        .node_labels
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("--node-labels: expected k=v, found {l:?}"))
        })
        .collect::<anyhow::Result<_>>()?;
    let cni = args.cni_conf_dir.clone().map(|conf_dir| CniOptions {
        conf_dir,
        chain: if args.cni_chain == "podnet" {
            CniChain::Podnet {
                store: store.to_string(),
                node: args.node.clone(),
            }
        } else {
            CniChain::Reference
        },
        ipam_dir: args
            .runtime_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/var/lib/podnet"))
            .join("ipam"),
    });
    let runtime = match (&args.runtime_dir, &args.cni_conf_dir) {
        (Some(dir), Some(conf)) => Some(podnet_runtime::RuntimeConfig {
            node_name: args.node.clone(),
            host_ip: ip,
            netns_prefix: args.netns_prefix.clone(),
            cni_conf_dir: conf.clone(),
            cni_plugin_dirs: args.cni_bin_dir.clone(),
            cni_cache_dir: dir.join("cni-cache"),
            state_dir: dir.clone(),
            podnet_exe: std::env::current_exe().context("finding the podnet executable")?,
            dns: podnet_runtime::DnsSettings {
                nameserver: args.cluster_dns.unwrap_or_else(|| cfg.dns_service_ip()),
                cluster_domain: cfg.cluster_domain.clone(),
                ..Default::default()
            },
            node_netns: None,
            max_parallel_sandboxes: 8,
            backoff: podnet_runtime::Backoff::default(),
        }),
        (Some(_), None) => anyhow::bail!(
            "--runtime-dir needs --cni-conf-dir: expected both, found only --runtime-dir"
        ),
        _ => None,
    };
    let opts = AgentOptions {
        node: NodeIdentity {
            name: args.node,
            ip,
            labels,
            annotations: podnet_agent::annotations::published(cfg.overlay.mode, ip),
        },
        cni,
        routing: !args.no_routing,
        masquerade: !args.no_firewall,
        anti_spoofing: !args.no_firewall
            && args.cni_chain == "podnet"
            && args.cni_conf_dir.is_some(),
        cluster: cfg.clone(),
        metrics: args.metrics,
        service_proxy: !args.no_service_proxy,
        runtime,
    };
    let _ = args.host_gw_routes;
    if !args.no_cni_server {
        start_cni_server();
    }
    podnet_agent::run(api, opts, super::controller::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Serves the CNI shim on a thread of its own (each request builds its own runtime,
/// which cannot happen on one of this process's runtime threads).
fn start_cni_server() {
    match podnet_cni::plugin::server::bind() {
        Ok(listener) => {
            let started = std::thread::Builder::new()
                .name("podnet-cni-server".into())
                .spawn(move || {
                    let e = podnet_cni::plugin::server::serve(listener);
                    tracing::error!(error = %e, "the CNI server stopped");
                });
            match started {
                Ok(_) => tracing::info!("serving CNI requests on @podnet-cni"),
                Err(e) => tracing::warn!(error = %e, "not serving CNI requests"),
            }
        }
        Err(e) => tracing::warn!(error = %e, "not serving CNI requests"),
    }
}

async fn detect_ip(dev: &str) -> anyhow::Result<IpAddr> {
    let h = podnet_linux::Handle::current()?;
    h.addresses(dev)
        .await?
        .into_iter()
        .map(|a| a.addr.addr())
        .find(|ip| ip.is_ipv4())
        .with_context(|| format!("--node-ip: {dev} has no IPv4 address; give --node-ip"))
}
