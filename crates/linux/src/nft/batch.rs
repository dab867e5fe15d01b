//! A transaction: ordered operations, encoded as one nfnetlink batch
//! (`BATCH_BEGIN`, one message per operation or element chunk, each with
//! its own sequence number and `NLM_F_ACK`, `BATCH_END`). The kernel applies
//! all of it or nothing.

use std::fmt;

use super::compile::{compile, CompileError};
use super::model::{Chain, Element, Set, Table};
use super::rule::Rule;
use super::wire::*;

/// Budget for the elements of one message: the nested element list's
/// length is a 16-bit netlink attribute length.
pub(crate) const ELEMENTS_PER_MSG_BYTES: usize = 60_000;

/// One operation of a [`Batch`].
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `add table` (no error if it exists).
    AddTable(Table),
    DeleteTable(Table),
    /// `add chain` (no error if it exists with the same definition).
    AddChain(Table, Chain),
    /// Delete every rule of the chain.
    FlushChain(Table, String),
    DeleteChain(Table, String),
    /// Append a rule to a chain.
    AddRule(Table, String, Rule),
    AddSet(Table, Set),
    DeleteSet(Table, String),
    /// Delete every element.
    FlushSet(Table, String),
    /// Add elements; split into as many messages as needed.
    AddElements(Table, Set, Vec<Element>),
    DeleteElements(Table, Set, Vec<Element>),
}

impl Op {
    fn table(&self) -> &Table {
        match self {
            Op::AddTable(t)
            | Op::DeleteTable(t)
            | Op::AddChain(t, _)
            | Op::FlushChain(t, _)
            | Op::DeleteChain(t, _)
            | Op::AddRule(t, _, _)
            | Op::AddSet(t, _)
            | Op::DeleteSet(t, _)
            | Op::FlushSet(t, _)
            | Op::AddElements(t, _, _)
            | Op::DeleteElements(t, _, _) => t,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.table();
        let table = format!("{} {}", t.family.name(), t.name);
        match self {
            Op::AddTable(_) => write!(f, "adding table {table}"),
            Op::DeleteTable(_) => write!(f, "deleting table {table}"),
            Op::AddChain(_, c) => write!(f, "adding chain {} to table {table}", c.name),
            Op::FlushChain(_, c) => write!(f, "flushing chain {c} of table {table}"),
            Op::DeleteChain(_, c) => write!(f, "deleting chain {c} of table {table}"),
            Op::AddRule(_, c, r) => {
                write!(f, "adding a rule to chain {c} of table {table}")?;
                match &r.comment {
                    Some(comment) => write!(f, " (comment {comment:?})"),
                    None => write!(f, " ({:?})", r.exprs),
                }
            }
            Op::AddSet(_, s) => write!(f, "adding set {} to table {table}", s.name),
            Op::DeleteSet(_, s) => write!(f, "deleting set {s} of table {table}"),
            Op::FlushSet(_, s) => write!(f, "flushing set {s} of table {table}"),
            Op::AddElements(_, s, e) => write!(
                f,
                "adding {} element(s) to set {} of table {table}",
                e.len(),
                s.name
            ),
            Op::DeleteElements(_, s, e) => write!(
                f,
                "deleting {} element(s) from set {} of table {table}",
                e.len(),
                s.name
            ),
        }
    }
}

/// An ordered list of operations, committed as one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub ops: Vec<Op>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    pub fn push(&mut self, op: Op) -> &mut Batch {
        self.ops.push(op);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Encode into one nfnetlink batch with sequence numbers from `seq`.
    pub(crate) fn encode(&self, seq: u32) -> Result<Encoded, (usize, CompileError)> {
        let mut buf = Buf::default();
        let mut messages = Vec::new();
        let begin = buf.begin_msg(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            seq,
            0,
            NFNL_SUBSYS_NFTABLES,
        );
        buf.end_msg(begin);
        let mut next = seq.wrapping_add(1);
        let mut set_id = 0u32;
        for (index, op) in self.ops.iter().enumerate() {
            let mut chunk = |first: Option<&Element>| {
                messages.push(MsgInfo {
                    seq: next,
                    op: index,
                    first_element: first.map(|e| format!("{:?}", e.key)),
                });
                next = next.wrapping_add(1);
                next.wrapping_sub(1)
            };
            let family = op.table().family.nfproto();
            match op {
                Op::AddElements(t, set, elems) | Op::DeleteElements(t, set, elems) => {
                    let add = matches!(op, Op::AddElements(..));
                    let mut rest: &[Element] = elems;
                    while !rest.is_empty() {
                        let s = chunk(rest.first());
                        let used = encode_elements(&mut buf, s, family, t, set, rest, add);
                        rest = &rest[used..];
                    }
                }
                _ => {
                    let s = chunk(None);
                    set_id += 1;
                    encode_op(&mut buf, s, family, op, set_id).map_err(|e| (index, e))?;
                }
            }
        }
        let end = buf.begin_msg(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            next,
            0,
            NFNL_SUBSYS_NFTABLES,
        );
        buf.end_msg(end);
        Ok(Encoded {
            bytes: buf.bytes,
            begin_seq: seq,
            messages,
        })
    }
}

/// An encoded batch and which operation each message carries.
#[derive(Debug)]
pub(crate) struct Encoded {
    pub bytes: Vec<u8>,
    pub begin_seq: u32,
    pub messages: Vec<MsgInfo>,
}

#[derive(Debug)]
pub(crate) struct MsgInfo {
    pub seq: u32,
    pub op: usize,
    /// For element messages: the key of the first element it carries.
    pub first_element: Option<String>,
}

fn encode_op(
    buf: &mut Buf,
    seq: u32,
    family: u8,
    op: &Op,
    set_id: u32,
) -> Result<(), CompileError> {
    let req = NLM_F_REQUEST | NLM_F_ACK;
    let create = req | NLM_F_CREATE;
    match op {
        Op::AddTable(t) | Op::DeleteTable(t) => {
            let (kind, flags) = match op {
                Op::AddTable(_) => (msg::NEWTABLE, create),
                _ => (msg::DELTABLE, req),
            };
            let m = buf.begin_msg(nft_type(kind), flags, seq, family, 0);
            buf.str(NFTA_TABLE_NAME, &t.name);
            if kind == msg::NEWTABLE {
                buf.u32(NFTA_TABLE_FLAGS, 0);
            }
            buf.end_msg(m);
        }
        Op::AddChain(t, chain) => {
            let m = buf.begin_msg(nft_type(msg::NEWCHAIN), create, seq, family, 0);
            buf.str(NFTA_CHAIN_TABLE, &t.name);
            buf.str(NFTA_CHAIN_NAME, &chain.name);
            if let Some(base) = &chain.base {
                let hook = buf.begin_nest(NFTA_CHAIN_HOOK);
                buf.u32(NFTA_HOOK_HOOKNUM, base.hook.number(t.family));
                buf.u32(NFTA_HOOK_PRIORITY, base.priority as u32);
                if let Some(dev) = &base.device {
                    buf.str(NFTA_HOOK_DEV, dev);
                }
                buf.end_nest(hook);
                let policy = match base.policy {
                    super::model::Policy::Accept => 1,
                    super::model::Policy::Drop => 0,
                };
                buf.u32(NFTA_CHAIN_POLICY, policy);
                buf.str(NFTA_CHAIN_TYPE, base.kind.name());
            }
            buf.end_msg(m);
        }
        Op::FlushChain(t, chain) => {
            let m = buf.begin_msg(nft_type(msg::DELRULE), req, seq, family, 0);
            buf.str(NFTA_RULE_TABLE, &t.name);
            buf.str(NFTA_RULE_CHAIN, chain);
            buf.end_msg(m);
        }
        Op::DeleteChain(t, chain) => {
            let m = buf.begin_msg(nft_type(msg::DELCHAIN), req, seq, family, 0);
            buf.str(NFTA_CHAIN_TABLE, &t.name);
            buf.str(NFTA_CHAIN_NAME, chain);
            buf.end_msg(m);
        }
        Op::AddRule(t, chain, rule) => {
            let exprs = compile(t.family, rule)?;
            let m = buf.begin_msg(
                nft_type(msg::NEWRULE),
                create | NLM_F_APPEND,
                seq,
                family,
                0,
            );
            buf.str(NFTA_RULE_TABLE, &t.name);
            buf.str(NFTA_RULE_CHAIN, chain);
            let list = buf.begin_nest(NFTA_RULE_EXPRESSIONS);
            for e in &exprs {
                e.encode(buf);
            }
            buf.end_nest(list);
            if let Some(comment) = &rule.comment {
                let mut text = comment.as_bytes().to_vec();
                text.truncate(254);
                text.push(0);
                let mut udata = vec![UDATA_RULE_COMMENT, text.len() as u8];
                udata.extend_from_slice(&text);
                buf.attr(NFTA_RULE_USERDATA, &udata);
            }
            buf.end_msg(m);
        }
        Op::AddSet(t, set) => super::set_msg::encode_set(buf, seq, family, t, set, set_id)?,
        Op::DeleteSet(t, name) | Op::FlushSet(t, name) => {
            let flush = matches!(op, Op::FlushSet(..));
            let kind = if flush { msg::DELSETELEM } else { msg::DELSET };
            let m = buf.begin_msg(nft_type(kind), req, seq, family, 0);
            if flush {
                buf.str(NFTA_SET_ELEM_LIST_TABLE, &t.name);
                buf.str(NFTA_SET_ELEM_LIST_SET, name);
            } else {
                buf.str(NFTA_SET_TABLE, &t.name);
                buf.str(NFTA_SET_NAME, name);
            }
            buf.end_msg(m);
        }
        Op::AddElements(..) | Op::DeleteElements(..) => unreachable!("encoded in chunks"),
    }
    Ok(())
}

/// One message of elements, as many as fit; returns how many it took (at
/// least one).
fn encode_elements(
    buf: &mut Buf,
    seq: u32,
    family: u8,
    t: &Table,
    set: &Set,
    elems: &[Element],
    add: bool,
) -> usize {
    let (kind, flags) = if add {
        (msg::NEWSETELEM, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE)
    } else {
        (msg::DELSETELEM, NLM_F_REQUEST | NLM_F_ACK)
    };
    let m = buf.begin_msg(nft_type(kind), flags, seq, family, 0);
    buf.str(NFTA_SET_ELEM_LIST_TABLE, &t.name);
    buf.str(NFTA_SET_ELEM_LIST_SET, &set.name);
    let list = buf.begin_nest(NFTA_SET_ELEM_LIST_ELEMENTS);
    let mut used = 0;
    for e in elems {
        let before = buf.len();
        super::set_msg::encode_element(buf, set, e, add);
        if used > 0 && buf.since(list) > ELEMENTS_PER_MSG_BYTES {
            // Too much: this element goes to the next message.
            buf.bytes.truncate(before);
            break;
        }
        used += 1;
    }
    buf.end_nest(list);
    buf.end_msg(m);
    used
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::model::Family;

    fn u32s(v: &[u32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_ne_bytes()).collect()
    }

    #[test]
    fn golden_add_table_batch() {
        let mut b = Batch::new();
        b.push(Op::AddTable(Table::new(Family::Ip, "podnet")));
        let enc = b.encode(100).unwrap();
        let mut want = Vec::new();
        // BATCH_BEGIN: len 20, type 0x10, flags REQUEST, seq 100, pid 0,
        // nfgenmsg {AF_UNSPEC, v0, res_id = htons(NFNL_SUBSYS_NFTABLES)}.
        want.extend(u32s(&[20, 0x0001_0010, 100, 0]));
        want.extend([0, 0, 0, 10]);
        // NEWTABLE: type 0x0a00, flags REQUEST|ACK|CREATE, seq 101, family ip.
        want.extend(u32s(&[40, 0x0405_0a00, 101, 0]));
        want.extend([2, 0, 0, 0]);
        want.extend([11, 0, 1, 0]); // NFTA_TABLE_NAME "podnet\0" + pad
        want.extend(b"podnet\0\0");
        want.extend([8, 0, 2, 0, 0, 0, 0, 0]); // NFTA_TABLE_FLAGS 0
                                               // BATCH_END: type 0x11, seq 102.
        want.extend(u32s(&[20, 0x0001_0011, 102, 0]));
        want.extend([0, 0, 0, 10]);
        assert_eq!(enc.bytes, want);
        assert_eq!(enc.messages.len(), 1);
        assert_eq!(enc.messages[0].seq, 101);
    }

    #[test]
    fn large_element_lists_are_split_under_the_attribute_limit() {
        use crate::nft::model::{DataType, Element, Value};
        let set = Set::new("s", vec![DataType::Ipv4Addr, DataType::InetService]);
        let elems: Vec<Element> = (0..20_000u32)
            .map(|i| {
                Element::key(vec![
                    Value::Ipv4(std::net::Ipv4Addr::from(0x0a00_0000 + i)),
                    Value::Port(80),
                ])
            })
            .collect();
        let mut b = Batch::new();
        b.push(Op::AddElements(Table::new(Family::Ip, "t"), set, elems));
        let enc = b.encode(1).unwrap();
        assert!(enc.messages.len() > 1, "{} messages", enc.messages.len());
        // Every message is small enough for its 16-bit nested length.
        let mut at = 20; // after BATCH_BEGIN
        for _ in &enc.messages {
            let len = u32::from_ne_bytes(enc.bytes[at..at + 4].try_into().unwrap()) as usize;
            assert!(len < 65_535, "message of {len} bytes");
            at += len;
        }
        assert_eq!(at + 20, enc.bytes.len());
    }
}
