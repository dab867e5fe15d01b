//! The nf_tables netlink socket and the transaction: send one batch, read
//! one reply per message, map errors back to the operation that caused them.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};
use nix::sys::time::TimeVal;

use super::batch::Batch;
use super::compile::CompileError;
use super::wire::{NLMSGERR_ATTR_MSG, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK_TLVS};
use crate::netns::{NetNs, NetnsError};

const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;
/// How long to wait for the kernel's replies (it answers as soon as the
/// batch is processed, inside our `send`).
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors of [`Nft`].
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("opening an nf_tables netlink socket in netns {netns}")]
    Socket {
        netns: String,
        #[source]
        source: Errno,
    },
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("{op}: {reason} (nothing was sent)")]
    Invalid {
        op: String,
        #[source]
        reason: CompileError,
    },
    /// The kernel refused an operation; the whole transaction was rolled back.
    #[error("{op} in netns {netns}: {reason}{}", element_note(.element, *.other_errors))]
    Kernel {
        op: String,
        netns: String,
        errno: Errno,
        reason: String,
        /// For element operations: the key of the first element of the
        /// failing message.
        element: Option<String>,
        /// More operations of the same batch that failed too.
        other_errors: usize,
    },
    /// The kernel refused the batch as a whole (permission, memory, commit).
    #[error("nftables transaction in netns {netns}: {reason}")]
    Batch {
        netns: String,
        errno: Errno,
        reason: String,
    },
    /// [`super::Applier::apply_change`] cannot apply this change on what it
    /// knows; apply the full desired state instead.
    #[error("cannot apply the change incrementally: {0}; apply the full desired state")]
    NotIncremental(String),
    #[error("{what} in netns {netns}")]
    Io {
        what: &'static str,
        netns: String,
        #[source]
        source: Errno,
    },
}

fn element_note(element: &Option<String>, others: usize) -> String {
    let mut note = String::new();
    if let Some(e) = element {
        note.push_str(&format!(" (message starting at element {e})"));
    }
    if others > 0 {
        note.push_str(&format!(" (and {others} more failing operation(s))"));
    }
    note
}

impl NftError {
    /// The kernel's errno, when the kernel refused.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            NftError::Kernel { errno, .. } | NftError::Batch { errno, .. } => Some(*errno),
            NftError::Socket { source, .. } | NftError::Io { source, .. } => Some(*source),
            _ => None,
        }
    }
}

/// What a commit sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// Netlink messages, batch begin and end included.
    pub messages: usize,
    pub bytes: usize,
}

/// An nf_tables netlink socket, bound to the network namespace it was
/// opened in (whichever thread uses it later). Blocking: from async code,
/// commit on a blocking thread.
#[derive(Debug)]
pub struct Nft {
    fd: OwnedFd,
    netns: Arc<str>,
    seq: AtomicU32,
    sndbuf: AtomicUsize,
    rcvbuf: AtomicUsize,
    /// One transaction at a time: replies are read in order.
    busy: Mutex<()>,
}

impl Nft {
    /// A socket in the calling thread's namespace.
    pub fn new() -> Result<Nft, NftError> {
        Nft::open("current")
    }

    /// A socket in `ns` (opened on a short-lived thread inside it).
    pub fn in_netns(ns: &NetNs) -> Result<Nft, NftError> {
        let label = ns.label().to_string();
        ns.run(move || Nft::open(&label))?
    }

    fn open(label: &str) -> Result<Nft, NftError> {
        let err = |source| NftError::Socket {
            netns: label.to_string(),
            source,
        };
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )
        .map_err(err)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(err)?;
        crate::sys::netlink_flag_on(fd.as_fd(), NETLINK_CAP_ACK).map_err(err)?;
        // Extended acks carry the kernel's message, when it gives one.
        let _ = crate::sys::netlink_flag_on(fd.as_fd(), NETLINK_EXT_ACK);
        let timeout = TimeVal::new(REPLY_TIMEOUT.as_secs() as _, 0);
        setsockopt(&fd, sockopt::ReceiveTimeout, &timeout).map_err(err)?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        Ok(Nft {
            fd,
            netns: label.into(),
            seq: AtomicU32::new(seed),
            sndbuf: AtomicUsize::new(0),
            rcvbuf: AtomicUsize::new(0),
            busy: Mutex::new(()),
        })
    }

    /// The namespace label used in errors.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    fn io(&self, what: &'static str, source: Errno) -> NftError {
        NftError::Io {
            what,
            netns: self.netns.to_string(),
            source,
        }
    }

    /// Apply `batch` as one transaction: all of it, or (on error) nothing.
    /// An empty batch sends nothing. Commits from several threads on one
    /// `Nft` are serialised.
    pub fn commit(&self, batch: &Batch) -> Result<Sent, NftError> {
        if batch.is_empty() {
            return Ok(Sent::default());
        }
        let ops = batch.ops.len() as u32;
        let seq = self
            .seq
            .fetch_add(ops.saturating_mul(4) + 16, Ordering::Relaxed);
        let encoded = batch
            .encode(seq)
            .map_err(|(index, reason)| NftError::Invalid {
                op: batch.ops[index].to_string(),
                reason,
            })?;
        let _one_at_a_time = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        self.drain();
        self.grow_buffers(encoded.bytes.len(), encoded.messages.len())?;
        let sent = send(self.fd.as_raw_fd(), &encoded.bytes, MsgFlags::empty())
            .map_err(|e| self.io("sending an nftables batch", e))?;
        if sent != encoded.bytes.len() {
            return Err(self.io("sending an nftables batch (short write)", Errno::EMSGSIZE));
        }
        let stats = Sent {
            messages: encoded.messages.len() + 2,
            bytes: encoded.bytes.len(),
        };
        // One reply (ack or error) per message, in order.
        let mut pending = encoded.messages.len();
        let mut errors: Vec<(u32, Errno, String)> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while pending > 0 {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())
                .map_err(|e| self.io("reading the kernel's replies to an nftables batch", e))?;
            for reply in parse_replies(&buf[..n]) {
                let Reply::Status {
                    seq,
                    errno,
                    message,
                } = reply
                else {
                    continue;
                };
                if seq == encoded.begin_seq {
                    return Err(NftError::Batch {
                        netns: self.netns.to_string(),
                        errno: Errno::from_raw(errno),
                        reason: reason(errno, &message),
                    });
                }
                if encoded.messages.iter().any(|m| m.seq == seq) {
                    pending -= 1;
                    if errno != 0 {
                        errors.push((seq, Errno::from_raw(errno), message));
                    }
                }
            }
        }
        if let Some((seq, errno, message)) = errors.first() {
            let info = encoded
                .messages
                .iter()
                .find(|m| m.seq == *seq)
                .expect("replies are matched to sent messages");
            return Err(NftError::Kernel {
                op: batch.ops[info.op].to_string(),
                netns: self.netns.to_string(),
                errno: *errno,
                reason: reason(*errno as i32, message),
                element: info.first_element.clone(),
                other_errors: errors.len() - 1,
            });
        }
        Ok(stats)
    }

    /// Drop replies left over from an earlier, interrupted commit.
    fn drain(&self) {
        let mut buf = [0u8; 4096];
        while recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT).is_ok() {}
    }

    /// The whole batch goes in one `send` (the kernel reads a batch from one
    /// buffer), and every message's reply waits in the receive queue until
    /// the batch is done: size both buffers for that.
    fn grow_buffers(&self, bytes: usize, messages: usize) -> Result<(), NftError> {
        let want_snd = bytes + 64 * 1024;
        if want_snd > self.sndbuf.load(Ordering::Relaxed) {
            setsockopt(&self.fd, sockopt::SndBufForce, &want_snd)
                .map_err(|e| self.io("setting SO_SNDBUFFORCE", e))?;
            self.sndbuf.store(want_snd, Ordering::Relaxed);
        }
        // An ack costs about 1 KiB of receive buffer (skb overhead).
        let want_rcv = (messages * 1024 + 256 * 1024).min(1 << 30);
        if want_rcv > self.rcvbuf.load(Ordering::Relaxed) {
            setsockopt(&self.fd, sockopt::RcvBufForce, &want_rcv)
                .map_err(|e| self.io("setting SO_RCVBUFFORCE", e))?;
            self.rcvbuf.store(want_rcv, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// strerror's text, lower-cased (as `nft` prints it), plus the kernel's
/// extended-ack message when there is one.
fn reason(errno: i32, message: &str) -> String {
    let mut text = Errno::from_raw(errno).desc().to_lowercase();
    if !message.is_empty() {
        text.push_str(": ");
        text.push_str(message);
    }
    text
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// An ack (`errno` 0) or error for the message `seq`.
    Status {
        seq: u32,
        errno: i32,
        message: String,
    },
    Other,
}

/// Split a datagram into netlink messages and decode acks and errors.
pub(crate) fn parse_replies(mut data: &[u8]) -> Vec<Reply> {
    let mut out = Vec::new();
    while data.len() >= 16 {
        let len = u32::from_ne_bytes(data[0..4].try_into().expect("4 bytes")) as usize;
        if len < 16 || len > data.len() {
            break;
        }
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        let flags = u16::from_ne_bytes([data[6], data[7]]);
        let msg = &data[..len];
        if kind == NLMSG_ERROR && len >= 16 + 4 + 16 {
            let errno = -i32::from_ne_bytes(msg[16..20].try_into().expect("4 bytes"));
            let inner_seq = u32::from_ne_bytes(msg[28..32].try_into().expect("4 bytes"));
            // With NETLINK_CAP_ACK (always set) only the request's header
            // is echoed; extended-ack TLVs follow it.
            let echoed = 16;
            let mut message = String::new();
            if flags & NLM_F_ACK_TLVS != 0 {
                let mut tlvs = &msg[(20 + echoed).min(len)..];
                while tlvs.len() >= 4 {
                    let tlen = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
                    let ttype = u16::from_ne_bytes([tlvs[2], tlvs[3]]);
                    if tlen < 4 || tlen > tlvs.len() {
                        break;
                    }
                    if ttype == NLMSGERR_ATTR_MSG {
                        let text = &tlvs[4..tlen];
                        let text = text.split(|b| *b == 0).next().unwrap_or_default();
                        message = String::from_utf8_lossy(text).into_owned();
                    }
                    let step = (tlen.div_ceil(4) * 4).min(tlvs.len());
                    tlvs = &tlvs[step..];
                }
            }
            out.push(Reply::Status {
                seq: inner_seq,
                errno,
                message,
            });
        } else if kind != NLMSG_DONE {
            out.push(Reply::Other);
        }
        let step = len.div_ceil(4) * 4;
        if step >= data.len() {
            break;
        }
        data = &data[step..];
    }
    out
}
