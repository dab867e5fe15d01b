//! What is allocated: keys, owners, and the in-memory view of every allocation key in
//! the store, with the claims of the batch being planned.

pub mod key;
pub mod ranges;
pub mod view;

pub use key::{AllocKey, Owner, Protocol, ALLOC_PREFIX};
pub use view::{Allocation, Allocations, Claim};
