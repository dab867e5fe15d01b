//! Writing small state files atomically (temporary file in the same directory, then
//! rename), so that a crash never leaves half a record.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::RuntimeError;

pub fn atomic(path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = RuntimeError::io("writing", path);
    let mut tmp = match tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
    {
        Ok(t) => t,
        Err(e) => return Err(io(e)),
    };
    if let Err(e) = tmp.write_all(bytes) {
        return Err(RuntimeError::io("writing", path)(e));
    }
    tmp.persist(path)
        .map_err(|e| RuntimeError::io("writing", path)(e.error))?;
    Ok(())
}
