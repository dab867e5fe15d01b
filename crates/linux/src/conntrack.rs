//! Connection tracking over ctnetlink: list the IPv4 flows of the current network
//! namespace and delete chosen ones. The service proxy uses it to drop the UDP flows
//! DNATed to an endpoint that went away (a UDP client keeps its 5-tuple, so without
//! this it would keep talking to the dead endpoint until the entry times out: the
//! "DNS black hole"); nothing here ever flushes the whole table.
//!
//! Written by hand over a raw `NETLINK_NETFILTER` socket (netlink-sys): the
//! ctnetlink messages needed are a dump and a delete with a handful of attributes,
//! and no maintained Rust crate encodes them.

use std::io;
use std::net::Ipv4Addr;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const AF_INET: u8 = 2;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;

#[derive(Debug, thiserror::Error)]
pub enum ConntrackError {
    #[error("conntrack {op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("conntrack {op}: malformed netlink answer: {what}")]
    Malformed { op: &'static str, what: String },
}

/// ((frontend address, port), (endpoint address, port)).
pub type AddrPair = ((Ipv4Addr, u16), (Ipv4Addr, u16));

/// One direction of a flow: addresses, protocol number, ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tuple {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

/// A tracked flow: the original direction (as the client sent it) and the reply
/// direction (as the server answers; after DNAT its source is the endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flow {
    pub original: Tuple,
    pub reply: Tuple,
}

impl Flow {
    /// Whether the flow was destination-NATed (the reply comes from another address
    /// or port than the client asked for).
    pub fn dnatted(&self) -> bool {
        self.reply.src != self.original.dst || self.reply.sport != self.original.dport
    }
}

fn socket(op: &'static str) -> Result<Socket, ConntrackError> {
    let io = |source| ConntrackError::Io { op, source };
    let mut s = Socket::new(NETLINK_NETFILTER).map_err(io)?;
    s.bind_auto().map_err(io)?;
    Ok(s)
}

fn header(buf: &mut Vec<u8>, msg: u16, flags: u16, seq: u32) {
    buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched by `finish`
    buf.extend_from_slice(&((NFNL_SUBSYS_CTNETLINK << 8) | msg).to_ne_bytes());
    buf.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&[AF_INET, 0, 0, 0]); // nfgenmsg: family, version, res_id
}

fn finish(buf: &mut [u8]) {
    let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    buf[..4].copy_from_slice(&len.to_ne_bytes());
}

fn attr(buf: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = u16::try_from(4 + payload.len()).unwrap_or(u16::MAX);
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

fn nested(buf: &mut Vec<u8>, ty: u16, inner: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
    inner(buf);
    let len = u16::try_from(buf.len() - start).unwrap_or(u16::MAX);
    buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
}

/// The attributes of `data` as (type without flags, payload).
fn attrs(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([data[0], data[1]]));
        let ty = u16::from_ne_bytes([data[2], data[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > data.len() {
            return None;
        }
        let payload = &data[4..len];
        data = &data[len.next_multiple_of(4).min(data.len())..];
        Some((ty, payload))
    })
}

fn parse_tuple(data: &[u8]) -> Option<Tuple> {
    let (mut src, mut dst, mut proto, mut sport, mut dport) = (None, None, None, 0u16, 0u16);
    for (ty, p) in attrs(data) {
        match ty {
            CTA_TUPLE_IP => {
                for (t, v) in attrs(p) {
                    let addr = <[u8; 4]>::try_from(v).ok().map(Ipv4Addr::from);
                    match t {
                        CTA_IP_V4_SRC => src = addr,
                        CTA_IP_V4_DST => dst = addr,
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for (t, v) in attrs(p) {
                    match (t, v) {
                        (CTA_PROTO_NUM, [n, ..]) => proto = Some(*n),
                        (CTA_PROTO_SRC_PORT, [a, b, ..]) => sport = u16::from_be_bytes([*a, *b]),
                        (CTA_PROTO_DST_PORT, [a, b, ..]) => dport = u16::from_be_bytes([*a, *b]),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Some(Tuple {
        src: src?,
        dst: dst?,
        proto: proto?,
        sport,
        dport,
    })
}

fn parse_flow(payload: &[u8]) -> Option<Flow> {
    let (mut original, mut reply) = (None, None);
    for (ty, p) in attrs(payload.get(4..)?) {
        match ty {
            CTA_TUPLE_ORIG => original = parse_tuple(p),
            CTA_TUPLE_REPLY => reply = parse_tuple(p),
            _ => {}
        }
    }
    Some(Flow {
        original: original?,
        reply: reply?,
    })
}

/// Reads answers until DONE (dumps) or the ACK of `seq`; feeds every data message to
/// `each`. Returns the errno of an error answer.
fn read_answers(
    s: &Socket,
    op: &'static str,
    seq: u32,
    mut each: impl FnMut(&[u8]),
) -> Result<Option<i32>, ConntrackError> {
    loop {
        let (buf, _) = s
            .recv_from_full()
            .map_err(|source| ConntrackError::Io { op, source })?;
        let mut rest = &buf[..];
        while rest.len() >= 16 {
            let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            if len < 16 || len > rest.len() {
                return Err(ConntrackError::Malformed {
                    op,
                    what: format!("message length {len}"),
                });
            }
            let ty = u16::from_ne_bytes([rest[4], rest[5]]);
            let msg_seq = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
            let payload = &rest[16..len];
            rest = &rest[len.next_multiple_of(4).min(rest.len())..];
            if msg_seq != seq {
                continue;
            }
            match ty {
                NLMSG_DONE => return Ok(None),
                NLMSG_ERROR => {
                    let code = payload
                        .get(..4)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .ok_or_else(|| ConntrackError::Malformed {
                            op,
                            what: "short error".into(),
                        })?;
                    return Ok((code != 0).then_some(-code));
                }
                _ => each(payload),
            }
        }
    }
}

/// Every IPv4 flow of the current namespace's conntrack table.
pub fn list() -> Result<Vec<Flow>, ConntrackError> {
    list_on(&socket("list")?)
}

fn list_on(s: &Socket) -> Result<Vec<Flow>, ConntrackError> {
    let op = "list";
    let mut msg = Vec::with_capacity(20);
    header(&mut msg, IPCTNL_MSG_CT_GET, NLM_F_DUMP, 1);
    finish(&mut msg);
    s.send(&msg, 0)
        .map_err(|source| ConntrackError::Io { op, source })?;
    let mut flows = Vec::new();
    if let Some(errno) = read_answers(s, op, 1, |p| flows.extend(parse_flow(p)))? {
        return Err(ConntrackError::Io {
            op,
            source: io::Error::from_raw_os_error(errno),
        });
    }
    Ok(flows)
}

/// Deletes the flow with this original tuple; `Ok(false)` when it was already gone.
pub fn delete(flow: &Flow) -> Result<bool, ConntrackError> {
    delete_on(&socket("delete")?, flow)
}

fn delete_on(s: &Socket, flow: &Flow) -> Result<bool, ConntrackError> {
    let op = "delete";
    let mut msg = Vec::with_capacity(80);
    header(&mut msg, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, 2);
    let t = flow.original;
    nested(&mut msg, CTA_TUPLE_ORIG, |b| {
        nested(b, CTA_TUPLE_IP, |b| {
            attr(b, CTA_IP_V4_SRC, &t.src.octets());
            attr(b, CTA_IP_V4_DST, &t.dst.octets());
        });
        nested(b, CTA_TUPLE_PROTO, |b| {
            attr(b, CTA_PROTO_NUM, &[t.proto]);
            attr(b, CTA_PROTO_SRC_PORT, &t.sport.to_be_bytes());
            attr(b, CTA_PROTO_DST_PORT, &t.dport.to_be_bytes());
        });
    });
    finish(&mut msg);
    s.send(&msg, 0)
        .map_err(|source| ConntrackError::Io { op, source })?;
    match read_answers(s, op, 2, |_| {})? {
        None => Ok(true),
        Some(libc::ENOENT) => Ok(false),
        Some(errno) => Err(ConntrackError::Io {
            op,
            source: io::Error::from_raw_os_error(errno),
        }),
    }
}

/// Deletes the DNATed flows of protocol `proto` that went to one of `pairs`
/// ((frontend address, port) as the client addressed it, (endpoint address, port) that
/// answers): the flows a removed service endpoint leaves behind. Other flows, flows
/// of other frontends to the same endpoint, and flows that reached the endpoint
/// directly stay. Returns how many were deleted.
pub fn delete_dnatted(proto: u8, pairs: &[AddrPair]) -> Result<usize, ConntrackError> {
    if pairs.is_empty() {
        return Ok(0);
    }
    // one socket for the dump and every delete
    let s = socket("delete")?;
    let mut deleted = 0;
    for flow in list_on(&s)? {
        let pair = (
            (flow.original.dst, flow.original.dport),
            (flow.reply.src, flow.reply.sport),
        );
        if flow.original.proto == proto
            && flow.dnatted()
            && pairs.contains(&pair)
            && delete_on(&s, &flow)?
        {
            deleted += 1;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delete_message_carries_the_original_tuple() {
        let mut msg = Vec::new();
        header(&mut msg, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, 7);
        nested(&mut msg, CTA_TUPLE_ORIG, |b| {
            nested(b, CTA_TUPLE_IP, |b| {
                attr(b, CTA_IP_V4_SRC, &[10, 244, 1, 2]);
                attr(b, CTA_IP_V4_DST, &[10, 96, 0, 10]);
            });
            nested(b, CTA_TUPLE_PROTO, |b| {
                attr(b, CTA_PROTO_NUM, &[17]);
                attr(b, CTA_PROTO_SRC_PORT, &40000u16.to_be_bytes());
                attr(b, CTA_PROTO_DST_PORT, &53u16.to_be_bytes());
            });
        });
        finish(&mut msg);
        assert_eq!(
            u32::from_ne_bytes(msg[..4].try_into().unwrap()) as usize,
            msg.len()
        );
        assert_eq!(u16::from_ne_bytes([msg[4], msg[5]]), 0x102);
        let (ty, orig) = attrs(&msg[20..]).next().unwrap();
        assert_eq!(ty, CTA_TUPLE_ORIG);
        let t = parse_tuple(orig).unwrap();
        assert_eq!(
            t,
            Tuple {
                src: [10, 244, 1, 2].into(),
                dst: [10, 96, 0, 10].into(),
                proto: 17,
                sport: 40000,
                dport: 53
            }
        );
    }
}
