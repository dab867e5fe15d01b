//! The crate's only `unsafe` code: the nsfs ioctl that tells which kind of
//! namespace a file descriptor refers to, and the fork of [`send_from_child`].
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd};

// NS_GET_NSTYPE = _IO(0xb7, 0x3), from <linux/nsfs.h>.
nix::ioctl_none!(ns_get_nstype_raw, 0xb7, 0x3);

/// The `CLONE_NEW*` constant of the namespace that `fd` refers to
/// (`ioctl(fd, NS_GET_NSTYPE)`); fails with `ENOTTY` for a file that is not
/// a namespace.
pub(crate) fn ns_type(fd: BorrowedFd<'_>) -> nix::Result<i32> {
    // SAFETY: NS_GET_NSTYPE takes no argument and writes no memory; it only
    // returns the namespace type. `fd` is a borrowed, open descriptor that
    // stays valid for the duration of the call.
    unsafe { ns_get_nstype_raw(fd.as_raw_fd()) }
}

/// Sends the netlink request `msg` on `sock` from a forked child process and
/// returns the child's pid at once; the child closes stdin, stdout and stderr
/// first (so that whoever reads this process's output is not kept waiting),
/// sends, waits for the kernel's answer and exits.
///
/// This is for requests whose syscall outlasts their effect: deleting a link
/// unregisters it at once, then waits in the kernel (`rcu_barrier`) for tens
/// of milliseconds before the ack. The caller watches for the effect itself.
pub(crate) fn send_from_child(sock: BorrowedFd<'_>, msg: &[u8]) -> nix::Result<nix::unistd::Pid> {
    use nix::sys::socket::{recv, send, MsgFlags};
    use nix::unistd::{close, fork, ForkResult};
    let fd = sock.as_raw_fd();
    // SAFETY: the child of a possibly multi-threaded process may only call
    // async-signal-safe functions until it exits. It calls close, send, recv
    // and _exit (thin wrappers over the syscalls, no allocation, no locks) on
    // memory prepared before the fork (`msg`, a stack buffer), and never
    // returns from this function.
    match unsafe { fork() }? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            for std_fd in 0..3 {
                let _ = close(std_fd);
            }
            let mut ok = send(fd, msg, MsgFlags::empty()).is_ok();
            let mut buf = [0u8; 1024];
            ok &= recv(fd, &mut buf, MsgFlags::empty()).is_ok();
            // SAFETY: _exit ends the child at once, running no destructors nor
            // atexit handlers (which could take locks held by other threads).
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
    }
}

/// `setsockopt(fd, SOL_NETLINK, option, &1)`: turns on a boolean netlink
/// socket option (`NETLINK_CAP_ACK`, `NETLINK_EXT_ACK`), which nix does not
/// wrap.
pub(crate) fn netlink_flag_on(sock: BorrowedFd<'_>, option: libc::c_int) -> nix::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: `sock` is an open descriptor for the duration of the call; the
    // option value points to a live c_int whose exact size is passed, and
    // the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_NETLINK,
            option,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    nix::errno::Errno::result(rc).map(drop)
}
