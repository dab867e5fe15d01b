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
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockProtocol, SockType};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use std::os::fd::AsFd;

use super::{Handle, NetlinkError, Reason};

/// How often the link is looked up while the child deletes it.
const POLL: Duration = Duration::from_micros(200);
/// How long the child may take before the link is deleted here instead.
const DEADLINE: Duration = Duration::from_secs(5);

impl Handle {
    /// Deletes link `name` like [`Handle::delete_link`] (a missing link is
    /// success), but returns once the link is gone instead of once the kernel
    /// has finished freeing it. Only for a handle on the calling thread's own
    /// namespace ([`Handle::current`]); other handles delete synchronously.
    /// If the child fails or is slow, the link is deleted synchronously, so an
    /// error is reported as by [`Handle::delete_link`].
    pub async fn delete_link_detached(&self, name: &str) -> Result<(), NetlinkError> {
        if self.netns() != "current" {
            return self.delete_link(name).await;
        }
        let Some(link) = self.link(name).await? else {
            return Ok(());
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
        let child = match crate::sys::send_from_child(sock.as_fd(), &bytes) {
            Ok(child) => child,
            Err(e) => {
                tracing::debug!(error = %e, link = name, "fork failed; deleting in this process");
                return self.delete_link(name).await;
            }
        };
        drop(sock);
        let start = Instant::now();
        loop {
            match self.link_by_index(link.index).await? {
                Some(l) if l.name == link.name => {}
                _ => {
                    // Reap the child whenever it ends (a one-shot process
                    // usually exits first, and then init reaps it).
                    std::thread::spawn(move || {
                        let _ = waitpid(child, None);
                    });
                    return Ok(());
                }
            }
            // The child ended without deleting the link (or cannot be waited for).
            let failed = !matches!(
                waitpid(child, Some(WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::StillAlive)
            );
            if failed || start.elapsed() > DEADLINE {
                return self.delete_link(name).await;
            }
            // A short sleep on this thread: the runtime's timer ticks in
            // milliseconds, and the link usually goes within one.
            std::thread::sleep(POLL);
        }
    }
}
