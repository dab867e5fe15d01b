//! The crate's only `unsafe` code: the nsfs ioctl that tells which kind of
//! namespace a file descriptor refers to.
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
