//! nftables over netlink: typed tables, chains, sets, maps and rules, sent
//! to the kernel as one atomic batch per transaction.
//!
//! - [`model`]: tables, chains, sets/maps, elements, values, verdicts;
//! - [`rule`]: rules as typed statements ([`Stmt`], [`Field`]); the
//!   compiler allocates the kernel's registers, planners never see them;
//! - [`state`]: [`TableState`], the whole content of one table.
//!
//! See `docs/linux.md` ("nftables") for the design.

pub mod model;
pub mod rule;
pub mod state;

pub use model::{
    concat_bytes, concat_len, concat_type_id, ethertype, prefix_bounds, proto, AddrType, BaseChain,
    Chain, ChainType, DataType, ElemData, Element, Family, Hook, Policy, Set, SetData, SetFlags,
    Table, Value, Verdict,
};
pub use rule::{
    ct_state, ct_status, CmpOp, Field, NatData, NatFlags, NatTarget, Reject, Remember, Rule, Stmt,
};
pub use state::{ChainState, SetState, TableState};
