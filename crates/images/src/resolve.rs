//! What to run for a container: its image, `command` and `args` resolved the way
//! Kubernetes does (`command` replaces the image's ENTRYPOINT, `args` its CMD), then
//! handed to a built-in, to the machine's own binaries, or refused with a reason.

use crate::cmd::{parse_argv, BuiltinCmd, PauseArgs, PauseProgram};
use crate::image_ref::ImageRef;

/// How a container runs in the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A built-in equivalent; exec `podnet image <cmd.argv()...>`.
    Builtin(BuiltinCmd),
    /// The container's command line, run with the machine's own binaries.
    Host { argv: Vec<String> },
    /// Nothing to run; `reason` names the image and what is supported, for a pod event.
    Unknown { reason: String },
}

/// What the lab knows of an image: its ENTRYPOINT and CMD, in effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// ENTRYPOINT `/agnhost`, CMD `pause`.
    Agnhost,
    /// ENTRYPOINT `/pause`.
    Pause,
    /// No ENTRYPOINT; CMD is a shell.
    Shell(&'static str),
    /// curlimages/curl: its entrypoint prefixes `curl` when the first argument is a flag.
    Curl,
}

/// The text of every "unknown" reason: what the lab can run.
pub const SUPPORTED: &str = "built in: agnhost (netexec, serve-hostname, porter, connect, \
pause) and pause; busybox, alpine, debian, ubuntu, nicolaka/netshoot and curlimages/curl run \
their command with the node's own binaries; any other image needs an explicit command";

fn known(image: &ImageRef) -> Option<Known> {
    let name = image.name();
    match image.path.as_str() {
        "nicolaka/netshoot" => return Some(Known::Shell("zsh")),
        "curlimages/curl" => return Some(Known::Curl),
        "alpine" => return Some(Known::Shell("/bin/sh")),
        "debian" => return Some(Known::Shell("bash")),
        "ubuntu" => return Some(Known::Shell("/bin/bash")),
        _ => {}
    }
    match name {
        "agnhost" => Some(Known::Agnhost),
        "pause" => Some(Known::Pause),
        _ if name.starts_with("pause-") => Some(Known::Pause), // pause-amd64
        "busybox" => Some(Known::Shell("sh")),
        _ => None,
    }
}

/// Resolves a container of `image` with the pod's `command` and `args`.
pub fn resolve(image: &str, command: &[String], args: &[String]) -> Resolved {
    let image_ref = ImageRef::parse(image);
    let known = known(&image_ref);
    let argv: Vec<String> = if !command.is_empty() {
        command.iter().chain(args).cloned().collect()
    } else {
        match known {
            Some(Known::Agnhost) if args.is_empty() => vec!["/agnhost".into(), "pause".into()],
            Some(Known::Agnhost) => std::iter::once("/agnhost".into())
                .chain(args.iter().cloned())
                .collect(),
            Some(Known::Pause) => vec!["/pause".into()],
            Some(Known::Shell(shell)) if args.is_empty() => vec![shell.into()],
            Some(Known::Shell(_)) => args.to_vec(),
            Some(Known::Curl) => match args.first() {
                None => vec!["curl".into()],
                Some(first) if first.starts_with('-') => std::iter::once("curl".into())
                    .chain(args.iter().cloned())
                    .collect(),
                Some(_) => args.to_vec(),
            },
            None => {
                let given = if args.is_empty() {
                    "no command"
                } else {
                    "args but no command"
                };
                return Resolved::Unknown {
                    reason: format!(
                        "image {image:?} has no built-in equivalent and the container gives \
                         {given}, so there is nothing to run (the lab runs no container images; \
                         {SUPPORTED})"
                    ),
                };
            }
        }
    };
    classify(image, known, argv)
}

/// Picks who runs a container's final command line.
fn classify(image: &str, known: Option<Known>, argv: Vec<String>) -> Resolved {
    let Some(program) = argv.first().filter(|p| !p.is_empty()) else {
        return Resolved::Unknown {
            reason: format!("image {image:?}: the container's command is empty"),
        };
    };
    let base = program.rsplit('/').next().unwrap_or(program);
    let agnhost = matches!(program.as_str(), "/agnhost" | "/agnhost-2")
        || (known == Some(Known::Agnhost) && matches!(base, "agnhost" | "agnhost-2"));
    if agnhost {
        return match parse_argv(&argv) {
            Ok(cmd) => Resolved::Builtin(cmd),
            Err(e) => Resolved::Unknown {
                reason: format!("image {image:?}: {e}"),
            },
        };
    }
    if program == "/pause" || (known == Some(Known::Pause) && base == "pause") {
        return Resolved::Builtin(BuiltinCmd::Pause(PauseArgs {
            program: PauseProgram::PauseImage,
            delay_shutdown_secs: 0,
        }));
    }
    // `busybox nc ...` / `/bin/busybox nc ...`: run the applet itself.
    if base == "busybox" && argv.len() > 1 {
        return Resolved::Host {
            argv: argv[1..].to_vec(),
        };
    }
    Resolved::Host { argv }
}
