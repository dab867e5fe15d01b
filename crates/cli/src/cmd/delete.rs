//! `podnet delete -f FILE...` or `podnet delete KIND NAME... [-n NS]`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use podnet_model::{Kind, ObjectRef};

use crate::output;

#[derive(clap::Args)]
pub struct Args {
    /// Kind and names, e.g. `svc web db` (instead of -f).
    targets: Vec<String>,
    /// Delete the objects named in these manifests (files, directories, or -).
    #[arg(short = 'f', long = "filename", num_args = 1..)]
    files: Vec<PathBuf>,
    /// Namespace of the named objects.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// Succeed when an object does not exist.
    #[arg(long)]
    ignore_not_found: bool,
    /// Seconds a pod's containers get after SIGTERM (default: the pod's
    /// terminationGracePeriodSeconds, else 30); 0 deletes at once.
    #[arg(long)]
    grace_period: Option<i64>,
    /// Remove pods from the store at once, without waiting for their node to stop them.
    #[arg(long)]
    force: bool,
    /// Wait until terminating pods are gone (bounded by their grace period + 30 s).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    wait: bool,
}

pub async fn run(store: &str, args: Args) -> anyhow::Result<ExitCode> {
    let refs = targets(&args)?;
    let api = super::api(store).await?;
    let mut code = ExitCode::SUCCESS;
    let opts = podnet_client::delete::DeleteOptions {
        grace_period: args.grace_period,
        force: args.force,
    };
    let deleted = podnet_client::delete::delete(&api, &refs, opts).await?;
    if args.wait {
        let limit =
            std::time::Duration::from_secs(args.grace_period.unwrap_or(30).max(0) as u64 + 30);
        for d in deleted.iter().filter(|d| d.terminating) {
            if !wait_gone(&api, &d.object, limit).await? {
                output::error(&format!(
                    "pod {:?} is still terminating after {limit:?}: is its node's agent running?",
                    d.object.name
                ));
                code = ExitCode::FAILURE;
            }
        }
    }
    for d in deleted {
        let what = format!(
            "{} {:?}",
            d.object.kind.name().to_lowercase(),
            d.object.name
        );
        if d.existed {
            let extra = if d.cascaded > 0 {
                format!(" (and {} object(s) in it)", d.cascaded)
            } else {
                String::new()
            };
            output::line(&format!("{what} deleted{extra}"));
        } else if !args.ignore_not_found {
            output::error(&format!("(NotFound) {what} not found"));
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

/// Polls (bounded) until the object is gone.
async fn wait_gone(
    api: &podnet_store::Api,
    r: &ObjectRef,
    limit: std::time::Duration,
) -> anyhow::Result<bool> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if api
            .get(r.kind, r.namespace.as_deref(), &r.name)
            .await?
            .is_none()
        {
            return Ok(true);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(false)
}

fn targets(args: &Args) -> anyhow::Result<Vec<ObjectRef>> {
    match (args.files.is_empty(), args.targets.as_slice()) {
        (true, []) => bail!("expected -f FILE or KIND NAME..., found neither"),
        (false, []) => {
            let loaded = super::apply::load_all(&args.files)?;
            if let Some(e) = loaded.errors.first() {
                bail!("{e}");
            }
            Ok(loaded
                .manifests
                .iter()
                .map(|m| m.object.object_ref())
                .collect())
        }
        (true, [kind, names @ ..]) => {
            if names.is_empty() {
                bail!("expected KIND NAME..., found a kind without names");
            }
            let kind: Kind = kind.parse()?;
            Ok(names
                .iter()
                .map(|n| ObjectRef::new(kind, Some(&args.namespace), n))
                .collect())
        }
        (false, _) => bail!("expected either -f FILE or KIND NAME..., found both"),
    }
}
