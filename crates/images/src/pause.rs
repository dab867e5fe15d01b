//! `pause` and `agnhost pause`: do nothing until SIGTERM/SIGINT, then exit 0 (after
//! `--delay-shutdown` seconds, for agnhost's).

use std::future::Future;
use std::time::Duration;

use crate::cmd::PauseArgs;
use crate::Exit;

/// Waits for `shutdown`, then for the delay the arguments ask for.
pub async fn pause(args: &PauseArgs, shutdown: impl Future<Output = ()>) -> Exit {
    tracing::info!(program = ?args.program, "paused");
    shutdown.await;
    if args.delay_shutdown_secs > 0 {
        tracing::info!(seconds = args.delay_shutdown_secs, "sleeping before exit");
        tokio::time::sleep(Duration::from_secs(args.delay_shutdown_secs)).await;
    }
    Exit(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::PauseProgram;

    #[tokio::test(start_paused = true)]
    async fn waits_for_shutdown_then_the_delay() {
        let args = PauseArgs {
            program: PauseProgram::Agnhost,
            delay_shutdown_secs: 3,
        };
        let start = tokio::time::Instant::now();
        let shutdown = tokio::time::sleep(Duration::from_secs(10));
        assert_eq!(pause(&args, shutdown).await, Exit(0));
        assert_eq!(start.elapsed().as_secs(), 13);
    }
}
