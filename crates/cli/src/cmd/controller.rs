//! `podnet controller`: allocators and controllers, leader-elected through the store.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {}

pub async fn run(_store: &str, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the controller is not wired yet")
}
