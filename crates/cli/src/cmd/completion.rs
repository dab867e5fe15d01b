//! `podnet completion SHELL`: prints a completion script.

use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

#[derive(clap::Args)]
pub struct Args {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: Shell,
}

pub fn run<C: CommandFactory>(args: Args) -> anyhow::Result<ExitCode> {
    let mut cmd = C::command();
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "podnet", &mut buf);
    crate::output::out(&String::from_utf8_lossy(&buf));
    Ok(ExitCode::SUCCESS)
}
