//! The `podnet-cni` plugin: a CNI 1.1 plugin that attaches a pod to the node bridge with
//! a veth pair and gives it an address of the node's pod CIDR, allocated transactionally
//! in the store.
//!
//! - [`run`] is the whole plugin as a function: the `CNI_*` variables and stdin in, the
//!   text for stdout and the exit code out. The binary only feeds it the process's.
//! - One file per command: [`add`], [`del`], [`check`], [`status`], [`gc`]; VERSION is
//!   answered here.
//! - [`ipam`] keeps allocations in the store, [`dataplane`] makes the links, [`names`]
//!   derives names and addresses, [`context`] reads the Node and ClusterConfig.
//!
//! See docs/cni.md.

pub mod add;
pub mod check;
pub mod config;
pub mod context;
pub mod dataplane;
pub mod del;
pub mod error;
pub mod failpoint;
pub mod gc;
pub mod ipam;
pub mod names;
pub mod server;
pub mod status;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::Path;

use podnet_linux::{NetNs, NetnsError};

pub use config::PodnetConfig;
pub use error::PluginError;

use crate::protocol::{
    AttachmentEnv, Command, HasErrorCode, NetworkConfig, PluginEnv, VersionInfo, CURRENT_VERSION,
};

/// What the plugin prints and how it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The result, version info or error object (empty for a successful DEL, CHECK,
    /// STATUS or GC).
    pub stdout: String,
    /// 0 on success, 1 on error.
    pub exit_code: i32,
}

/// One parsed request.
pub struct Request {
    pub env: PluginEnv,
    pub config: NetworkConfig,
    pub podnet: PodnetConfig,
}

impl Request {
    /// The attachment of ADD, DEL and CHECK (the env parser guarantees one for these).
    pub fn attachment(&self) -> Result<&AttachmentEnv, PluginError> {
        self.env.attachment.as_ref().ok_or_else(|| {
            PluginError::Env(crate::protocol::EnvError::Missing {
                var: "CNI_CONTAINERID",
                expected: "a container id",
                command: self.env.command.to_string(),
            })
        })
    }
}

/// Runs the plugin for the process: environment, stdin, stdout; returns the exit code.
pub fn main() -> i32 {
    let mut input = Vec::new();
    let stdin = std::io::stdin().read_to_end(&mut input).map(|_| input);
    let out = run(std::env::vars_os(), stdin);
    let mut stdout = std::io::stdout().lock();
    if !out.stdout.is_empty() {
        // Nothing useful is left to do when stdout is gone.
        let _ = stdout
            .write_all(out.stdout.as_bytes())
            .and_then(|()| stdout.write_all(b"\n"))
            .and_then(|()| stdout.flush());
    }
    out.exit_code
}

/// The plugin as a function of its inputs.
pub fn run<I, K, V>(vars: I, stdin: std::io::Result<Vec<u8>>) -> Output
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let version = stdin
        .as_ref()
        .ok()
        .and_then(|b| NetworkConfig::peek_version(b).ok().flatten())
        .filter(|v| crate::protocol::version::check_supported(v).is_ok())
        .unwrap_or_else(|| CURRENT_VERSION.to_string());
    match execute(vars, stdin) {
        Ok(stdout) => Output {
            stdout,
            exit_code: 0,
        },
        Err(e) => {
            tracing::debug!(error = %e, "plugin failed");
            Output {
                stdout: e.to_cni_error(&version).to_json(),
                exit_code: 1,
            }
        }
    }
}

fn execute<I, K, V>(vars: I, stdin: std::io::Result<Vec<u8>>) -> Result<String, PluginError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let env = PluginEnv::from_vars(vars)?;
    tracing::debug!(command = %env.command, "request");
    let stdin =
        stdin.map_err(|e| PluginError::Io(format!("reading the configuration from stdin: {e}")))?;
    if env.command == Command::Version {
        let requested = NetworkConfig::peek_version(&stdin).ok().flatten();
        let info = VersionInfo::podnet(requested.as_deref());
        return serde_json::to_string(&info)
            .map_err(|e| PluginError::Io(format!("encoding version info: {e}")));
    }
    let config = NetworkConfig::parse(&stdin)?;
    let version = config
        .spec_version()
        .map_err(|e| PluginError::Config(e.into()))?;
    let allowed = match env.command {
        Command::Check => version.has_check(),
        Command::Status | Command::Gc => version.has_status_and_gc(),
        _ => true,
    };
    if !allowed {
        return Err(PluginError::Version(format!(
            "incompatible cni version: {} needs cniVersion {} or later, found {version}",
            env.command,
            if env.command == Command::Check {
                "0.4.0"
            } else {
                "1.1.0"
            }
        )));
    }
    let podnet = PodnetConfig::from_network_config(&config)?;
    let req = Request {
        env,
        config,
        podnet,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PluginError::Io(format!("starting the async runtime: {e}")))?;
    rt.block_on(async {
        match req.env.command {
            Command::Add => add::add(&req).await.map(|r| r.to_json()),
            Command::Del => del::del(&req).await.map(|()| String::new()),
            Command::Check => check::check(&req).await.map(|()| String::new()),
            Command::Status => status::status(&req).await.map(|()| String::new()),
            Command::Gc => gc::gc(&req).await.map(|()| String::new()),
            Command::Version => Ok(String::new()),
        }
    })
}

/// Opens CNI_NETNS: a missing path is "container unknown" (3), anything but a network
/// namespace is an invalid CNI_NETNS (4).
pub fn open_netns(path: &Path) -> Result<NetNs, PluginError> {
    if !path.exists() {
        return Err(PluginError::NetnsMissing {
            path: path.display().to_string(),
        });
    }
    NetNs::from_path(path).map_err(|e| match e {
        NetnsError::NotFound { .. } => PluginError::NetnsMissing {
            path: path.display().to_string(),
        },
        other => PluginError::NetnsInvalid(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(vars: &[(&str, &str)], stdin: &str) -> (serde_json::Value, i32) {
        let out = run(vars.iter().copied(), Ok(stdin.as_bytes().to_vec()));
        let v = if out.stdout.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&out.stdout).unwrap()
        };
        (v, out.exit_code)
    }

    #[test]
    fn version_and_protocol_errors_need_no_kernel() {
        let (v, code) = run_with(&[("CNI_COMMAND", "VERSION")], r#"{"cniVersion":"0.4.0"}"#);
        assert_eq!(code, 0);
        assert_eq!(v["cniVersion"], "0.4.0");
        assert_eq!(v["supportedVersions"].as_array().unwrap().len(), 5);

        let (v, code) = run_with(&[], "{}");
        assert_eq!((v["code"].as_u64(), code), (Some(4), 1), "{v}");
        assert_eq!(v["cniVersion"], "1.1.0");

        let att = [
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_IFNAME", "eth0"),
        ];
        let (v, _) = run_with(&att, "not json");
        assert_eq!(v["code"], 6, "{v}");
        let (v, _) = run_with(
            &att,
            r#"{"cniVersion":"1.0.0","name":"n","type":"podnet","node":"a"}"#,
        );
        assert_eq!(v["code"], 7, "{v}");
        assert_eq!(
            v["cniVersion"], "1.0.0",
            "errors answer in the request's version"
        );

        let (v, _) = run_with(
            &[("CNI_COMMAND", "STATUS")],
            r#"{"cniVersion":"1.0.0","name":"n","type":"podnet","node":"a","store":"/x"}"#,
        );
        assert_eq!(v["code"], 1, "STATUS is 1.1.0 only: {v}");
        let mut check = att;
        check[0].1 = "CHECK";
        let (v, _) = run_with(
            &check,
            r#"{"cniVersion":"0.3.1","name":"n","type":"podnet","node":"a","store":"/x"}"#,
        );
        assert_eq!(v["code"], 1, "CHECK needs 0.4.0: {v}");

        let out = run(att.iter().copied(), Err(std::io::Error::other("boom")));
        assert!(out.stdout.contains("\"code\":5"), "{out:?}");
    }
}
