//! kubectl-like operations over the store: `apply` (validate, admit, merge, write
//! atomically), `delete` (with namespace cascade), and the tables `get` prints.
#![forbid(unsafe_code)]

pub mod admit;
pub mod apply;
pub mod delete;
pub mod merge;
pub mod printer;

pub use apply::{apply, Action, ApplyError, Outcome};
