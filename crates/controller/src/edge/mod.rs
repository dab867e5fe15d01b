//! The effects: informers in, leader election, and transactions out.

pub mod informers;
pub mod leader;
pub mod txn;
pub mod worker;
