//! Installing the CNI executables: the `podnet` shim ([`crate::SHIM`]) and the
//! standalone plugin, for `podnet-cni install` and the lab.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` with mode 0755, through a temporary file beside it renamed
/// into place, so a runtime never runs a half-written executable.
pub fn write_executable(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, path)
}

/// Writes the shim as `dir/podnet` and returns that path; `Unsupported` where this
/// build has no shim (not x86_64).
pub fn shim(dir: &Path) -> io::Result<PathBuf> {
    if crate::SHIM.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this build has no CNI shim (x86_64 Linux only)",
        ));
    }
    let path = dir.join("podnet");
    write_executable(&path, crate::SHIM)?;
    Ok(path)
}
