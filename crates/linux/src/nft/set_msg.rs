//! Encoding of sets (`NFT_MSG_NEWSET`) and their elements.

use super::compile::CompileError;
use super::expr::put_verdict;
use super::model::{concat_type_id, DataType, ElemData, Element, Set, SetData, Table, Value};
use super::wire::*;

/// Bytes of a key or data made of `types`: one field as it is, several
/// padded to 4 bytes each.
pub(crate) fn layout_len(types: &[DataType]) -> usize {
    match types {
        [one] => one.len(),
        many => super::model::concat_len(many),
    }
}

/// The bytes of a key or data made of `values`, laid out as [`layout_len`].
pub(crate) fn layout_bytes(values: &[Value]) -> Vec<u8> {
    match values {
        [one] => one.to_bytes(),
        many => super::model::concat_bytes(many),
    }
}

fn byteorder(types: &[DataType]) -> Option<u32> {
    match types {
        [one] if one.host_order() => Some(1),
        [_] => Some(2),
        _ => None,
    }
}

pub(crate) fn encode_set(
    buf: &mut Buf,
    seq: u32,
    family: u8,
    t: &Table,
    set: &Set,
    set_id: u32,
) -> Result<(), CompileError> {
    let bad = |why: &str| Err(CompileError(format!("set {}: {why}", set.name)));
    if set.key.is_empty() {
        return bad("empty key");
    }
    if set.key.contains(&DataType::Verdict) {
        return bad("a verdict cannot be a key");
    }
    if set.timeout.is_some() && !set.flags.timeout {
        return bad("a default timeout needs flags.timeout");
    }
    let key_len = layout_len(&set.key);
    if super::model::concat_len(&set.key) > 64 {
        return bad("key longer than 64 bytes");
    }
    let concat_interval = set.flags.interval && set.key.len() > 1;
    let mut flags = 0;
    if set.flags.constant {
        flags |= NFT_SET_CONSTANT;
    }
    if set.flags.interval {
        flags |= NFT_SET_INTERVAL;
    }
    if set.data.is_some() {
        flags |= NFT_SET_MAP;
    }
    if set.flags.timeout {
        flags |= NFT_SET_TIMEOUT;
    }
    if set.flags.dynamic {
        flags |= NFT_SET_EVAL;
    }
    if concat_interval {
        flags |= NFT_SET_CONCAT;
    }
    let m = buf.begin_msg(
        nft_type(msg::NEWSET),
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
        seq,
        family,
        0,
    );
    buf.str(NFTA_SET_TABLE, &t.name);
    buf.str(NFTA_SET_NAME, &set.name);
    buf.u32(NFTA_SET_FLAGS, flags);
    buf.u32(NFTA_SET_KEY_TYPE, concat_type_id(&set.key));
    buf.u32(NFTA_SET_KEY_LEN, key_len as u32);
    let mut udata = Vec::new();
    if let Some(order) = byteorder(&set.key) {
        udata.extend_from_slice(&[UDATA_SET_KEYBYTEORDER, 4]);
        udata.extend_from_slice(&order.to_ne_bytes());
    }
    match &set.data {
        None => {}
        Some(SetData::Verdict) => {
            buf.u32(NFTA_SET_DATA_TYPE, NFT_DATA_VERDICT);
        }
        Some(SetData::Values(types)) => {
            if types.is_empty() || types.contains(&DataType::Verdict) {
                return bad("map data must be values (use SetData::Verdict for verdicts)");
            }
            buf.u32(NFTA_SET_DATA_TYPE, concat_type_id(types));
            buf.u32(NFTA_SET_DATA_LEN, layout_len(types) as u32);
            if let Some(order) = byteorder(types) {
                udata.extend_from_slice(&[UDATA_SET_DATABYTEORDER, 4]);
                udata.extend_from_slice(&order.to_ne_bytes());
            }
        }
    }
    if let Some(timeout) = set.timeout {
        buf.u64(NFTA_SET_TIMEOUT, timeout.as_millis() as u64);
    }
    buf.u32(NFTA_SET_ID, set_id);
    if set.size.is_some() || concat_interval {
        let desc = buf.begin_nest(NFTA_SET_DESC);
        if let Some(size) = set.size {
            buf.u32(NFTA_SET_DESC_SIZE, size);
        }
        if concat_interval {
            let concat = buf.begin_nest(NFTA_SET_DESC_CONCAT);
            for t in &set.key {
                let field = buf.begin_nest(NFTA_LIST_ELEM);
                buf.u32(NFTA_SET_FIELD_LEN, t.len() as u32);
                buf.end_nest(field);
            }
            buf.end_nest(concat);
        }
        buf.end_nest(desc);
    }
    if !udata.is_empty() {
        buf.attr(NFTA_SET_USERDATA, &udata);
    }
    buf.end_msg(m);
    Ok(())
}

/// `bytes + 1` as a big-endian number; `None` on overflow.
fn successor(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = bytes.to_vec();
    for b in out.iter_mut().rev() {
        let (v, carry) = b.overflowing_add(1);
        *b = v;
        if !carry {
            return Some(out);
        }
    }
    None
}

/// Append the list entries of one element. Single-field interval sets
/// (the kernel's rbtree) take a start element and an end element flagged
/// `INTERVAL_END` (one past the range, none when the range ends at the
/// top); concatenated interval sets (pipapo) take `KEY_END`.
pub(crate) fn encode_element(buf: &mut Buf, set: &Set, e: &Element, add: bool) {
    let key = layout_bytes(&e.key);
    let elem = buf.begin_nest(NFTA_LIST_ELEM);
    buf.data_value(NFTA_SET_ELEM_KEY, &key);
    let concat_interval = set.flags.interval && set.key.len() > 1;
    if concat_interval {
        let end = e.key_end.as_ref().map(|k| layout_bytes(k));
        buf.data_value(NFTA_SET_ELEM_KEY_END, end.as_deref().unwrap_or(&key));
    }
    if add {
        match &e.data {
            None => {}
            Some(ElemData::Verdict(v)) => put_verdict(buf, NFTA_SET_ELEM_DATA, v),
            Some(ElemData::Values(values)) => {
                buf.data_value(NFTA_SET_ELEM_DATA, &layout_bytes(values))
            }
        }
        if let Some(timeout) = e.timeout {
            buf.u64(NFTA_SET_ELEM_TIMEOUT, timeout.as_millis() as u64);
        }
    }
    buf.end_nest(elem);
    if set.flags.interval && !concat_interval {
        let last = e.key_end.as_ref().map(|k| layout_bytes(k)).unwrap_or(key);
        let end = if set.key[0].host_order() && last.len() == 4 {
            // A host-order integer: one more in host order.
            let v = u32::from_ne_bytes(last[..4].try_into().expect("4 bytes"));
            v.checked_add(1).map(|v| v.to_ne_bytes().to_vec())
        } else {
            successor(&last)
        };
        if let Some(end) = end {
            let elem = buf.begin_nest(NFTA_LIST_ELEM);
            buf.data_value(NFTA_SET_ELEM_KEY, &end);
            buf.u32(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
            buf.end_nest(elem);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_carries_and_overflows() {
        assert_eq!(successor(&[10, 0, 0, 255]), Some(vec![10, 0, 1, 0]));
        assert_eq!(successor(&[255, 255]), None);
    }
}
