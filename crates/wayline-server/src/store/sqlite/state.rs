//! The server's key/value state and the token records (ids only, for revocation).

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::{StoreError, TokenRecord};

pub(super) fn get(c: &Connection, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(c.query_row(
        "SELECT value FROM server_state WHERE key = ?1",
        [key],
        |r| r.get(0),
    )
    .optional()?)
}

/// Stores `value` unless `key` has one; returns the stored value.
pub(super) fn init(c: &Connection, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
    c.execute(
        "INSERT OR IGNORE INTO server_state (key, value) VALUES (?1, ?2)",
        params![key, value],
    )?;
    Ok(c.query_row(
        "SELECT value FROM server_state WHERE key = ?1",
        [key],
        |r| r.get(0),
    )?)
}

/// Stores `value` if `key` is absent; true when this call stored it.
pub(super) fn claim(c: &Connection, key: &str, value: &[u8]) -> Result<bool, StoreError> {
    Ok(c.execute(
        "INSERT OR IGNORE INTO server_state (key, value) VALUES (?1, ?2)",
        params![key, value],
    )? == 1)
}

pub(super) fn put(c: &Connection, key: &str, value: &[u8]) -> Result<(), StoreError> {
    c.execute(
        "INSERT OR REPLACE INTO server_state (key, value) VALUES (?1, ?2)",
        params![key, value],
    )?;
    Ok(())
}

pub(super) fn delete(c: &Connection, key: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM server_state WHERE key = ?1", [key])?;
    Ok(())
}

pub(super) fn insert_token(c: &Connection, t: &TokenRecord) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO tokens (id, kind, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)",
        params![t.id, t.kind, t.created_ms, t.expires_ms],
    )?;
    Ok(())
}

pub(super) fn revoke_token(c: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(c.execute("UPDATE tokens SET revoked = 1 WHERE id = ?1", [id])? == 1)
}

pub(super) fn revoked_tokens(c: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = c.prepare("SELECT id FROM tokens WHERE revoked = 1")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
