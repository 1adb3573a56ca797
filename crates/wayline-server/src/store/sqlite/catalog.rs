//! Projects, their applications and the workspaces they were used in.

use rusqlite::{Connection, OptionalExtension, params};
use wayline_proto::v1 as pb;

use super::blob;
use crate::store::StoreError;

pub(super) const DEFAULT_WORKSPACE: &str = "default";

fn now_ms() -> i64 {
    wayline_core::time::to_millis(&wayline_core::time::now())
}

/// Creates the project (empty) and the app if missing.
pub(super) fn ensure_app(conn: &Connection, project: &str, app: &str) -> Result<(), StoreError> {
    let exists: bool = conn
        .query_row("SELECT 1 FROM projects WHERE name = ?1", [project], |_| {
            Ok(())
        })
        .optional()?
        .is_some();
    if !exists {
        let p = pb::Project {
            name: project.to_owned(),
            ..Default::default()
        };
        conn.execute(
            "INSERT INTO projects (name, data) VALUES (?1, ?2)",
            params![project, blob::seal(&p)],
        )?;
    }
    if !app.is_empty() {
        conn.execute(
            "INSERT OR IGNORE INTO apps (project, name) VALUES (?1, ?2)",
            params![project, app],
        )?;
    }
    Ok(())
}

/// Records the workspace as used by the project now.
pub(super) fn touch_workspace(
    conn: &Connection,
    workspace: &str,
    project: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO workspaces (name, project, active_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (name, project) DO UPDATE SET active_ms = excluded.active_ms",
        params![workspace, project, now_ms()],
    )?;
    Ok(())
}

/// One project with its applications.
pub(super) fn load_project(
    conn: &Connection,
    name: &str,
) -> Result<Option<pb::Project>, StoreError> {
    let data: Option<Vec<u8>> = conn
        .query_row("SELECT data FROM projects WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(data) = data else { return Ok(None) };
    let mut p: pb::Project = blob::decode("projects", &data)?;
    let mut stmt = conn.prepare_cached("SELECT name FROM apps WHERE project = ?1 ORDER BY name")?;
    p.applications = stmt
        .query_map([name], |r| r.get::<_, String>(0))?
        .map(|n| {
            Ok(pb::Application {
                project: name.to_owned(),
                name: n?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Some(p))
}

pub(super) fn upsert_project(
    c: &Connection,
    mut project: pb::Project,
) -> Result<pb::Project, StoreError> {
    if project.name.is_empty() {
        return Err(StoreError::Invalid("project.name is required".into()));
    }
    let apps = std::mem::take(&mut project.applications);
    c.execute(
        "INSERT OR REPLACE INTO projects (name, data) VALUES (?1, ?2)",
        params![project.name, blob::seal(&project)],
    )?;
    for app in apps {
        if app.name.is_empty() {
            return Err(StoreError::Invalid(format!(
                "project {}: an application has an empty name",
                project.name
            )));
        }
        c.execute(
            "INSERT OR IGNORE INTO apps (project, name) VALUES (?1, ?2)",
            params![project.name, app.name],
        )?;
    }
    touch_workspace(c, DEFAULT_WORKSPACE, &project.name)?;
    load_project(c, &project.name)?
        .ok_or_else(|| StoreError::NotFound(format!("project {} vanished", project.name)))
}

pub(super) fn list_projects(c: &Connection) -> Result<Vec<pb::Project>, StoreError> {
    let names: Vec<String> = c
        .prepare("SELECT name FROM projects ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        out.extend(load_project(c, &n)?);
    }
    Ok(out)
}

pub(super) fn delete_project(c: &Connection, name: &str) -> Result<bool, StoreError> {
    let n = c.execute("DELETE FROM projects WHERE name = ?1", [name])?;
    c.execute("DELETE FROM apps WHERE project = ?1", [name])?;
    c.execute("DELETE FROM workspaces WHERE project = ?1", [name])?;
    c.execute("DELETE FROM operations WHERE project = ?1", [name])?;
    c.execute("DELETE FROM canaries WHERE project = ?1", [name])?;
    Ok(n == 1)
}

pub(super) fn upsert_application(
    c: &Connection,
    project: String,
    name: String,
) -> Result<pb::Application, StoreError> {
    if project.is_empty() || name.is_empty() {
        return Err(StoreError::Invalid(
            "project and application name are required".into(),
        ));
    }
    ensure_app(c, &project, &name)?;
    touch_workspace(c, DEFAULT_WORKSPACE, &project)?;
    Ok(pb::Application { project, name })
}

pub(super) fn list_workspaces(c: &Connection) -> Result<Vec<pb::Workspace>, StoreError> {
    let mut stmt =
        c.prepare("SELECT name, project, active_ms FROM workspaces ORDER BY name, project")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut out: Vec<pb::Workspace> = Vec::new();
    for row in rows {
        let (name, project, active) = row?;
        if out.last().is_none_or(|w| w.name != name) {
            out.push(pb::Workspace {
                name: name.clone(),
                ..Default::default()
            });
        }
        let ws = out.last_mut().expect("just pushed");
        let t = wayline_core::time::from_millis(active);
        if ws
            .active_time
            .as_ref()
            .is_none_or(|cur| cur.seconds < t.seconds)
        {
            ws.active_time = Some(t);
        }
        ws.projects.push(pb::r#ref::Project { project });
    }
    Ok(out)
}
