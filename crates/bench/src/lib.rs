//! Shared pieces of podnet's benchmark programs.
#![forbid(unsafe_code)]

pub mod attribution;
pub mod converge;
pub mod dataplane;
pub mod lab;
pub mod objects;
