//! podnet's service proxy (kube-proxy's role), in two pure layers and an edge:
//!
//! - [`model`]: Services + EndpointSlices + this node -> the proxy's *semantic* model:
//!   every frontend (ClusterIP, externalIP, LoadBalancer IP, NodePort on each node
//!   address) with what to do with a new connection (balance over a backend set,
//!   reject, drop), which backends each set holds (ready, else serving-and-terminating;
//!   cluster-wide or node-local), session affinity, masquerade needs, health-check
//!   node ports. Everything kube-proxy decides, nothing about nftables.
//! - `ruleset`: the semantic model -> one nftables table as typed values.
//!
//! See `docs/proxy.md` for the ruleset design and why it is O(1) per packet and
//! O(changes) per update.
#![forbid(unsafe_code)]

pub mod endpoints;
pub mod engine;
pub mod health;
pub mod input;
pub mod maglev;
pub mod model;
pub mod ruleset;
pub mod run;

pub use model::{
    build, Action, Backend, BackendSet, Frontend, FrontendKind, ProxyInput, ProxyModel,
};
