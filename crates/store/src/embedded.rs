//! Embedded backend: one SQLite file in WAL mode, safe for many processes.

use std::path::Path;

use crate::api::StoreError;

pub struct SqliteStore {}

impl SqliteStore {
    pub fn open(_path: &Path) -> Result<SqliteStore, StoreError> {
        Err(StoreError::Backend("not yet".into()))
    }
}
