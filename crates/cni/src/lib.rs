//! The Container Network Interface (CNI) protocol, spec 1.1.0, apart from any plugin logic.
//!
//! Two halves:
//! - [`protocol`]: pure codec and rules. The `CNI_*` environment, network configurations and
//!   configuration lists, results and their conversion between spec versions, error objects,
//!   version negotiation, and the derivation of each plugin's request configuration from a
//!   configuration list. No I/O.
//! - [`invoke`]: the runtime side. Finds and executes plugin binaries with the CNI
//!   environment, runs whole configuration lists the way libcni does (ADD in order with
//!   chained `prevResult`, DEL in reverse, CHECK, STATUS, GC) and caches ADD results.
//!
//! - [`plugin`]: podnet's own plugin, `podnet-cni` (bridge, veth, IPAM in the store).
//!
//! Both podnet's own plugin and the lab's node runtime build on this crate.
#![forbid(unsafe_code)]

/// The `podnet` CNI shim executable (`shim/main.rs`, docs/cni.md "The shim and the
/// plugin server"), for installing it; empty where it is not built (not x86_64).
#[cfg(target_arch = "x86_64")]
pub const SHIM: &[u8] = include_bytes!(env!("PODNET_CNI_SHIM"));
#[cfg(not(target_arch = "x86_64"))]
pub const SHIM: &[u8] = &[];

pub mod install;
pub mod invoke;
pub mod plugin;
pub mod protocol;

pub use invoke::{exec_plugin, load_conflist, Attachment, ChainRunner, InvokeError, RuntimeEnv};
pub use protocol::{
    CniError, CniResult, Command, ErrorCode, NetworkConfig, NetworkConfigList, PluginEnv,
    VersionInfo, SUPPORTED_VERSIONS,
};
