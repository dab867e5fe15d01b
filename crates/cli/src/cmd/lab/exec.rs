//! `podnet lab exec HOST -- CMD...`: a command inside a lab host's network namespace.

use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// The lab's name.
    #[arg(long, default_value = podnet_lab::config::DEFAULT_NAME)]
    name: String,
    /// A node name, `external`, `internet` or `router`.
    host: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let plan = load_plan(&args.name)?;
    let host = plan.host(&args.host).with_context(|| {
        let known: Vec<&str> = plan.hosts.iter().map(|h| h.name.as_str()).collect();
        format!(
            "lab {} has no host {:?}: expected one of {}",
            args.name,
            args.host,
            known.join(", ")
        )
    })?;
    super::super::exec::run_in_netns(&host.netns, &args.command)
}

/// The plan of a running lab.
pub fn load_plan(name: &str) -> anyhow::Result<podnet_lab::LabPlan> {
    let file = super::state_root().join(name).join("lab.json");
    let text = std::fs::read(&file)
        .with_context(|| format!("lab {name} is not running (no {})", file.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("reading {}", file.display()))
}
