//! `podnet lab up [-f lab.yaml] [--name NAME] [MANIFEST...]`

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use podnet_lab::up::{up, Progress, UpOptions};
use podnet_lab::Lab;

use crate::output;

#[derive(clap::Args)]
pub struct Args {
    /// A `podnet.io/v1alpha1 Lab` file (default: 3 nodes, embedded store).
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// The lab's name (overrides the file's); labs with different names coexist.
    #[arg(long)]
    name: Option<String>,
    /// The store: `embedded` (one file) or `etcd` (a 3-member etcd cluster on the
    /// lab's network); overrides the lab file.
    #[arg(long, value_parser = ["embedded", "etcd"])]
    store: Option<String>,
    /// The CNI plugins: `podnet` or `reference` (Debian's bridge + host-local);
    /// overrides the lab file.
    #[arg(long, value_parser = ["podnet", "reference"])]
    cni: Option<String>,
    /// Cross-node routing: `vxlan` (an overlay) or `host-gw` (routes via node IPs);
    /// overrides the lab file's `cluster.overlay.mode`.
    #[arg(long, value_parser = ["vxlan", "host-gw"])]
    overlay: Option<String>,
    /// Seconds to wait for nodes and for pods.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Manifests (files or directories) to apply once the nodes are ready.
    manifests: Vec<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut lab = match &args.file {
        Some(f) => {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            Lab::parse(&text, &f.display().to_string())?
        }
        None => Lab::default(),
    };
    if let Some(n) = &args.name {
        lab.metadata.name = Some(n.clone());
        lab.validate()?;
    }
    match args.store.as_deref() {
        Some("etcd") => lab.spec.store = podnet_lab::config::StoreKind::Etcd,
        Some(_) => lab.spec.store = podnet_lab::config::StoreKind::Embedded,
        None => {}
    }
    match args.cni.as_deref() {
        Some("reference") => lab.spec.cni = podnet_lab::config::CniKind::Reference,
        Some(_) => lab.spec.cni = podnet_lab::config::CniKind::Podnet,
        None => {}
    }
    match args.overlay.as_deref() {
        Some("host-gw") => {
            lab.spec.cluster.overlay.mode = podnet_model::config::OverlayMode::HostGw
        }
        Some(_) => lab.spec.cluster.overlay.mode = podnet_model::config::OverlayMode::Vxlan,
        None => {}
    }
    let loaded = crate::cmd::apply::load_all(&args.manifests)?;
    if !loaded.errors.is_empty() {
        for e in &loaded.errors {
            output::error(&e.to_string());
        }
        anyhow::bail!("the manifests have errors; no lab was built");
    }
    let opts = UpOptions {
        podnet_exe: std::env::current_exe().context("finding the podnet executable")?,
        state_root: super::state_root(),
        timeout: Duration::from_secs(args.timeout),
    };
    let tty = std::io::stderr().is_terminal();
    let mut spin = 0usize;
    let mut report = |p: Progress| match p {
        Progress::Step(what) => {
            if !tty {
                output::note(&format!("  ... {what}"));
            }
        }
        Progress::Done(what, took) => {
            if tty {
                output::note_raw("\r\x1b[2K");
            }
            output::note(&format!("  ✓ {what} ({:.2}s)", took.as_secs_f64()));
        }
        Progress::Waiting { what, ready, total } => {
            if tty {
                const FRAMES: [&str; 4] = ["|", "/", "-", "\\"];
                spin += 1;
                output::note_raw(&format!(
                    "\r\x1b[2K  {} {ready}/{total} {what} ready",
                    FRAMES[spin % 4]
                ));
            }
        }
    };
    output::note(&format!(
        "lab {}: {} node(s)",
        lab.name(),
        lab.nodes().len()
    ));
    let started = std::time::Instant::now();
    let running = up(&lab, loaded.manifests, &opts, &mut report).await.map_err(|e| {
        anyhow::anyhow!("{e}\n(the lab is left as it is for inspection; `podnet lab down --name {}` removes it)", lab.name())
    })?;
    output::note(&format!(
        "lab {} is up in {:.1}s",
        lab.name(),
        started.elapsed().as_secs_f64()
    ));
    super::summary::print(&running).await?;
    super::check::report(&running.plan).await
}
