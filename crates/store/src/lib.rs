//! The store: etcd's semantics (revisions, range, watch, leases, compare-and-swap
//! transactions) behind one trait, with two backends - an embedded single-file SQLite
//! database safe for many processes, and etcd - plus typed access to objects.
#![forbid(unsafe_code)]

pub mod api;
pub mod embedded;
pub mod etcd;
pub mod testing;
pub mod typed;
pub mod url;
mod util;

pub use api::*;
pub use typed::{Api, Informer, InformerEvent};
pub use url::{open, open_oneshot, StoreUrl, DEFAULT_EMBEDDED_PATH};
