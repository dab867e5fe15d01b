//! The runtime side of CNI: executing plugins and running configuration lists.
//!
//! - [`exec`]: find a plugin binary in the plugin directories and run one command with
//!   only the `CNI_*` variables and `PATH`, JSON on stdin, a timeout, and the result or
//!   error object read from stdout.
//! - [`chain`]: [`ChainRunner`] runs a whole list as libcni does (ADD, DEL, CHECK,
//!   STATUS, GC) and negotiates the version, probing plugins' VERSION.
//! - [`cache`]: the per-attachment ADD result cache that DEL and CHECK read.
//! - [`load`]: picking a network configuration from a CNI config directory.

pub mod cache;
pub mod chain;
pub mod error;
pub mod exec;
pub mod load;

pub use cache::{CachedAttachment, ResultCache};
pub use chain::{Attachment, ChainRunner};
pub use error::InvokeError;
pub use exec::{exec_plugin, find_plugin, RuntimeEnv, DEFAULT_PATH, DEFAULT_TIMEOUT};
pub use load::{config_files, load_conflist, load_conflist_file};
