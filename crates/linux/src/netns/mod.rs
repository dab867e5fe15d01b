//! Network namespaces: named ones compatible with iproute2
//! (`/run/netns/NAME`, see [`create`]) and handles on any namespace file
//! ([`NetNs`]).
//!
//! The thread model: a network namespace is a property of a *thread*.
//! [`NetNs::run`] starts a short-lived thread, `setns()`s it and runs the
//! closure there, so arbitrary code never runs on a thread of the caller's
//! in another namespace. [`NetNs::handle`] is the one exception: to open a
//! netlink socket (which stays bound to the namespace it was opened in) it
//! switches the *calling* thread into the namespace and back around a single
//! synchronous call, with no `.await` in between, and aborts the process if
//! it cannot switch back. So between calls, tokio workers and the caller's
//! thread are always in the namespace the process started in.

mod registry;

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};
use nix::sys::statfs::{fstatfs, NSFS_MAGIC};

pub use registry::{create, delete, exists, list_with_prefix, path_of, NETNS_RUN_DIR};

use crate::netlink::Handle;

/// Errors from namespace operations.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("invalid network namespace name {name:?}: {why}")]
    InvalidName { name: String, why: &'static str },
    #[error("network namespace {name} already exists")]
    Exists { name: String },
    #[error("network namespace {label} does not exist: no file at {path}")]
    NotFound { label: String, path: PathBuf },
    #[error("{path} is not a network namespace: it is {found}")]
    NotNetns { path: PathBuf, found: String },
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{op} {path}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("creating a network namespace (unshare) for {name}")]
    Unshare {
        name: String,
        #[source]
        source: Errno,
    },
    #[error("entering network namespace {label} (setns)")]
    Enter {
        label: String,
        #[source]
        source: Errno,
    },
    #[error("starting a thread for network namespace {label}")]
    Thread {
        label: String,
        #[source]
        source: io::Error,
    },
    #[error("a netlink handle needs a tokio runtime: call NetNs::handle from within one")]
    NoRuntime,
    #[error("opening a netlink socket in network namespace {label}")]
    Socket {
        label: String,
        #[source]
        source: io::Error,
    },
}

/// An open network namespace: holds a file descriptor on it, so the
/// namespace lives at least as long as this value.
#[derive(Debug)]
pub struct NetNs {
    label: Arc<str>,
    file: File,
}

impl NetNs {
    /// Open the named namespace `/run/netns/NAME`.
    pub fn open(name: &str) -> Result<NetNs, NetnsError> {
        registry::validate_name(name)?;
        NetNs::open_labelled(&path_of(name), name)
    }

    /// Open a namespace by path, as CNI passes it in `CNI_NETNS`
    /// (`/proc/PID/ns/net`, `/run/netns/X`, `/var/run/netns/X`). Fails
    /// clearly when the path is not a network namespace.
    pub fn from_path(path: impl AsRef<Path>) -> Result<NetNs, NetnsError> {
        let path = path.as_ref();
        NetNs::open_labelled(path, &path.display().to_string())
    }

    /// The namespace of the calling thread.
    pub fn current() -> Result<NetNs, NetnsError> {
        NetNs::open_labelled(Path::new("/proc/thread-self/ns/net"), "current")
    }

    fn open_labelled(path: &Path, label: &str) -> Result<NetNs, NetnsError> {
        let file = File::open(path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                NetnsError::NotFound {
                    label: label.to_string(),
                    path: path.to_path_buf(),
                }
            } else {
                NetnsError::Io {
                    op: "opening",
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        check_is_netns(file.as_fd(), path)?;
        Ok(NetNs {
            label: label.into(),
            file,
        })
    }

    pub(crate) fn from_file(label: &str, file: File) -> NetNs {
        NetNs {
            label: label.into(),
            file,
        }
    }

    /// The name (for named namespaces), the path (for [`NetNs::from_path`])
    /// or `current`; used in error messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Run `f` on a new thread that has entered this namespace, wait for
    /// it and return its result. A panic in `f` is propagated. Blocking: from
    /// async code, call it inside `spawn_blocking` if `f` is slow.
    pub fn run<F, T>(&self, f: F) -> Result<T, NetnsError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let fd = self.file.as_fd();
        std::thread::scope(|scope| {
            let worker = std::thread::Builder::new()
                .name("pn-netns".into())
                .spawn_scoped(scope, move || {
                    setns(fd, CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Enter {
                        label: self.label.to_string(),
                        source,
                    })?;
                    Ok(f())
                })
                .map_err(|source| NetnsError::Thread {
                    label: self.label.to_string(),
                    source,
                })?;
            match worker.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// A netlink handle whose socket lives in this namespace. Must be called
    /// from within a tokio runtime: the connection is driven by a task
    /// spawned on it, which ends when the last clone of the handle is dropped.
    ///
    /// No thread is started (it used to run on one from [`NetNs::run`]: a
    /// spawn and a join per handle, on the CNI plugin's ADD path): the
    /// calling thread opens its own namespace
    /// (`/proc/thread-self/ns/net`), `setns()`s into this one, creates the
    /// socket and registers it with the runtime's reactor, and `setns()`s
    /// back. This is sound because
    /// - a socket keeps the namespace it was created in for its lifetime, so
    ///   the connection task may run on any thread afterwards;
    /// - everything between the two `setns()` calls is synchronous: no
    ///   `.await`, so no other task of this runtime can run on the thread
    ///   while it is in the wrong namespace, and no callback or user code
    ///   runs there either;
    /// - switching back happens in a guard's `Drop`, so even an unwinding
    ///   panic leaves the thread in its own namespace.
    ///
    /// If switching back fails (which needs the home namespace to refuse
    /// `setns`, e.g. a lost capability), the thread would go on working in
    /// the wrong namespace, silently: the process aborts instead, with a
    /// message on stderr (no unwinding, which would run more code there).
    pub fn handle(&self) -> Result<Handle, NetnsError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NetnsError::NoRuntime)?;
        let opened = {
            let _home = Switched::enter(self)?;
            // The runtime's context is the caller's: the socket registers
            // with its reactor, and is created in this namespace.
            rtnetlink::new_connection()
        };
        let (connection, handle, _unsolicited) = opened.map_err(|source| NetnsError::Socket {
            label: self.label.to_string(),
            source,
        })?;
        runtime.spawn(connection);
        tracing::trace!(netns = %self.label, "netlink handle opened");
        Ok(Handle::new(handle, self.label.clone()))
    }
}

/// The calling thread, switched into another network namespace; switches it
/// back to its own when dropped, or aborts the process.
struct Switched {
    home: File,
    target: Arc<str>,
}

impl Switched {
    const OWN: &'static str = "/proc/thread-self/ns/net";

    /// Switch the calling thread into `target`. On error the thread has not
    /// moved.
    fn enter(target: &NetNs) -> Result<Switched, NetnsError> {
        let home = File::open(Self::OWN).map_err(|source| NetnsError::Io {
            op: "opening the calling thread's network namespace",
            path: PathBuf::from(Self::OWN),
            source,
        })?;
        setns(target.file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| {
            NetnsError::Enter {
                label: target.label.to_string(),
                source,
            }
        })?;
        Ok(Switched {
            home,
            target: target.label.clone(),
        })
    }
}

impl Drop for Switched {
    fn drop(&mut self) {
        if let Err(errno) = setns(self.home.as_fd(), CloneFlags::CLONE_NEWNET) {
            use std::io::Write;
            // Best effort: the process is about to abort either way.
            let _ = writeln!(
                io::stderr(),
                "podnet: fatal: cannot switch thread {:?} back to its own network namespace \
                 after opening a netlink socket in network namespace {}: setns: {errno}; \
                 aborting rather than go on in the wrong namespace",
                std::thread::current().name().unwrap_or("unnamed"),
                self.target,
            );
            std::process::abort();
        }
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Check that `fd` is a network namespace: on nsfs, and of type
/// `CLONE_NEWNET`.
fn check_is_netns(fd: BorrowedFd<'_>, path: &Path) -> Result<(), NetnsError> {
    let stat = fstatfs(fd).map_err(|source| NetnsError::Sys {
        op: "statfs",
        path: path.to_path_buf(),
        source,
    })?;
    if stat.filesystem_type() != NSFS_MAGIC {
        return Err(NetnsError::NotNetns {
            path: path.to_path_buf(),
            found: format!("a file on {}, not a namespace file", fs_name(&stat)),
        });
    }
    let kind = crate::sys::ns_type(fd).map_err(|source| NetnsError::Sys {
        op: "asking the namespace type (NS_GET_NSTYPE) of",
        path: path.to_path_buf(),
        source,
    })?;
    if kind != CloneFlags::CLONE_NEWNET.bits() {
        return Err(NetnsError::NotNetns {
            path: path.to_path_buf(),
            found: format!("a {} namespace", ns_kind_name(kind)),
        });
    }
    Ok(())
}

fn fs_name(stat: &nix::sys::statfs::Statfs) -> String {
    use nix::sys::statfs::{
        EXT4_SUPER_MAGIC, OVERLAYFS_SUPER_MAGIC, PROC_SUPER_MAGIC, SYSFS_MAGIC, TMPFS_MAGIC,
    };
    let known = [
        (PROC_SUPER_MAGIC, "proc"),
        (TMPFS_MAGIC, "tmpfs"),
        (EXT4_SUPER_MAGIC, "ext4"),
        (OVERLAYFS_SUPER_MAGIC, "overlay"),
        (SYSFS_MAGIC, "sysfs"),
    ];
    let kind = stat.filesystem_type();
    match known.iter().find(|(magic, _)| *magic == kind) {
        Some((_, name)) => (*name).to_string(),
        None => format!("{:#x}", kind.0),
    }
}

fn ns_kind_name(kind: i32) -> &'static str {
    const NAMES: [(CloneFlags, &str); 6] = [
        (CloneFlags::CLONE_NEWNS, "mount"),
        (CloneFlags::CLONE_NEWUTS, "uts"),
        (CloneFlags::CLONE_NEWIPC, "ipc"),
        (CloneFlags::CLONE_NEWUSER, "user"),
        (CloneFlags::CLONE_NEWPID, "pid"),
        (CloneFlags::CLONE_NEWCGROUP, "cgroup"),
    ];
    NAMES
        .iter()
        .find(|(flag, _)| flag.bits() == kind)
        .map(|(_, name)| *name)
        .unwrap_or("non-network")
}
