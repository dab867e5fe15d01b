//! Deleting a link without waiting for the kernel's cleanup.
//!
//! `RTM_DELLINK` unregisters the link (it is gone from the namespace, its
//! addresses and routes with it) and then, before answering, waits in
//! `rcu_barrier()` for tens of milliseconds of RCU grace periods.
//! [`Handle::delete_link_detached`] sends the request from a forked child and
//! returns as soon as the link is gone, leaving that wait to the child.

use std::time::{Duration, Instant};

use netlink_packet_core::{NetlinkMessage, NLM_F_ACK, NLM_F_REQUEST};
use netlink_packet_route::RouteNetlinkMessage;
use nix::sys::socket::MsgFlags;
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockProtocol, SockType};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use std::os::fd::{AsFd, AsRawFd};

use super::link_parse::parse_link;
use super::{Handle, NetlinkError, Reason};
use crate::model::Link;

/// How often the link is looked up while the child deletes it.
const POLL: Duration = Duration::from_micros(200);
/// How long the child may take before the link is deleted here instead.
const DEADLINE: Duration = Duration::from_secs(5);

/// A link deletion sent from a child process, not yet seen to be done; finish it
/// with [`Handle::finish_delete`].
#[derive(Debug)]
#[must_use = "the link may still be there until finish_delete says it is gone"]
pub struct PendingDelete {
    name: String,
    index: u32,
    sender: Sender,
}

/// Who sends the request and waits for the kernel's slow part.
#[derive(Debug)]
enum Sender {
    /// A forked child: a one-shot process (the CNI plugin) exits without waiting.
    Child(nix::unistd::Pid),
    /// A thread: in a long-lived process (the plugin server), where forking the
    /// whole multi-threaded process for every deletion costs more than it saves.
    Thread(std::thread::JoinHandle<bool>),
}

static LONG_LIVED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Declares the process long-lived: [`Handle::start_delete`] sends from a thread
/// instead of a forked child (the CNI plugin server sets this).
pub fn set_long_lived(on: bool) {
    LONG_LIVED.store(on, std::sync::atomic::Ordering::Relaxed);
}

impl Handle {
    /// Deletes link `name` like [`Handle::delete_link`] (a missing link is
    /// success), but returns once the link is gone instead of once the kernel
    /// has finished freeing it. Only for a handle on the calling thread's own
    /// namespace ([`Handle::current`]); other handles delete synchronously.
    /// If the child fails or is slow, the link is deleted synchronously, so an
    /// error is reported as by [`Handle::delete_link`].
    pub async fn delete_link_detached(&self, name: &str) -> Result<(), NetlinkError> {
        match self.start_delete(name).await? {
            Some(pending) => self.finish_delete(pending).await,
            None => Ok(()),
        }
    }

    /// The first half of [`Handle::delete_link_detached`]: sends the request
    /// from a child and returns at once, so that the caller can do other work
    /// while the kernel unregisters the link. `None` when the link is already
    /// gone (or was deleted here, when this handle cannot detach).
    pub async fn start_delete(&self, name: &str) -> Result<Option<PendingDelete>, NetlinkError> {
        if self.netns() != "current" {
            return self.delete_link(name).await.map(|()| None);
        }
        let Some(link) = self.raw_link(super::link::by_name(name), name).await? else {
            return Ok(None);
        };
        let op = || format!("deleting link {name}");
        let sock = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(|e| self.error(op(), Reason::Kernel(e), None))?;
        let mut msg = NetlinkMessage::from(RouteNetlinkMessage::DelLink(super::link::by_index(
            link.index,
        )));
        msg.header.flags = NLM_F_REQUEST | NLM_F_ACK;
        msg.finalize();
        let mut bytes = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut bytes);
        if LONG_LIVED.load(std::sync::atomic::Ordering::Relaxed) {
            let sent = std::thread::Builder::new()
                .name("pn-link-del".into())
                .spawn(move || {
                    let mut buf = [0u8; 1024];
                    nix::sys::socket::send(sock.as_raw_fd(), &bytes, MsgFlags::empty()).is_ok()
                        && nix::sys::socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty())
                            .is_ok()
                });
            return match sent {
                Ok(handle) => Ok(Some(PendingDelete {
                    name: link.name,
                    index: link.index,
                    sender: Sender::Thread(handle),
                })),
                Err(e) => {
                    tracing::debug!(error = %e, link = name, "thread failed; deleting here");
                    self.delete_link(name).await.map(|()| None)
                }
            };
        }
        match crate::sys::send_from_child(sock.as_fd(), &bytes) {
            Ok(child) => Ok(Some(PendingDelete {
                name: link.name,
                index: link.index,
                sender: Sender::Child(child),
            })),
            Err(e) => {
                tracing::debug!(error = %e, link = name, "fork failed; deleting in this process");
                self.delete_link(name).await.map(|()| None)
            }
        }
    }

    /// Waits until the link of `pending` is gone; if its child fails or takes
    /// longer than 5 s, deletes the link here and returns that result.
    pub async fn finish_delete(&self, pending: PendingDelete) -> Result<(), NetlinkError> {
        let PendingDelete {
            name,
            index,
            sender,
        } = pending;
        let start = Instant::now();
        loop {
            match self.raw_link(super::link::by_index(index), &name).await? {
                Some(l) if l.name == name => {}
                _ => {
                    // Reap the child whenever it ends (a one-shot process
                    // usually exits first, and then init reaps it); a thread
                    // ends by itself once the kernel answers.
                    if let Sender::Child(child) = sender {
                        std::thread::spawn(move || {
                            let _ = waitpid(child, None);
                        });
                    }
                    return Ok(());
                }
            }
            // The sender ended without deleting the link (or cannot be waited for).
            let failed = match &sender {
                Sender::Child(child) => !matches!(
                    waitpid(*child, Some(WaitPidFlag::WNOHANG)),
                    Ok(WaitStatus::StillAlive)
                ),
                Sender::Thread(handle) => handle.is_finished(),
            };
            if failed || start.elapsed() > DEADLINE {
                return self.delete_link(&name).await;
            }
            // A short sleep on this thread: the runtime's timer ticks in
            // milliseconds, and the link usually goes within one.
            std::thread::sleep(POLL);
        }
    }

    /// One link's name and index, without naming the links it refers to (one
    /// round trip, where [`Handle::link`] takes one more per master).
    async fn raw_link(
        &self,
        msg: netlink_packet_route::link::LinkMessage,
        name: &str,
    ) -> Result<Option<Link>, NetlinkError> {
        let op = || format!("getting link {name}");
        match self
            .get_one(RouteNetlinkMessage::GetLink(msg), op())
            .await?
        {
            None => Ok(None),
            Some(RouteNetlinkMessage::NewLink(msg)) => Ok(parse_link(&msg).map(|r| r.link)),
            Some(_) => Err(self.error(op(), Reason::Unexpected("not a link message".into()), None)),
        }
    }
}
