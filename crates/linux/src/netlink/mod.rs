//! Netlink (rtnetlink) operations on one network namespace: links,
//! addresses, routes, neighbours and bridge FDB entries.
//!
//! One file per object kind. Each builds `netlink-packet-route` messages
//! and sends them through [`Handle::exchange`], the single place that turns
//! kernel replies into [`NetlinkError`]s naming the operation and namespace.

mod address;
mod error;
mod fdb;
mod link;
mod link_add;
mod link_del;
mod link_parse;
mod neighbour;
mod route;

use std::sync::Arc;

use futures::StreamExt;
use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use nix::errno::Errno;

pub use error::{NetlinkError, Reason};
pub use link_del::{set_long_lived, PendingDelete};

use crate::netns::NetnsError;

/// How a "new" request treats an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    /// `NLM_F_CREATE | NLM_F_EXCL`: fail with `EEXIST`.
    Exclusive,
    /// `NLM_F_CREATE | NLM_F_REPLACE`: create or overwrite.
    Replace,
    /// `NLM_F_CREATE | NLM_F_APPEND`: add alongside (vxlan FDB remotes).
    Append,
    /// No create flag: change an existing object.
    Change,
}

impl Create {
    fn flags(self) -> u16 {
        match self {
            Create::Exclusive => NLM_F_CREATE | NLM_F_EXCL,
            Create::Replace => NLM_F_CREATE | NLM_F_REPLACE,
            Create::Append => NLM_F_CREATE | NLM_F_APPEND,
            Create::Change => 0,
        }
    }
}

/// A netlink connection bound to one network namespace. Cheap to clone;
/// the connection closes when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Handle {
    inner: rtnetlink::Handle,
    netns: Arc<str>,
}

impl Handle {
    pub(crate) fn new(inner: rtnetlink::Handle, netns: Arc<str>) -> Handle {
        Handle { inner, netns }
    }

    /// A handle on the calling thread's own namespace (for a process that
    /// was started inside the namespace it manages, like the node agent).
    /// Must be called from within a tokio runtime.
    pub fn current() -> Result<Handle, NetnsError> {
        tokio::runtime::Handle::try_current().map_err(|_| NetnsError::NoRuntime)?;
        let (connection, handle, _unsolicited) =
            rtnetlink::new_connection().map_err(|source| NetnsError::Socket {
                label: "current".into(),
                source,
            })?;
        tokio::spawn(connection);
        Ok(Handle::new(handle, "current".into()))
    }

    /// The label of the namespace this handle works in.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    pub(crate) fn error(
        &self,
        op: String,
        reason: Reason,
        source: Option<rtnetlink::Error>,
    ) -> NetlinkError {
        NetlinkError::new(op, self.netns.clone(), reason, source)
    }

    /// Send a request that changes state and wait for the kernel's ack.
    pub(crate) async fn ack(
        &self,
        msg: RouteNetlinkMessage,
        create: Create,
        op: String,
    ) -> Result<(), NetlinkError> {
        self.exchange(msg, NLM_F_ACK | create.flags(), op)
            .await
            .map(drop)
    }

    /// Dump a table (`NLM_F_DUMP`) and return the messages.
    pub(crate) async fn dump(
        &self,
        msg: RouteNetlinkMessage,
        op: String,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.exchange(msg, NLM_F_DUMP, op).await
    }

    /// Get one object; `None` when the kernel says it does not exist.
    pub(crate) async fn get_one(
        &self,
        msg: RouteNetlinkMessage,
        op: String,
    ) -> Result<Option<RouteNetlinkMessage>, NetlinkError> {
        match self.exchange(msg, 0, op).await {
            Ok(mut replies) => Ok(replies.pop()),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Send `msg` with `NLM_F_REQUEST | flags`, collect the replies, and
    /// turn a kernel error into a [`NetlinkError`] saying `op`.
    async fn exchange(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
        op: String,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        let mut request = NetlinkMessage::from(msg);
        request.header.flags = NLM_F_REQUEST | flags;
        let mut replies = match self.inner.clone().request(request) {
            Ok(replies) => replies,
            Err(source) => return Err(self.error(op, Reason::Connection, Some(source))),
        };
        let mut out = Vec::new();
        while let Some(reply) = replies.next().await {
            match reply.payload {
                NetlinkPayload::InnerMessage(inner) => out.push(inner),
                NetlinkPayload::Error(err) => {
                    if let Some(code) = err.code {
                        tracing::debug!(netns = %self.netns, %op, code = code.get(), "netlink request refused");
                        return Err(self.error(
                            op,
                            Reason::Kernel(Errno::from_raw(-code.get())),
                            None,
                        ));
                    }
                    // code None: the ack.
                }
                NetlinkPayload::Done(_) => break,
                NetlinkPayload::Noop | NetlinkPayload::Overrun(_) => {}
                other => {
                    let what = format!("message type {}", other.message_type());
                    return Err(self.error(op, Reason::Unexpected(what), None));
                }
            }
        }
        Ok(out)
    }
}
