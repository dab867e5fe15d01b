//! `podnet lab down [--name NAME]`

use std::process::ExitCode;

use crate::output;

#[derive(clap::Args)]
pub struct Args {
    /// The lab's name.
    #[arg(long, default_value = podnet_lab::config::DEFAULT_NAME)]
    name: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let r = podnet_lab::down::down(&args.name, &super::state_root());
    output::line(&format!(
        "lab {}: stopped {} process(es), removed {} namespace(s)",
        args.name, r.processes, r.namespaces
    ));
    for e in &r.errors {
        output::error(e);
    }
    Ok(if r.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
