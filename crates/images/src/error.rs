//! Errors of this crate.

use std::io;
use std::net::SocketAddr;

/// A command line for a built-in image that cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty command line: expected `agnhost <subcommand> ...` or `pause`")]
    Empty,
    #[error("no built-in program named {0:?}: expected agnhost or pause")]
    UnknownProgram(String),
    #[error("agnhost needs a subcommand: expected one of {}", crate::cmd::AGNHOST_SUBCOMMANDS.join(", "))]
    MissingSubcommand,
    #[error("agnhost subcommand {name:?} has no built-in equivalent: expected one of {}", crate::cmd::AGNHOST_SUBCOMMANDS.join(", "))]
    UnsupportedSubcommand { name: String },
    #[error("unknown flag --{0}")]
    UnknownFlag(String),
    #[error("flag --{0} needs a value")]
    MissingValue(String),
    #[error("flag --{flag}: expected {expected}, found {found:?}")]
    InvalidFlag {
        flag: String,
        expected: &'static str,
        found: String,
    },
    #[error("agnhost {command}: expected {expected} positional argument(s), found {found:?}")]
    Positionals {
        command: &'static str,
        expected: usize,
        found: Vec<String>,
    },
    #[error("agnhost {command}: {what} is not supported by the built-in equivalent")]
    Unsupported {
        command: &'static str,
        what: &'static str,
    },
    #[error("agnhost serve-hostname: cannot serve tcp/udp mode and http mode at the same time (add --http=false)")]
    HttpWithRawModes,
}

/// Why a built-in could not run.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("cannot bind the {what} socket on {addr}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the async runtime")]
    Runtime(#[source] io::Error),
    #[error("cannot listen for SIGTERM/SIGINT")]
    Signals(#[source] io::Error),
}
