//! nftables over netlink: typed tables, chains, sets, maps and rules, sent
//! to the kernel as one atomic batch per transaction.
//!
//! - [`model`]: tables, chains, sets/maps, elements, values, verdicts;
//! - [`rule`]: rules as typed statements ([`Stmt`], [`Field`]); the
//!   compiler allocates the kernel's registers, planners never see them;
//! - [`state`]: [`TableState`], the whole content of one table;
//! - [`Batch`] / [`Op`]: a transaction, encoded as one nfnetlink batch;
//! - [`Nft`]: the netlink socket of a namespace; [`Nft::commit`] applies a
//!   batch all-or-nothing and maps an error to the operation that caused it;
//! - [`diff`] / [`Applier`]: the batch from the applied to the desired
//!   state (a full atomic replace at start, only the changes afterwards);
//!   [`TableChange`] / [`Applier::apply_change`] for planners that know
//!   what changed (cost independent of the table's size).
//!
//! See `docs/linux.md` ("nftables") for the design.

mod batch;
mod change;
mod compile;
mod diff;
mod expr;
pub mod model;
pub mod rule;
mod set_msg;
mod socket;
pub mod state;
pub mod value;
mod wire;

pub use batch::{Batch, Op};
pub use change::TableChange;
pub use compile::CompileError;
pub use diff::{diff, full_replace, Applier, Stats};
pub use model::{
    concat_bytes, concat_len, concat_type_id, ethertype, prefix_bounds, proto, AddrType, BaseChain,
    Chain, ChainType, DataType, ElemData, Element, Family, Hook, Policy, Set, SetData, SetFlags,
    Table, Value, Verdict,
};
pub use rule::{
    ct_state, ct_status, CmpOp, Field, NatData, NatFlags, NatTarget, Reject, Remember, Rule, Stmt,
};
pub use socket::{Nft, NftError, Sent};
pub use state::{ChainState, SetState, TableState};
