//! Network sysctls of one namespace (`ip netns exec NS sysctl -w KEY=VALUE`).
//!
//! `/proc/sys/net` shows the network namespace of the thread that opens the
//! file, so reads and writes run on a thread inside the namespace
//! ([`NetNs::run`]). Only `net.*` keys are accepted: every other sysctl is
//! global, and writing it "in a namespace" would change the host.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

use crate::netns::{NetNs, NetnsError};

/// Errors from sysctl reads and writes.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("invalid sysctl key {key:?}: {why}")]
    InvalidKey { key: String, why: &'static str },
    #[error("sysctl {key} does not exist in netns {netns}{hint}")]
    NotFound {
        key: String,
        netns: String,
        hint: &'static str,
    },
    #[error("writing sysctl {key}={value} in netns {netns}")]
    Write {
        key: String,
        value: String,
        netns: String,
        #[source]
        source: io::Error,
    },
    #[error("reading sysctl {key} in netns {netns}")]
    Read {
        key: String,
        netns: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// `/proc/sys/...` for a key. Accepts dotted (`net.ipv4.ip_forward`) and
/// slashed (`net/ipv4/conf/eth0.100/rp_filter`, for names with dots) forms.
pub fn key_path(key: &str) -> Result<PathBuf, SysctlError> {
    let invalid = |why| SysctlError::InvalidKey {
        key: key.to_string(),
        why,
    };
    let parts: Vec<&str> = if key.contains('/') {
        key.split('/').collect()
    } else {
        key.split('.').collect()
    };
    if parts.first() != Some(&"net") || parts.len() < 2 {
        return Err(invalid("only net.* sysctls are per network namespace"));
    }
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains('\0'))
    {
        return Err(invalid("it has an empty or relative path component"));
    }
    let mut path = PathBuf::from("/proc/sys");
    path.extend(parts);
    Ok(path)
}

fn hint_for(key: &str) -> &'static str {
    if key.starts_with("net.bridge") || key.starts_with("net/bridge") {
        " (net.bridge.* exists only while the br_netfilter module is loaded)"
    } else {
        ""
    }
}

fn not_found(key: &str, ns: &NetNs) -> SysctlError {
    SysctlError::NotFound {
        key: key.to_string(),
        netns: ns.label().to_string(),
        hint: hint_for(key),
    }
}

/// Set one sysctl inside `ns`.
pub fn set(ns: &NetNs, key: &str, value: &str) -> Result<(), SysctlError> {
    set_all(ns, &[(key, value)])
}

/// Set several sysctls inside `ns`, in order, on one thread; stops at the
/// first failure.
pub fn set_all(ns: &NetNs, settings: &[(&str, &str)]) -> Result<(), SysctlError> {
    let paths = settings
        .iter()
        .map(|(key, _)| key_path(key))
        .collect::<Result<Vec<_>, _>>()?;
    ns.run(|| {
        for ((key, value), path) in settings.iter().zip(&paths) {
            let written = fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|mut f| f.write_all(value.as_bytes()));
            match written {
                Ok(()) => tracing::debug!(netns = ns.label(), key, value, "sysctl set"),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_found(key, ns)),
                Err(source) => {
                    return Err(SysctlError::Write {
                        key: key.to_string(),
                        value: value.to_string(),
                        netns: ns.label().to_string(),
                        source,
                    })
                }
            }
        }
        Ok(())
    })?
}

/// Read one sysctl inside `ns`, without the trailing newline.
pub fn get(ns: &NetNs, key: &str) -> Result<String, SysctlError> {
    let path = key_path(key)?;
    ns.run(|| match fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim_end().to_string()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(not_found(key, ns)),
        Err(source) => Err(SysctlError::Read {
            key: key.to_string(),
            netns: ns.label().to_string(),
            source,
        }),
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_proc_paths() {
        assert_eq!(
            key_path("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            key_path("net/ipv4/conf/eth0.100/rp_filter").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/rp_filter")
        );
    }

    #[test]
    fn non_network_and_escaping_keys_are_refused() {
        for bad in [
            "kernel.hostname",
            "vm.swappiness",
            "net",
            "net..ipv4",
            "net/../kernel/hostname",
            "",
        ] {
            assert!(key_path(bad).is_err(), "{bad}");
        }
        assert!(hint_for("net.bridge.bridge-nf-call-iptables").contains("br_netfilter"));
    }
}
