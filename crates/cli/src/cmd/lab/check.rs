//! `podnet lab check [--name NAME]`: the connectivity report.

use std::process::ExitCode;

use anyhow::Context;
use podnet_client::printer::render;
use podnet_store::Api;

use crate::output;

#[derive(clap::Args)]
pub struct Args {
    /// The lab's name.
    #[arg(long, default_value = podnet_lab::config::DEFAULT_NAME)]
    name: String,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let plan = super::exec::load_plan(&args.name)?;
    report(&plan).await
}

/// Runs the checks and prints the table; failure when any probe failed.
pub async fn report(plan: &podnet_lab::LabPlan) -> anyhow::Result<ExitCode> {
    let url = plan.client_store_url();
    let api = Api::new(podnet_store::open(&url).await?);
    let exe = std::env::current_exe().context("finding the podnet executable")?;
    let outcomes = podnet_lab::check::check_lab(plan, &api, &exe).await?;
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            vec![
                o.probe.check.to_string(),
                o.probe.from.clone(),
                o.probe.to.clone(),
                if o.ok { "pass".into() } else { "FAIL".into() },
                o.detail.clone(),
            ]
        })
        .collect();
    let headers: Vec<String> = ["CHECK", "FROM", "TO", "RESULT", "DETAIL"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    output::line(&format!("\nlab check ({}):", plan.name));
    output::out(&render(&headers, &rows));
    let failed = outcomes.iter().filter(|o| !o.ok).count();
    if outcomes.is_empty() {
        output::line(
            "no probes: the lab has no ready pods yet (apply some and run `podnet lab check`)",
        );
        return Ok(ExitCode::SUCCESS);
    }
    output::line(&format!(
        "{} passed, {failed} failed",
        outcomes.len() - failed
    ));
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
