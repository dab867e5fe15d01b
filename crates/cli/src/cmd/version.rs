//! `podnet version`.

use std::process::ExitCode;

use crate::output;

pub fn run() -> anyhow::Result<ExitCode> {
    output::line(&format!(
        "podnet {} (Kubernetes API {}, {} {})",
        env!("CARGO_PKG_VERSION"),
        "v1.33",
        std::env::consts::OS,
        std::env::consts::ARCH
    ));
    Ok(ExitCode::SUCCESS)
}
