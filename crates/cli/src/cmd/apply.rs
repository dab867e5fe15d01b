//! `podnet apply -f FILE|DIR|- ...`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use podnet_client::{apply, ApplyError};
use podnet_model::manifest::{load_path, Loaded};

use crate::output;

#[derive(clap::Args)]
pub struct Args {
    /// Manifest file, directory (all .yaml/.yml/.json in it, recursively) or - for stdin.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    files: Vec<PathBuf>,
}

/// Reads every manifest path, collecting all decode errors.
pub fn load_all(files: &[PathBuf]) -> anyhow::Result<Loaded> {
    let mut all = Loaded::default();
    for f in files {
        let l = load_path(f).with_context(|| format!("reading manifests from {}", f.display()))?;
        all.manifests.extend(l.manifests);
        all.errors.extend(l.errors);
    }
    Ok(all)
}

pub async fn run(store: &str, args: Args) -> anyhow::Result<ExitCode> {
    let loaded = load_all(&args.files)?;
    let api = super::api(store).await?;
    match apply(&api, loaded.manifests, loaded.errors).await {
        Ok(outcomes) => {
            for o in outcomes {
                output::line(&format!(
                    "{}/{} {}",
                    o.object.kind.name().to_lowercase(),
                    o.object.name,
                    o.action.as_str()
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(ApplyError::Invalid(errors)) => {
            for e in &errors {
                for line in e.to_string().lines() {
                    output::error(line);
                }
            }
            let n: usize = errors.iter().map(|e| e.errors.len()).sum();
            output::note(&format!(
                "{n} error(s) in {} object(s); nothing was applied",
                errors.len()
            ));
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}
