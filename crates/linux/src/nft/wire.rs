//! Netlink framing for nfnetlink: message headers, attributes, nesting, and
//! the nf_tables constants we use (from `<linux/netfilter/nf_tables.h>`,
//! `<linux/netfilter/nfnetlink.h>` and `<linux/netlink.h>`).
//!
//! nf_tables integers in attributes are big-endian (`NLA_BE32`/`NLA_BE64`).

pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
pub(crate) const NLM_F_APPEND: u16 = 0x800;
/// In an error message: extended-ack TLVs follow.
pub(crate) const NLM_F_ACK_TLVS: u16 = 0x200;
pub(crate) const NLMSGERR_ATTR_MSG: u16 = 1;
pub(crate) const NLA_F_NESTED: u16 = 0x8000;

pub(crate) const NFNL_SUBSYS_NFTABLES: u16 = 10;
pub(crate) const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
pub(crate) const NFNL_MSG_BATCH_END: u16 = 0x11;

/// `NFT_MSG_*`.
pub(crate) mod msg {
    pub const NEWTABLE: u16 = 0;
    pub const DELTABLE: u16 = 2;
    pub const NEWCHAIN: u16 = 3;
    pub const DELCHAIN: u16 = 5;
    pub const NEWRULE: u16 = 6;
    pub const DELRULE: u16 = 8;
    pub const NEWSET: u16 = 9;
    pub const DELSET: u16 = 11;
    pub const NEWSETELEM: u16 = 12;
    pub const DELSETELEM: u16 = 14;
}

pub(crate) const NFTA_LIST_ELEM: u16 = 1;

pub(crate) const NFTA_TABLE_NAME: u16 = 1;
pub(crate) const NFTA_TABLE_FLAGS: u16 = 2;

pub(crate) const NFTA_HOOK_HOOKNUM: u16 = 1;
pub(crate) const NFTA_HOOK_PRIORITY: u16 = 2;
pub(crate) const NFTA_HOOK_DEV: u16 = 3;

pub(crate) const NFTA_CHAIN_TABLE: u16 = 1;
pub(crate) const NFTA_CHAIN_NAME: u16 = 3;
pub(crate) const NFTA_CHAIN_HOOK: u16 = 4;
pub(crate) const NFTA_CHAIN_POLICY: u16 = 5;
pub(crate) const NFTA_CHAIN_TYPE: u16 = 7;

pub(crate) const NFTA_RULE_TABLE: u16 = 1;
pub(crate) const NFTA_RULE_CHAIN: u16 = 2;
pub(crate) const NFTA_RULE_EXPRESSIONS: u16 = 4;
pub(crate) const NFTA_RULE_USERDATA: u16 = 7;
/// libnftnl's rule userdata TLV for a comment.
pub(crate) const UDATA_RULE_COMMENT: u8 = 0;

pub(crate) const NFT_SET_CONSTANT: u32 = 0x2;
pub(crate) const NFT_SET_INTERVAL: u32 = 0x4;
pub(crate) const NFT_SET_MAP: u32 = 0x8;
pub(crate) const NFT_SET_TIMEOUT: u32 = 0x10;
pub(crate) const NFT_SET_EVAL: u32 = 0x20;
pub(crate) const NFT_SET_CONCAT: u32 = 0x80;

pub(crate) const NFTA_SET_TABLE: u16 = 1;
pub(crate) const NFTA_SET_NAME: u16 = 2;
pub(crate) const NFTA_SET_FLAGS: u16 = 3;
pub(crate) const NFTA_SET_KEY_TYPE: u16 = 4;
pub(crate) const NFTA_SET_KEY_LEN: u16 = 5;
pub(crate) const NFTA_SET_DATA_TYPE: u16 = 6;
pub(crate) const NFTA_SET_DATA_LEN: u16 = 7;
pub(crate) const NFTA_SET_DESC: u16 = 9;
pub(crate) const NFTA_SET_ID: u16 = 10;
pub(crate) const NFTA_SET_TIMEOUT: u16 = 11;
pub(crate) const NFTA_SET_USERDATA: u16 = 13;
pub(crate) const NFTA_SET_DESC_SIZE: u16 = 1;
pub(crate) const NFTA_SET_DESC_CONCAT: u16 = 2;
pub(crate) const NFTA_SET_FIELD_LEN: u16 = 1;
/// libnftnl's set userdata TLVs: byte order of key and data (1 host, 2 big-endian).
pub(crate) const UDATA_SET_KEYBYTEORDER: u8 = 0;
pub(crate) const UDATA_SET_DATABYTEORDER: u8 = 1;
pub(crate) const NFT_DATA_VERDICT: u32 = 0xffff_ff00;

pub(crate) const NFT_SET_ELEM_INTERVAL_END: u32 = 0x1;
pub(crate) const NFTA_SET_ELEM_KEY: u16 = 1;
pub(crate) const NFTA_SET_ELEM_DATA: u16 = 2;
pub(crate) const NFTA_SET_ELEM_FLAGS: u16 = 3;
pub(crate) const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
pub(crate) const NFTA_SET_ELEM_KEY_END: u16 = 10;
pub(crate) const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
pub(crate) const NFTA_SET_ELEM_LIST_SET: u16 = 2;
pub(crate) const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;

pub(crate) const NFTA_DATA_VALUE: u16 = 1;
pub(crate) const NFTA_DATA_VERDICT: u16 = 2;
pub(crate) const NFTA_VERDICT_CODE: u16 = 1;
pub(crate) const NFTA_VERDICT_CHAIN: u16 = 2;

pub(crate) const NFTA_EXPR_NAME: u16 = 1;
pub(crate) const NFTA_EXPR_DATA: u16 = 2;

/// A netlink message buffer holding any number of messages back to back.
#[derive(Debug, Default)]
pub(crate) struct Buf {
    pub bytes: Vec<u8>,
}

/// Start of an open nest or message: where its length goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark(usize);

impl Buf {
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    fn pad(&mut self) {
        let aligned = self.bytes.len().div_ceil(4) * 4;
        self.bytes.resize(aligned, 0);
    }

    /// Start a message: `nlmsghdr` + `nfgenmsg`. Close it with [`Buf::end_msg`].
    pub fn begin_msg(&mut self, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> Mark {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(&flags.to_ne_bytes());
        self.bytes.extend_from_slice(&seq.to_ne_bytes());
        self.bytes.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
        self.bytes.push(family); // nfgen_family
        self.bytes.push(0); // version NFNETLINK_V0
        self.bytes.extend_from_slice(&res_id.to_be_bytes());
        Mark(start)
    }

    pub fn end_msg(&mut self, mark: Mark) {
        self.pad();
        let len = (self.bytes.len() - mark.0) as u32;
        self.bytes[mark.0..mark.0 + 4].copy_from_slice(&len.to_ne_bytes());
    }

    pub fn attr(&mut self, kind: u16, data: &[u8]) {
        let len = (4 + data.len()) as u16;
        self.bytes.extend_from_slice(&len.to_ne_bytes());
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    /// A NUL-terminated string.
    pub fn str(&mut self, kind: u16, s: &str) {
        let mut data = Vec::with_capacity(s.len() + 1);
        data.extend_from_slice(s.as_bytes());
        data.push(0);
        self.attr(kind, &data);
    }

    pub fn u32(&mut self, kind: u16, v: u32) {
        self.attr(kind, &v.to_be_bytes());
    }

    pub fn u64(&mut self, kind: u16, v: u64) {
        self.attr(kind, &v.to_be_bytes());
    }

    pub fn begin_nest(&mut self, kind: u16) -> Mark {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&0u16.to_ne_bytes());
        self.bytes
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        Mark(start)
    }

    pub fn end_nest(&mut self, mark: Mark) {
        let len = (self.bytes.len() - mark.0) as u16;
        self.bytes[mark.0..mark.0 + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// Bytes written since `mark`.
    pub fn since(&self, mark: Mark) -> usize {
        self.bytes.len() - mark.0
    }

    /// `NFTA_DATA_VALUE` nested in `kind`.
    pub fn data_value(&mut self, kind: u16, value: &[u8]) {
        let nest = self.begin_nest(kind);
        self.attr(NFTA_DATA_VALUE, value);
        self.end_nest(nest);
    }
}

/// The `nlmsg_type` of an nf_tables message.
pub(crate) fn nft_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nests_measured() {
        let mut b = Buf::default();
        let n = b.begin_nest(7);
        b.str(1, "ab");
        b.u32(2, 1);
        b.end_nest(n);
        assert_eq!(
            b.bytes,
            vec![
                20, 0, 7, 0x80, // nest len 20, type 7 | NESTED
                7, 0, 1, 0, b'a', b'b', 0, 0, // "ab\0" + pad
                8, 0, 2, 0, 0, 0, 0, 1, // be32 1
            ]
        );
    }
}
