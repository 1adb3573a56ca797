//! Stored records carry a checksum, so a damaged page is reported, not served.
//!
//! SQLite checks its page structure (and `quick_check` runs at start) but not the bytes inside
//! a record: a page overwritten in the middle of a blob still parses. Every `data` blob is
//! therefore stored as `sha256(payload)[..8] ‖ payload` and checked on every read; a mismatch
//! is [`StoreError::Damaged`] naming the table, not a corrupted config file handed to a runner.
//! Schema step 2 seals the rows written before (through the `wayline_seal` SQL function).

use prost::Message;
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use sha2::{Digest, Sha256};

use crate::store::StoreError;

const SUM_LEN: usize = 8;

fn sum(payload: &[u8]) -> [u8; SUM_LEN] {
    let digest = Sha256::digest(payload);
    let mut out = [0u8; SUM_LEN];
    out.copy_from_slice(&digest[..SUM_LEN]);
    out
}

/// `payload` with its checksum in front.
pub(super) fn seal_bytes(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SUM_LEN + payload.len());
    out.extend_from_slice(&sum(payload));
    out.extend_from_slice(payload);
    out
}

/// A message encoded and sealed for a `data` column.
pub(super) fn seal(msg: &impl Message) -> Vec<u8> {
    seal_bytes(&msg.encode_to_vec())
}

/// Checks a sealed blob from `table` and returns its payload.
pub(super) fn open<'a>(table: &str, sealed: &'a [u8]) -> Result<&'a [u8], StoreError> {
    if sealed.len() >= SUM_LEN {
        let (stored, payload) = sealed.split_at(SUM_LEN);
        if stored == sum(payload) {
            return Ok(payload);
        }
    }
    Err(StoreError::Damaged(format!(
        "a record in table `{table}` does not match its checksum (the database file is damaged)"
    )))
}

/// Checks and decodes a sealed message from `table`.
pub(super) fn decode<M: Message + Default>(table: &str, sealed: &[u8]) -> Result<M, StoreError> {
    Ok(M::decode(open(table, sealed)?)?)
}

/// Every message `sql` (selecting one sealed `data` column from `table`) returns.
pub(super) fn all<M: Message + Default>(
    conn: &Connection,
    table: &str,
    sql: &str,
) -> Result<Vec<M>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
    rows.map(|d| decode(table, &d?)).collect()
}

/// Registers `wayline_seal(blob)` for the schema step that seals existing rows.
pub(super) fn register_functions(conn: &Connection) -> Result<(), StoreError> {
    conn.create_scalar_function(
        "wayline_seal",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(seal_bytes(&ctx.get::<Vec<u8>>(0)?)),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store as _;
    use crate::store::sqlite::SqliteStore;
    use wayline_proto::v1 as pb;

    fn project(config: &[u8]) -> pb::Project {
        pb::Project {
            name: "web".into(),
            config_file: config.to_vec(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_damaged_blob_on_disk_is_reported_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let marker = b"app \"web\" { build { use \"docker\" {} } } # MARKER-0123456789";
        let store = SqliteStore::open(&path).unwrap();
        store.upsert_project(project(marker)).await.unwrap();
        store.close().await.unwrap();
        drop(store);
        // The clean close checkpointed the WAL: the record is in the file. Flip one byte of it.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes
            .windows(marker.len())
            .position(|w| w == marker)
            .expect("the record is in the database file");
        bytes[at + 10] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();

        let store = SqliteStore::open(&path).expect("the page structure is intact");
        let err = store.get_project("web").await.unwrap_err().to_string();
        assert_eq!(
            err,
            "a record in table `projects` does not match its checksum (the database file is damaged)"
        );
        assert!(store.list_projects().await.is_err());
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn rows_written_before_checksums_are_sealed_by_the_migration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let store = SqliteStore::open(&path).unwrap();
        store.upsert_project(project(b"old")).await.unwrap();
        store.close().await.unwrap();
        drop(store);
        // Make it a schema-1 file again: plain payloads, version 1.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("UPDATE projects SET data = substr(data, 9); PRAGMA user_version = 1;")
            .unwrap();
        drop(conn);
        let store = SqliteStore::open(&path).unwrap();
        let p = store.get_project("web").await.unwrap().unwrap();
        assert_eq!(p.config_file, b"old");
        store.close().await.unwrap();
    }

    #[test]
    fn a_changed_byte_is_reported_with_its_table() {
        let sealed = seal_bytes(b"project = \"web\"");
        assert_eq!(open("projects", &sealed).unwrap(), b"project = \"web\"");
        let mut bad = sealed.clone();
        bad[12] ^= 1;
        assert_eq!(
            open("projects", &bad).unwrap_err().to_string(),
            "a record in table `projects` does not match its checksum (the database file is damaged)"
        );
        assert!(open("jobs", b"abc").is_err());
    }
}
