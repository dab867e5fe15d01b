//! `podnet logs POD [-n NS] [-c CONTAINER] [-f]`: a container's output, as the lab's
//! node runtime keeps it.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::output;

#[derive(clap::Args)]
pub struct Args {
    pod: String,
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// The container (default: the only one, or the first).
    #[arg(short, long)]
    container: Option<String>,
    /// Keep printing new output until interrupted.
    #[arg(short, long)]
    follow: bool,
}

pub async fn run(store: &str, args: Args) -> anyhow::Result<ExitCode> {
    let api = super::api(store).await?;
    let pod = super::get_pod(&api, &args.namespace, &args.pod).await?;
    let spec = pod.spec.clone().unwrap_or_default();
    let container = match &args.container {
        Some(c) => c.clone(),
        None => spec
            .containers
            .first()
            .map(|c| c.name.clone())
            .context("pod has no containers")?,
    };
    let node = spec
        .node_name
        .clone()
        .context("pod is not scheduled to a node yet")?;
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let path =
        find_log(&node, &args.namespace, &args.pod, &uid, &container).with_context(|| {
            format!(
                "no log of container {container:?} of pod {}/{} on this machine",
                args.namespace, args.pod
            )
        })?;
    let mut file =
        std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    output::out(&String::from_utf8_lossy(&buf));
    if args.follow {
        let mut pos = file.stream_position()?;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(pos);
            if len > pos {
                file.seek(SeekFrom::Start(pos))?;
                let mut more = Vec::new();
                file.read_to_end(&mut more)?;
                pos += more.len() as u64;
                output::out(&String::from_utf8_lossy(&more));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The log file in any lab's state of `node`.
fn find_log(node: &str, ns: &str, name: &str, uid: &str, container: &str) -> Option<PathBuf> {
    let root = super::lab::state_root();
    std::fs::read_dir(root)
        .ok()?
        .flatten()
        .map(|lab| {
            podnet_runtime::log_path(
                &lab.path().join("nodes").join(node),
                ns,
                name,
                uid,
                container,
            )
        })
        .find(|p| p.exists())
}
