//! Canaries: one traffic split per app and workspace.

use rusqlite::{Connection, params};
use wayline_proto::v1 as pb;

use super::blob;
use crate::store::StoreError;

/// Stores `canary` in place of the app's previous one; weight 0 removes it.
pub(super) fn set(c: &Connection, canary: &pb::Canary) -> Result<(), StoreError> {
    let app = canary.application.clone().unwrap_or_default();
    if canary.weight == 0 {
        c.execute(
            "DELETE FROM canaries WHERE project = ?1 AND app = ?2 AND workspace = ?3",
            params![app.project, app.application, canary.workspace],
        )?;
    } else {
        c.execute(
            "INSERT OR REPLACE INTO canaries (project, app, workspace, data) VALUES (?1, ?2, ?3, ?4)",
            params![app.project, app.application, canary.workspace, blob::seal(canary)],
        )?;
    }
    Ok(())
}

pub(super) fn list(c: &Connection) -> Result<Vec<pb::Canary>, StoreError> {
    blob::all(
        c,
        "canaries",
        "SELECT data FROM canaries ORDER BY project, app, workspace",
    )
}
