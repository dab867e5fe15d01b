//! Reading keys and the change log; the functions take any connection or transaction.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::api::{Event, EventKind, KeyValue, Revision};
use crate::util::prefix_end;

/// A place in the change log: (revision, sequence number within the revision).
/// `(rev, i64::MAX)` means "all of revision `rev`".
pub(crate) type Pos = (Revision, i64);

/// The position after every change of revision `rev`.
pub(crate) fn end_of(rev: Revision) -> Pos {
    (rev, i64::MAX)
}

/// One change read from the log, with its place in it.
#[derive(Debug, Clone)]
pub(crate) struct LogEvent {
    pub pos: Pos,
    pub event: Event,
}

pub(crate) const KIND_PUT: i64 = 0;
pub(crate) const KIND_DELETE: i64 = 1;

const LOG_COLUMNS: &str = "rev, seq, kind, key, value, create_rev, version, lease, \
     prev_value, prev_create_rev, prev_mod_rev, prev_version, prev_lease";

/// Keys are written from `&str`, so they are UTF-8; a foreign writer's bytes are
/// shown lossily rather than failing the read.
pub(crate) fn key_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Current revision and compacted revision.
pub(crate) fn meta(conn: &Connection) -> rusqlite::Result<(Revision, Revision)> {
    let mut stmt = conn.prepare_cached(
        "SELECT (SELECT value FROM meta WHERE name = 'revision'), \
                (SELECT value FROM meta WHERE name = 'compacted')",
    )?;
    stmt.query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
}

fn kv_row(r: &Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: key_string(r.get(0)?),
        value: r.get(1)?,
        create_revision: r.get(2)?,
        mod_revision: r.get(3)?,
        version: r.get(4)?,
        lease: r.get(5)?,
    })
}

pub(crate) fn get_kv(conn: &Connection, key: &str) -> rusqlite::Result<Option<KeyValue>> {
    let mut stmt = conn.prepare_cached(
        "SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE key = ?1",
    )?;
    stmt.query_row([key.as_bytes()], kv_row).optional()
}

/// Every key under `prefix`, sorted, by an index range scan.
pub(crate) fn range_kvs(conn: &Connection, prefix: &str) -> rusqlite::Result<Vec<KeyValue>> {
    match prefix_end(prefix.as_bytes()) {
        Some(end) => {
            let mut stmt = conn.prepare_cached(
                "SELECT key, value, create_rev, mod_rev, version, lease FROM kv \
                 WHERE key >= ?1 AND key < ?2 ORDER BY key",
            )?;
            let rows = stmt.query_map(params![prefix.as_bytes(), end], kv_row)?;
            rows.collect()
        }
        None => {
            let mut stmt = conn.prepare_cached(
                "SELECT key, value, create_rev, mod_rev, version, lease FROM kv \
                 WHERE key >= ?1 ORDER BY key",
            )?;
            let rows = stmt.query_map(params![prefix.as_bytes()], kv_row)?;
            rows.collect()
        }
    }
}

/// Keys attached to `lease`, sorted.
pub(crate) fn lease_keys(conn: &Connection, lease: i64) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT key FROM kv WHERE lease = ?1 AND lease <> 0 ORDER BY key")?;
    let rows = stmt.query_map([lease], |r| r.get::<_, Vec<u8>>(0).map(key_string))?;
    rows.collect()
}

fn log_row(r: &Row<'_>) -> rusqlite::Result<LogEvent> {
    let rev: Revision = r.get(0)?;
    let seq: i64 = r.get(1)?;
    let kind = if r.get::<_, i64>(2)? == KIND_DELETE {
        EventKind::Delete
    } else {
        EventKind::Put
    };
    let key = key_string(r.get(3)?);
    let prev = match r.get::<_, Option<Vec<u8>>>(8)? {
        Some(value) => Some(KeyValue {
            key: key.clone(),
            value,
            create_revision: r.get(9)?,
            mod_revision: r.get(10)?,
            version: r.get(11)?,
            lease: r.get(12)?,
        }),
        None => None,
    };
    Ok(LogEvent {
        pos: (rev, seq),
        event: Event {
            kind,
            kv: KeyValue {
                key,
                value: r.get(4)?,
                create_revision: r.get(5)?,
                mod_revision: rev,
                version: r.get(6)?,
                lease: r.get(7)?,
            },
            prev,
        },
    })
}

/// Changes after `after` up to `upto` (inclusive), of keys under `prefix`, in order;
/// at most `limit`.
pub(crate) fn log_range(
    conn: &Connection,
    after: Pos,
    upto: Pos,
    prefix: &str,
    limit: usize,
) -> rusqlite::Result<Vec<LogEvent>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let end = prefix_end(prefix.as_bytes());
    let sql = format!(
        "SELECT {LOG_COLUMNS} FROM log \
         WHERE rev >= ?1 AND rev <= ?3 AND (rev, seq) > (?1, ?2) AND (rev, seq) <= (?3, ?4) \
           AND key >= ?5 AND (?6 IS NULL OR key < ?6) \
         ORDER BY rev, seq LIMIT ?7"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            after.0,
            after.1,
            upto.0,
            upto.1,
            prefix.as_bytes(),
            end,
            limit
        ],
        log_row,
    )?;
    rows.collect()
}

/// Every change after `after`, in order; at most `limit`.
pub(crate) fn log_after(
    conn: &Connection,
    after: Pos,
    limit: usize,
) -> rusqlite::Result<Vec<LogEvent>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let sql = format!(
        "SELECT {LOG_COLUMNS} FROM log WHERE rev >= ?1 AND (rev, seq) > (?1, ?2) \
         ORDER BY rev, seq LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![after.0, after.1, limit], log_row)?;
    rows.collect()
}
