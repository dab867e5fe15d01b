//! The built-in programs and their command lines: `agnhost <subcommand> [flags]` and
//! `pause`, parsed like upstream's cobra/pflag command lines, and printed back in a
//! canonical form for the node runtime to exec (`podnet image <argv...>`).

use std::net::IpAddr;
use std::time::Duration;

use crate::error::ParseError;
use crate::flags::{self, format_go_duration, Kind, Parsed};

/// The agnhost subcommands that have a built-in equivalent.
pub const AGNHOST_SUBCOMMANDS: &[&str] =
    &["netexec", "serve-hostname", "porter", "connect", "pause"];

/// A parsed command line of a built-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuiltinCmd {
    /// `agnhost netexec`: HTTP and UDP test servers.
    Netexec(NetexecArgs),
    /// `agnhost serve-hostname`: the hostname over HTTP, or raw over TCP and/or UDP.
    ServeHostname(ServeHostnameArgs),
    /// `agnhost porter`: serves the values of `SERVE_*PORT_<n>` environment variables.
    Porter(PorterArgs),
    /// `agnhost connect host:port`: one connection attempt, exit 0 on success.
    Connect(ConnectArgs),
    /// `agnhost pause` or the `pause` image: waits for SIGTERM/SIGINT.
    Pause(PauseArgs),
}

/// Flags of `agnhost netexec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetexecArgs {
    pub http_port: u16,
    /// `None`: `--udp-port=-1`, no UDP server.
    pub udp_port: Option<u16>,
    /// Accepted but not served: the lab has no SCTP server.
    pub sctp_port: Option<u16>,
    /// Addresses the UDP servers bind; empty: every address.
    pub udp_listen_addresses: Vec<IpAddr>,
    /// Seconds to keep serving after SIGTERM, with `/readyz` answering 503.
    pub delay_shutdown_secs: u64,
    /// Serve every request as if it were a GET of this path and query.
    pub http_override: Option<String>,
}

impl Default for NetexecArgs {
    fn default() -> Self {
        NetexecArgs {
            http_port: 8080,
            udp_port: Some(8081),
            sctp_port: None,
            udp_listen_addresses: Vec::new(),
            delay_shutdown_secs: 0,
            http_override: None,
        }
    }
}

/// Flags of `agnhost serve-hostname`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeHostnameArgs {
    pub port: u16,
    pub tcp: bool,
    pub udp: bool,
    pub http: bool,
    /// Close the connection after each HTTP response.
    pub close: bool,
}

impl Default for ServeHostnameArgs {
    fn default() -> Self {
        ServeHostnameArgs {
            port: 9376,
            tcp: false,
            udp: false,
            http: true,
            close: false,
        }
    }
}

/// Flags of `agnhost porter` (the ports come from the environment when it runs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PorterArgs {
    /// Answer `{"Method": ..., "Body": ...}` instead of the bare value.
    pub json_response: bool,
}

/// The transport of `agnhost connect`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConnectProtocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

/// Arguments of `agnhost connect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectArgs {
    /// `host:port` (`[v6]:port` for IPv6 literals).
    pub target: String,
    /// Zero: no timeout beyond the kernel's, as upstream.
    pub timeout: Duration,
    pub protocol: ConnectProtocol,
    /// The UDP payload (a newline is appended).
    pub udp_data: String,
    pub sctp_data: String,
}

/// Which pause program: they differ only in their name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseProgram {
    Agnhost,
    PauseImage,
}

/// Arguments of the pause programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PauseArgs {
    pub program: PauseProgram,
    /// Seconds to wait after SIGTERM/SIGINT before exiting (agnhost only).
    pub delay_shutdown_secs: u64,
}

/// Parses a built-in's command line: `argv[0]` names the program (`agnhost`, `/agnhost`,
/// `agnhost-2`, `pause`, `/pause`), the rest are its arguments.
pub fn parse_argv(argv: &[String]) -> Result<BuiltinCmd, ParseError> {
    let (program, args) = argv.split_first().ok_or(ParseError::Empty)?;
    match program.rsplit('/').next().unwrap_or(program) {
        "agnhost" | "agnhost-2" => parse_agnhost(args),
        // The pause binary takes no arguments worth honouring (`-v` prints a version).
        "pause" => Ok(BuiltinCmd::Pause(PauseArgs {
            program: PauseProgram::PauseImage,
            delay_shutdown_secs: 0,
        })),
        _ => Err(ParseError::UnknownProgram(program.clone())),
    }
}

fn parse_agnhost(args: &[String]) -> Result<BuiltinCmd, ParseError> {
    let (sub, rest) = args.split_first().ok_or(ParseError::MissingSubcommand)?;
    match sub.as_str() {
        "netexec" => parse_netexec(rest).map(BuiltinCmd::Netexec),
        "serve-hostname" => parse_serve_hostname(rest).map(BuiltinCmd::ServeHostname),
        "porter" => {
            let p = parse_flags("porter", rest, &[("json-response", Kind::Bool)], 0)?;
            Ok(BuiltinCmd::Porter(PorterArgs {
                json_response: p.bool("json-response", false)?,
            }))
        }
        "connect" => parse_connect(rest).map(BuiltinCmd::Connect),
        "pause" => {
            let p = parse_flags("pause", rest, &[("delay-shutdown", Kind::Value)], 0)?;
            Ok(BuiltinCmd::Pause(PauseArgs {
                program: PauseProgram::Agnhost,
                delay_shutdown_secs: seconds(&p, "delay-shutdown")?,
            }))
        }
        s if s.starts_with('-') => Err(ParseError::MissingSubcommand),
        other => Err(ParseError::UnsupportedSubcommand {
            name: other.to_string(),
        }),
    }
}

fn parse_flags(
    command: &'static str,
    args: &[String],
    spec: &[(&'static str, Kind)],
    positionals: usize,
) -> Result<Parsed, ParseError> {
    let p = flags::parse(args, spec)?;
    if p.positionals.len() != positionals {
        return Err(ParseError::Positionals {
            command,
            expected: positionals,
            found: p.positionals.clone(),
        });
    }
    Ok(p)
}

fn parse_netexec(args: &[String]) -> Result<NetexecArgs, ParseError> {
    let spec = [
        ("http-port", Kind::Value),
        ("udp-port", Kind::Value),
        ("sctp-port", Kind::Value),
        ("http-override", Kind::Value),
        ("udp-listen-addresses", Kind::Value),
        ("delay-shutdown", Kind::Value),
        ("tls-cert-file", Kind::Value),
        ("tls-private-key-file", Kind::Value),
    ];
    let p = parse_flags("netexec", args, &spec, 0)?;
    if p.string("tls-cert-file").is_some_and(|f| !f.is_empty()) {
        return Err(ParseError::Unsupported {
            command: "netexec",
            what: "https (--tls-cert-file)",
        });
    }
    let mut udp_listen_addresses = Vec::new();
    for part in p.string("udp-listen-addresses").unwrap_or("").split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let ip: IpAddr = part.parse().map_err(|_| ParseError::InvalidFlag {
            flag: "udp-listen-addresses".into(),
            expected: "a comma-separated list of IP addresses",
            found: part.into(),
        })?;
        udp_listen_addresses.push(ip);
    }
    udp_listen_addresses.sort();
    udp_listen_addresses.dedup();
    Ok(NetexecArgs {
        http_port: port(&p, "http-port", 8080)?.unwrap_or(8080),
        udp_port: port(&p, "udp-port", 8081)?,
        sctp_port: port(&p, "sctp-port", -1)?,
        udp_listen_addresses,
        delay_shutdown_secs: seconds(&p, "delay-shutdown")?,
        http_override: p
            .string("http-override")
            .filter(|s| !s.is_empty())
            .map(String::from),
    })
}

fn parse_serve_hostname(args: &[String]) -> Result<ServeHostnameArgs, ParseError> {
    let spec = [
        ("port", Kind::Value),
        ("tcp", Kind::Bool),
        ("udp", Kind::Bool),
        ("http", Kind::Bool),
        ("close", Kind::Bool),
    ];
    let p = parse_flags("serve-hostname", args, &spec, 0)?;
    let a = ServeHostnameArgs {
        port: port(&p, "port", 9376)?.unwrap_or(9376),
        tcp: p.bool("tcp", false)?,
        udp: p.bool("udp", false)?,
        http: p.bool("http", true)?,
        close: p.bool("close", false)?,
    };
    if a.http && (a.tcp || a.udp) {
        return Err(ParseError::HttpWithRawModes);
    }
    Ok(a)
}

fn parse_connect(args: &[String]) -> Result<ConnectArgs, ParseError> {
    let spec = [
        ("timeout", Kind::Value),
        ("protocol", Kind::Value),
        ("udp-data", Kind::Value),
        ("sctp-data", Kind::Value),
    ];
    let p = parse_flags("connect", args, &spec, 1)?;
    let protocol = match p.string("protocol").unwrap_or("tcp") {
        "" | "tcp" => ConnectProtocol::Tcp,
        "udp" => ConnectProtocol::Udp,
        "sctp" => ConnectProtocol::Sctp,
        other => {
            return Err(ParseError::InvalidFlag {
                flag: "protocol".into(),
                expected: "tcp, udp or sctp",
                found: other.into(),
            })
        }
    };
    Ok(ConnectArgs {
        target: p.positionals[0].clone(),
        timeout: p.duration("timeout")?.unwrap_or(Duration::ZERO),
        protocol,
        udp_data: p.string("udp-data").unwrap_or("hostname").to_string(),
        sctp_data: p.string("sctp-data").unwrap_or("hostname").to_string(),
    })
}

/// A port flag: -1 means "off" (`None`), anything else must be 0-65535.
fn port(p: &Parsed, name: &str, default: i64) -> Result<Option<u16>, ParseError> {
    match p.int(name, default)? {
        -1 => Ok(None),
        n => u16::try_from(n)
            .map(Some)
            .map_err(|_| ParseError::InvalidFlag {
                flag: name.into(),
                expected: "a port number (0-65535, or -1 for none)",
                found: n.to_string(),
            }),
    }
}

fn seconds(p: &Parsed, name: &str) -> Result<u64, ParseError> {
    let n = p.int(name, 0)?;
    u64::try_from(n).map_err(|_| ParseError::InvalidFlag {
        flag: name.into(),
        expected: "a number of seconds (0 or more)",
        found: n.to_string(),
    })
}

impl BuiltinCmd {
    /// The canonical command line of this built-in; [`parse_argv`] reads it back unchanged.
    pub fn argv(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        match self {
            BuiltinCmd::Netexec(a) => {
                v.extend(["agnhost".into(), "netexec".into()]);
                v.push(format!("--http-port={}", a.http_port));
                v.push(format!("--udp-port={}", a.udp_port.map_or(-1, i64::from)));
                if let Some(p) = a.sctp_port {
                    v.push(format!("--sctp-port={p}"));
                }
                if !a.udp_listen_addresses.is_empty() {
                    let ips: Vec<String> = a
                        .udp_listen_addresses
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    v.push(format!("--udp-listen-addresses={}", ips.join(",")));
                }
                if a.delay_shutdown_secs > 0 {
                    v.push(format!("--delay-shutdown={}", a.delay_shutdown_secs));
                }
                if let Some(o) = &a.http_override {
                    v.push(format!("--http-override={o}"));
                }
            }
            BuiltinCmd::ServeHostname(a) => {
                v.extend(["agnhost".into(), "serve-hostname".into()]);
                v.push(format!("--port={}", a.port));
                v.push(format!("--tcp={}", a.tcp));
                v.push(format!("--udp={}", a.udp));
                v.push(format!("--http={}", a.http));
                v.push(format!("--close={}", a.close));
            }
            BuiltinCmd::Porter(a) => {
                v.extend(["agnhost".into(), "porter".into()]);
                v.push(format!("--json-response={}", a.json_response));
            }
            BuiltinCmd::Connect(a) => {
                v.extend(["agnhost".into(), "connect".into(), a.target.clone()]);
                v.push(format!("--timeout={}", format_go_duration(a.timeout)));
                let proto = match a.protocol {
                    ConnectProtocol::Tcp => "tcp",
                    ConnectProtocol::Udp => "udp",
                    ConnectProtocol::Sctp => "sctp",
                };
                v.push(format!("--protocol={proto}"));
                v.push(format!("--udp-data={}", a.udp_data));
                v.push(format!("--sctp-data={}", a.sctp_data));
            }
            BuiltinCmd::Pause(a) => match a.program {
                PauseProgram::PauseImage => v.push("pause".into()),
                PauseProgram::Agnhost => {
                    v.extend(["agnhost".into(), "pause".into()]);
                    v.push(format!("--delay-shutdown={}", a.delay_shutdown_secs));
                }
            },
        }
        v
    }
}
