//! Opening the database file: pragmas, busy handling and the schema.
//!
//! Tables (see docs/store.md):
//! - `meta(name, value)`: `revision` (current store revision), `compacted` (the
//!   newest revision whose history is gone) and `schema`;
//! - `kv(key, value, create_rev, mod_rev, version, lease)`: the current keys;
//! - `log(rev, seq, kind, key, value, create_rev, version, lease, prev_*)`: one row per
//!   change, `seq` orders the changes of one revision; `prev_*` is the key before it;
//! - `leases(id, ttl_ms, expires_at_ms)`: expiry is wall-clock milliseconds, shared by
//!   every process that opens the file.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::api::StoreError;

/// The layout this code reads and writes.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// How long a write waits for another connection's write lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('schema', 1), ('revision', 1), ('compacted', 0);
CREATE TABLE IF NOT EXISTS kv (
    key        BLOB PRIMARY KEY,
    value      BLOB NOT NULL,
    create_rev INTEGER NOT NULL,
    mod_rev    INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    lease      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_by_lease ON kv (lease) WHERE lease <> 0;
CREATE TABLE IF NOT EXISTS log (
    rev             INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    kind            INTEGER NOT NULL,
    key             BLOB NOT NULL,
    value           BLOB NOT NULL,
    create_rev      INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    lease           INTEGER NOT NULL,
    prev_value      BLOB,
    prev_create_rev INTEGER,
    prev_mod_rev    INTEGER,
    prev_version    INTEGER,
    prev_lease      INTEGER,
    PRIMARY KEY (rev, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    id            INTEGER PRIMARY KEY,
    ttl_ms        INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_by_expiry ON leases (expires_at_ms);
";

/// Maps SQLite trouble to the store's errors: a lock held too long by another
/// process is transient (`Unavailable`), anything else a backend error.
pub(crate) fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable {
                endpoint: path.display().to_string(),
                message: format!("database stayed locked for more than {BUSY_TIMEOUT:?}: {e}"),
            }
        }
        _ => StoreError::Backend(format!("sqlite database {}: {e}", path.display())),
    }
}

thread_local! {
    /// Set while this thread runs something that must not wait for other
    /// connections' locks (see [`without_waiting`]).
    static NO_WAIT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the busy handler of this thread's connections answering at once:
/// a lock held by another connection fails `f`'s statement with `SQLITE_BUSY`
/// instead of waiting for it (for optional work such as a checkpoint).
pub(crate) fn without_waiting<T>(f: impl FnOnce() -> T) -> T {
    let before = NO_WAIT.with(|w| w.replace(true));
    let out = f();
    NO_WAIT.with(|w| w.set(before));
    out
}

/// Waits for a lock held by another connection: short sleeps so that a freed lock is
/// taken at once (SQLite's default handler sleeps up to 100 ms), `BUSY_TIMEOUT` in all.
fn busy(attempt: i32) -> bool {
    if NO_WAIT.with(std::cell::Cell::get) {
        return false;
    }
    let attempt = u64::try_from(attempt).unwrap_or(0);
    let (spin, step) = (20u64, Duration::from_micros(200));
    let waited = if attempt < spin {
        step * attempt as u32
    } else {
        step * spin as u32 + Duration::from_millis(attempt - spin)
    };
    if waited >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(if attempt < spin {
        step
    } else {
        Duration::from_millis(1)
    });
    true
}

/// Opens one connection with the pragmas every connection needs.
pub(crate) fn connect(path: &Path) -> Result<Connection, StoreError> {
    let err = sql_err(path);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(&err)?;
    conn.busy_handler(Some(busy)).map_err(&err)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(&err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "sqlite database {}: expected journal_mode wal, found {mode}",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(&err)?;
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(&err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Creates the tables when missing (in a write transaction, so that processes opening
/// a new file at the same time agree) and checks the schema version.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let err = sql_err(path);
    // The usual case needs no write lock: the schema is there already.
    let existing: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE name = 'schema'", [], |r| {
            r.get(0)
        })
        .ok();
    if existing == Some(SCHEMA_VERSION) {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(&err)?;
    tx.execute_batch(SCHEMA).map_err(&err)?;
    let version: i64 = tx
        .query_row("SELECT value FROM meta WHERE name = 'schema'", [], |r| {
            r.get(0)
        })
        .map_err(&err)?;
    if version != SCHEMA_VERSION {
        return Err(StoreError::Backend(format!(
            "sqlite database {}: expected schema version {SCHEMA_VERSION}, found {version}",
            path.display()
        )));
    }
    tx.commit().map_err(&err)
}

/// What the internal functions fail with: SQLite trouble or a store-level answer
/// (lease not found, compacted, ...).
#[derive(Debug)]
pub(crate) enum DbError {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sql(e)
    }
}

impl From<StoreError> for DbError {
    fn from(e: StoreError) -> Self {
        DbError::Store(e)
    }
}

impl DbError {
    pub(crate) fn into_store(self, path: &Path) -> StoreError {
        match self {
            DbError::Sql(e) => sql_err(path)(e),
            DbError::Store(e) => e,
        }
    }
}
