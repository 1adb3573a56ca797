//! Schema migrations, applied in order and recorded in SQLite's `user_version`.

use rusqlite::Connection;

/// Each entry moves the schema from version `i` to `i + 1`. Append only: never edit a shipped step.
const MIGRATIONS: &[&str] = &[
    // v1: the first schema.
    r"
    CREATE TABLE server_state (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, created_ms INTEGER NOT NULL,
        expires_ms INTEGER, revoked INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE TABLE projects (name TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
    CREATE TABLE apps (project TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (project, name)) WITHOUT ROWID;
    CREATE TABLE workspaces (
        name TEXT NOT NULL, project TEXT NOT NULL, active_ms INTEGER NOT NULL,
        PRIMARY KEY (name, project)
    ) WITHOUT ROWID;
    CREATE TABLE operations (
        id TEXT PRIMARY KEY, kind INTEGER NOT NULL, project TEXT NOT NULL, app TEXT NOT NULL,
        workspace TEXT NOT NULL, seq INTEGER NOT NULL, state INTEGER NOT NULL,
        physical_state INTEGER NOT NULL, commit_sha TEXT NOT NULL, live INTEGER NOT NULL DEFAULT 0,
        data BLOB NOT NULL
    );
    CREATE UNIQUE INDEX operations_app_seq ON operations (kind, project, app, seq);
    CREATE INDEX operations_app_ws_seq ON operations (kind, project, app, workspace, seq);
    CREATE INDEX operations_kind_id ON operations (kind, id);
    CREATE INDEX operations_live ON operations (kind, project, app, workspace) WHERE live = 1;
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY, state INTEGER NOT NULL, project TEXT NOT NULL, app TEXT NOT NULL,
        workspace TEXT NOT NULL, target_runner TEXT NOT NULL, data BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX jobs_state ON jobs (state);
    CREATE INDEX jobs_app ON jobs (project, app, workspace, id);
    CREATE TABLE job_events (
        job_id TEXT NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (job_id, idx)
    ) WITHOUT ROWID;
    CREATE TABLE runners (id TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
    CREATE TABLE config_vars (
        scope INTEGER NOT NULL, project TEXT NOT NULL, app TEXT NOT NULL, workspace TEXT NOT NULL,
        selector TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (scope, project, app, workspace, selector, name)
    );
    CREATE TABLE config_sources (
        type TEXT NOT NULL, scope INTEGER NOT NULL, project TEXT NOT NULL, app TEXT NOT NULL,
        data BLOB NOT NULL, PRIMARY KEY (type, scope, project, app)
    ) WITHOUT ROWID;
    CREATE TABLE hostnames (hostname TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
    CREATE TABLE triggers (id TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
    ",
    // v2: every record blob carries a checksum (see `sqlite/blob.rs`); seal the existing rows.
    r"
    UPDATE projects SET data = wayline_seal(data);
    UPDATE operations SET data = wayline_seal(data);
    UPDATE jobs SET data = wayline_seal(data);
    UPDATE job_events SET data = wayline_seal(data);
    UPDATE runners SET data = wayline_seal(data);
    UPDATE config_vars SET data = wayline_seal(data);
    UPDATE config_sources SET data = wayline_seal(data);
    UPDATE hostnames SET data = wayline_seal(data);
    UPDATE triggers SET data = wayline_seal(data);
    ",
    // v3: canaries, one per app and workspace (a sealed `Canary`).
    r"
    CREATE TABLE IF NOT EXISTS canaries (
        project TEXT NOT NULL, app TEXT NOT NULL, workspace TEXT NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (project, app, workspace)
    ) WITHOUT ROWID;
    ",
];

/// The schema version this build writes.
pub(crate) const CURRENT: u32 = MIGRATIONS.len() as u32;

/// Brings `conn` up to [`CURRENT`], one transaction per step.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), super::StoreError> {
    let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > CURRENT {
        return Err(super::StoreError::TooNew {
            found: version,
            supported: CURRENT,
        });
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", i as u32 + 1)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied schema migration");
    }
    Ok(())
}
