//! `podnet`: the command line of the podnet Kubernetes network.
#![forbid(unsafe_code)]

mod cmd;
mod output;

use clap::{Parser, Subcommand};
use podnet_store::DEFAULT_EMBEDDED_PATH;

/// podnet: the Kubernetes network model - pod networking, cross-node routing, Services,
/// DNS and NetworkPolicy - with a kubectl-like command line over its own state store.
#[derive(Parser)]
#[command(
    name = "podnet",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// The state store: a file path (embedded SQLite), sqlite:///PATH, or
    /// etcd://HOST:PORT[,HOST:PORT...].
    #[arg(long, global = true, env = "PODNET_STORE", default_value = DEFAULT_EMBEDDED_PATH)]
    store: String,

    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create or update objects from manifests (YAML or JSON; files, directories, or - for stdin).
    Apply(cmd::apply::Args),
    /// List objects, or show some by name.
    Get(cmd::get::Args),
    /// Delete objects named in manifests or on the command line.
    Delete(cmd::delete::Args),
    /// Run the controllers (allocation, EndpointSlices, scheduling); one instance is active at a time.
    Controller(cmd::controller::Args),
    /// The per-node agent: registers the Node, routes pod CIDRs, runs the lab's node runtime.
    Agent(cmd::agent::Args),
    /// A virtual multi-node cluster from network namespaces: up, down, exec.
    Lab(cmd::lab::Args),
    /// Run a command in a pod's network namespace.
    Exec(cmd::exec::Args),
    /// Print a container's output.
    Logs(cmd::logs::Args),
    /// Print the version.
    Version,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion(cmd::completion::Args),
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> std::process::ExitCode {
    // `podnet image ARGV...` runs a built-in test image (agnhost, pause) in a pod; the
    // lab's node runtime execs it. It has its own runtime and signal handling.
    let argv: Vec<String> = std::env::args().collect();
    // Called as a CNI plugin (`"type": "podnet"` finds this executable in CNI_PATH):
    // the runtime sets CNI_COMMAND and passes no arguments.
    if argv.len() == 1 && std::env::var_os("CNI_COMMAND").is_some() {
        return std::process::ExitCode::from(podnet_cni::plugin::main().clamp(0, 255) as u8);
    }
    if argv.get(1).map(String::as_str) == Some("image") {
        init_logging(0);
        return podnet_images::main_from_args(&argv[2..]);
    }
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            output::error(&format!("cannot start the async runtime: {e}"));
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Apply(a) => cmd::apply::run(&cli.store, a).await,
            Command::Get(a) => cmd::get::run(&cli.store, a).await,
            Command::Delete(a) => cmd::delete::run(&cli.store, a).await,
            Command::Controller(a) => cmd::controller::run(&cli.store, a).await,
            Command::Agent(a) => cmd::agent::run(&cli.store, a).await,
            Command::Lab(a) => cmd::lab::run(a).await,
            Command::Exec(a) => cmd::exec::run(&cli.store, a).await,
            Command::Logs(a) => cmd::logs::run(&cli.store, a).await,
            Command::Version => cmd::version::run(),
            Command::Completion(a) => cmd::completion::run::<Cli>(a),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            output::error(&format!("{e:#}"));
            std::process::ExitCode::FAILURE
        }
    }
}
