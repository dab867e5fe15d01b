//! podnet's kernel-facing crate — the only one that talks to the kernel.
//!
//! - [`netns`]: named network namespaces compatible with iproute2
//!   (`/run/netns/NAME`), and [`NetNs`], an open namespace that runs
//!   closures inside itself and hands out netlink [`Handle`]s bound to it;
//! - [`Handle`] (module [`netlink`]): links, addresses, routes, neighbours
//!   and bridge FDB entries over rtnetlink, with [`NetlinkError`]s that name
//!   the operation, the object and the namespace;
//! - [`sysctl`]: `net.*` sysctls of a namespace;
//! - [`nft`]: nftables over netlink — typed tables, sets, maps and rules,
//!   one atomic batch per transaction, and a diff of applied vs desired;
//! - [`model`]: the plain values (desired and observed state) all of the
//!   above speak, comparable with `==`.
//!
//! See `docs/linux.md` for the thread model and the netlink mapping.

pub mod conntrack;
pub mod model;
pub mod netlink;
pub mod netns;
pub mod nft;
mod sys;
pub mod sysctl;

pub use netlink::{Handle, NetlinkError, PendingDelete};
pub use netns::{NetNs, NetnsError};
pub use sysctl::SysctlError;
