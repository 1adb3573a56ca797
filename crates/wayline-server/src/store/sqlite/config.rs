//! Config variables and sources, hostnames and triggers.

use rusqlite::{Connection, params};
use wayline_proto::v1 as pb;

use super::blob;
use crate::store::StoreError;

pub(super) fn set_config(c: &Connection, vars: Vec<pb::ConfigVar>) -> Result<(), StoreError> {
    for v in vars {
        if matches!(v.value, Some(pb::config_var::Value::Unset(true))) {
            c.execute(
                "DELETE FROM config_vars WHERE scope = ?1 AND project = ?2 AND app = ?3
                 AND workspace = ?4 AND selector = ?5 AND name = ?6",
                params![
                    v.scope,
                    v.project,
                    v.application,
                    v.workspace,
                    v.label_selector,
                    v.name
                ],
            )?;
        } else {
            c.execute(
                "INSERT OR REPLACE INTO config_vars (scope, project, app, workspace, selector, name, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    v.scope,
                    v.project,
                    v.application,
                    v.workspace,
                    v.label_selector,
                    v.name,
                    blob::seal(&v)
                ],
            )?;
        }
    }
    Ok(())
}

pub(super) fn list_config(c: &Connection) -> Result<Vec<pb::ConfigVar>, StoreError> {
    blob::all(
        c,
        "config_vars",
        "SELECT data FROM config_vars ORDER BY rowid",
    )
}

pub(super) fn set_config_source(c: &Connection, s: &pb::ConfigSource) -> Result<(), StoreError> {
    if s.delete {
        c.execute(
            "DELETE FROM config_sources WHERE type = ?1 AND scope = ?2 AND project = ?3 AND app = ?4",
            params![s.r#type, s.scope, s.project, s.application],
        )?;
    } else {
        c.execute(
            "INSERT OR REPLACE INTO config_sources (type, scope, project, app, data)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![s.r#type, s.scope, s.project, s.application, blob::seal(s)],
        )?;
    }
    Ok(())
}

pub(super) fn list_config_sources(c: &Connection) -> Result<Vec<pb::ConfigSource>, StoreError> {
    blob::all(
        c,
        "config_sources",
        "SELECT data FROM config_sources ORDER BY type, scope, project, app",
    )
}

pub(super) fn create_hostname(c: &Connection, h: pb::Hostname) -> Result<pb::Hostname, StoreError> {
    let n = c.execute(
        "INSERT OR IGNORE INTO hostnames (hostname, data) VALUES (?1, ?2)",
        params![h.hostname, blob::seal(&h)],
    )?;
    if n == 0 {
        return Err(StoreError::Exists(format!(
            "hostname {} is already registered",
            h.hostname
        )));
    }
    Ok(h)
}

pub(super) fn delete_hostname(c: &Connection, hostname: &str) -> Result<bool, StoreError> {
    Ok(c.execute("DELETE FROM hostnames WHERE hostname = ?1", [hostname])? == 1)
}

pub(super) fn list_hostnames(c: &Connection) -> Result<Vec<pb::Hostname>, StoreError> {
    blob::all(
        c,
        "hostnames",
        "SELECT data FROM hostnames ORDER BY hostname",
    )
}

pub(super) fn upsert_trigger(
    c: &Connection,
    mut t: pb::Trigger,
) -> Result<pb::Trigger, StoreError> {
    if t.id.is_empty() {
        t.id = wayline_core::id::new_id();
    }
    c.execute(
        "INSERT OR REPLACE INTO triggers (id, data) VALUES (?1, ?2)",
        params![t.id, blob::seal(&t)],
    )?;
    Ok(t)
}

pub(super) fn list_triggers(c: &Connection) -> Result<Vec<pb::Trigger>, StoreError> {
    blob::all(c, "triggers", "SELECT data FROM triggers ORDER BY id")
}
