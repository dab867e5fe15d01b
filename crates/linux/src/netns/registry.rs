//! Named network namespaces, the iproute2 way: a namespace is kept alive by
//! a bind mount of its nsfs file onto `/run/netns/NAME`, so `ip netns exec
//! NAME` and `ip -n NAME` work on what we create, and the other way round.
//! No subprocesses: one thread and two syscalls per namespace.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::statfs::{statfs, NSFS_MAGIC};

use super::{NetNs, NetnsError};

/// Where iproute2 keeps named network namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Set once this process has made [`NETNS_RUN_DIR`] a shared mount point.
static RUN_DIR_READY: Mutex<bool> = Mutex::new(false);

/// `/run/netns/NAME`.
pub fn path_of(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

pub(super) fn validate_name(name: &str) -> Result<(), NetnsError> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name == "." || name == ".." {
        "it is a path component"
    } else if name.contains('/') || name.contains('\0') {
        "it contains '/' or NUL"
    } else if name.len() > 255 {
        "it is longer than 255 bytes"
    } else {
        return Ok(());
    };
    Err(NetnsError::InvalidName {
        name: name.to_string(),
        why,
    })
}

/// Create the named namespace `name` (`ip netns add NAME`) and return it
/// open. Fails with [`NetnsError::Exists`] if the name is taken. Its
/// loopback is down, as with iproute2.
pub fn create(name: &str) -> Result<NetNs, NetnsError> {
    validate_name(name)?;
    prepare_run_dir()?;
    let path = path_of(name);
    // The mount point; O_EXCL makes concurrent creates of one name safe.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(&path)
        .map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                NetnsError::Exists {
                    name: name.to_string(),
                }
            } else {
                NetnsError::Io {
                    op: "creating the mount point",
                    path: path.clone(),
                    source,
                }
            }
        })?;
    let made = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("pn-netns-new".into())
            .spawn_scoped(scope, || new_netns_on_this_thread(name, &path))
            .map_err(|source| NetnsError::Thread {
                label: name.to_string(),
                source,
            })?
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    match made {
        Ok(file) => {
            tracing::debug!(netns = name, "created network namespace");
            Ok(NetNs::from_file(name, file))
        }
        Err(err) => {
            // Nothing is mounted on it yet (the mount is the last step that
            // can fail): just remove the mount point.
            let _ = fs::remove_file(&path);
            Err(err)
        }
    }
}

/// Runs on a fresh thread, which then exits: the thread's new namespace
/// stays alive through the bind mount and the returned file.
fn new_netns_on_this_thread(name: &str, path: &Path) -> Result<File, NetnsError> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Unshare {
        name: name.to_string(),
        source,
    })?;
    let own = Path::new("/proc/thread-self/ns/net");
    let file = File::open(own).map_err(|source| NetnsError::Io {
        op: "opening",
        path: own.to_path_buf(),
        source,
    })?;
    mount(
        Some(own),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|source| NetnsError::Sys {
        op: "bind-mounting the new namespace onto",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(file)
}

/// Make sure `/run/netns` exists and is a shared mount point, as iproute2
/// does, so that namespace mounts propagate to other mount namespaces.
/// Done once per process.
fn prepare_run_dir() -> Result<(), NetnsError> {
    let mut ready = RUN_DIR_READY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if *ready {
        return Ok(());
    }
    let dir = Path::new(NETNS_RUN_DIR);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|source| NetnsError::Io {
            op: "creating",
            path: dir.to_path_buf(),
            source,
        })?;
    let make_shared = || {
        mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match make_shared() {
        Ok(()) => {}
        // Not a mount point yet: bind it onto itself, then retry.
        Err(Errno::EINVAL) => {
            mount(
                Some(dir),
                dir,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|source| NetnsError::Sys {
                op: "bind-mounting onto itself",
                path: dir.to_path_buf(),
                source,
            })?;
            make_shared().map_err(|source| NetnsError::Sys {
                op: "making a shared mount:",
                path: dir.to_path_buf(),
                source,
            })?;
        }
        Err(source) => {
            return Err(NetnsError::Sys {
                op: "making a shared mount:",
                path: dir.to_path_buf(),
                source,
            })
        }
    }
    *ready = true;
    Ok(())
}

/// Delete the named namespace (`ip netns del NAME`): detach the mount and
/// remove the mount point. Idempotent: a missing namespace is success. The
/// namespace itself goes away once no process, open [`NetNs`] or socket
/// holds it.
pub fn delete(name: &str) -> Result<(), NetnsError> {
    validate_name(name)?;
    let path = path_of(name);
    // Bounded: a name can carry a few stacked mounts after races.
    for _ in 0..8 {
        match umount2(&path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            // Not (or no longer) a mount point, or no such file.
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => break,
            Err(source) => {
                return Err(NetnsError::Sys {
                    op: "unmounting",
                    path,
                    source,
                })
            }
        }
    }
    match fs::remove_file(&path) {
        Ok(()) => {
            tracing::debug!(netns = name, "deleted network namespace");
            Ok(())
        }
        Err(source) if source.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NetnsError::Io {
            op: "removing",
            path,
            source,
        }),
    }
}

/// Whether `/run/netns/NAME` is a mounted namespace (a leftover mount
/// point without a namespace on it does not count).
pub fn exists(name: &str) -> bool {
    validate_name(name).is_ok()
        && statfs(&path_of(name)).is_ok_and(|s| s.filesystem_type() == NSFS_MAGIC)
}

/// Names under `/run/netns` that start with `prefix`, sorted. Includes
/// leftover mount points, so that a cleanup can [`delete`] them too.
pub fn list_with_prefix(prefix: &str) -> Result<Vec<String>, NetnsError> {
    let dir = Path::new(NETNS_RUN_DIR);
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) if source.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(NetnsError::Io {
                op: "listing",
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| NetnsError::Io {
            op: "listing",
            path: dir.to_path_buf(),
            source,
        })?;
        if let Some(name) = entry.file_name().to_str() {
            if name.starts_with(prefix) {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_name(&"x".repeat(256)).is_err());
        assert!(validate_name("pnlx-1-2-pod").is_ok());
        assert_eq!(path_of("pod-a"), PathBuf::from("/run/netns/pod-a"));
    }
}
