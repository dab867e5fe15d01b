//! The one error type of netlink operations: which operation on which
//! object, in which namespace, and what the kernel said.

use std::fmt;
use std::sync::Arc;

use nix::errno::Errno;

/// A failed netlink operation, e.g. `adding address 10.244.1.1/24 to pnbr0
/// in netns pod-x: file exists`.
#[derive(Debug, thiserror::Error)]
#[error("{op} in netns {netns}: {reason}")]
pub struct NetlinkError {
    op: String,
    netns: Arc<str>,
    reason: Reason,
    /// The transport error, when the failure was not a kernel errno.
    #[source]
    source: Option<rtnetlink::Error>,
}

/// Why a netlink operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The kernel refused, with this errno.
    Kernel(Errno),
    /// The netlink connection is gone.
    Connection,
    /// The kernel answered something this crate cannot interpret.
    Unexpected(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // strerror's text, as `ip` prints it, lower-cased:
            // "File exists (os error 17)" -> "file exists".
            Reason::Kernel(errno) => {
                let text = std::io::Error::from_raw_os_error(*errno as i32).to_string();
                let desc = text.split(" (os error").next().unwrap_or(&text);
                let mut chars = desc.chars();
                match chars.next() {
                    Some(first) => write!(f, "{}{}", first.to_lowercase(), chars.as_str()),
                    None => write!(f, "{errno:?}"),
                }
            }
            Reason::Connection => f.write_str("the netlink connection failed"),
            Reason::Unexpected(what) => write!(f, "unexpected reply: {what}"),
        }
    }
}

impl NetlinkError {
    pub(crate) fn new(
        op: String,
        netns: Arc<str>,
        reason: Reason,
        source: Option<rtnetlink::Error>,
    ) -> Self {
        NetlinkError {
            op,
            netns,
            reason,
            source,
        }
    }

    /// What was being done, e.g. `adding address 10.244.1.1/24 to pnbr0`.
    pub fn op(&self) -> &str {
        &self.op
    }

    /// The label of the namespace the handle works in.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    pub fn reason(&self) -> &Reason {
        &self.reason
    }

    /// The kernel's errno, if the kernel refused.
    pub fn errno(&self) -> Option<Errno> {
        match self.reason {
            Reason::Kernel(errno) => Some(errno),
            _ => None,
        }
    }

    /// The kernel's errno as a plain number (`libc::EEXIST`, ...).
    pub fn raw_os_error(&self) -> Option<i32> {
        self.errno().map(|errno| errno as i32)
    }

    /// The object already exists (`EEXIST`).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(Errno::EEXIST)
    }

    /// The object, or the link it refers to, does not exist (`ENOENT`,
    /// `ENODEV`, `ESRCH`, or `EADDRNOTAVAIL` for addresses).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(Errno::ENOENT | Errno::ENODEV | Errno::ESRCH | Errno::EADDRNOTAVAIL)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_the_object_and_the_errno() {
        let err = NetlinkError::new(
            "adding address 10.244.1.1/24 to pnbr0".into(),
            "pod-x".into(),
            Reason::Kernel(Errno::EEXIST),
            None,
        );
        assert_eq!(
            err.to_string(),
            "adding address 10.244.1.1/24 to pnbr0 in netns pod-x: file exists"
        );
        assert!(err.is_exists());
        assert!(!err.is_not_found());
        assert_eq!(err.raw_os_error(), Some(17));
        let err = NetlinkError::new(
            "x".into(),
            "n".into(),
            Reason::Kernel(Errno::EOPNOTSUPP),
            None,
        );
        assert_eq!(err.to_string(), "x in netns n: operation not supported");
    }
}
