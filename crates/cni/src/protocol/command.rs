//! `CNI_COMMAND`: the operation a runtime asks a plugin to perform.

use std::fmt;
use std::str::FromStr;

/// One CNI operation, as passed in `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Add a container to a network, or apply modifications.
    Add,
    /// Remove a container from a network, or un-apply modifications.
    Del,
    /// Check that a container's networking is as expected.
    Check,
    /// Report whether the plugin is ready to service ADD requests (spec 1.1.0).
    Status,
    /// Clean up resources of attachments not in the given valid set (spec 1.1.0).
    Gc,
    /// Report the spec versions the plugin supports.
    Version,
}

impl Command {
    /// Every command, in the order the spec lists them.
    pub const ALL: [Command; 6] = [
        Command::Add,
        Command::Del,
        Command::Check,
        Command::Status,
        Command::Gc,
        Command::Version,
    ];

    /// The `CNI_COMMAND` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Status => "STATUS",
            Command::Gc => "GC",
            Command::Version => "VERSION",
        }
    }

    /// Whether the command acts on one attachment, and so takes `CNI_CONTAINERID`,
    /// `CNI_NETNS`, `CNI_IFNAME` and `CNI_ARGS`.
    pub fn is_attachment_command(self) -> bool {
        matches!(self, Command::Add | Command::Del | Command::Check)
    }

    /// Whether a successful run must print a result on stdout (ADD and VERSION).
    pub fn requires_output(self) -> bool {
        matches!(self, Command::Add | Command::Version)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `CNI_COMMAND` held something other than the six commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown CNI_COMMAND: expected one of ADD, DEL, CHECK, STATUS, GC, VERSION, found {found:?}"
)]
pub struct UnknownCommand {
    /// The value found.
    pub found: String,
}

impl FromStr for Command {
    type Err = UnknownCommand;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Command::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCommand {
                found: s.to_string(),
            })
    }
}
