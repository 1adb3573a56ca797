//! Operation records (builds, pushed artifacts, deployments, releases, status reports): the
//! per-app sequence, the one live release per app and workspace, and the indexed queries.

use std::fmt::Write as _;

use rusqlite::{Connection, OptionalExtension, params};
use wayline_proto::v1 as pb;

use super::blob;
use super::catalog::{DEFAULT_WORKSPACE, ensure_app, touch_workspace};
use crate::store::{OperationFilter, OperationTarget, StoreError};

fn read_ops(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<pb::Operation>, StoreError> {
    let rows = stmt.query_map(params, |r| {
        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, bool>(1)?))
    })?;
    rows.map(|row| {
        let (data, live) = row?;
        let mut op: pb::Operation = blob::decode("operations", &data)?;
        op.live = live;
        Ok(op)
    })
    .collect()
}

const KIND_RELEASE: i32 = pb::OperationKind::Release as i32;

pub(super) fn upsert_operation(
    conn: &Connection,
    mut op: pb::Operation,
) -> Result<pb::Operation, StoreError> {
    let kind = pb::OperationKind::try_from(op.kind)
        .ok()
        .filter(|k| *k != pb::OperationKind::Unspecified)
        .ok_or_else(|| StoreError::Invalid("operation.kind is required".into()))?;
    let Some(app) = op
        .application
        .clone()
        .filter(|a| !a.project.is_empty() && !a.application.is_empty())
    else {
        return Err(StoreError::Invalid(
            "operation.application is required: set both project and application".into(),
        ));
    };
    if op.workspace.is_empty() {
        DEFAULT_WORKSPACE.clone_into(&mut op.workspace);
    }
    let mut live = place(conn, &mut op, kind, &app)?;
    let state = stamp_times(&mut op);
    if kind as i32 == KIND_RELEASE {
        if op.physical_state == pb::PhysicalState::Destroyed as i32 {
            live = false;
        } else if state == pb::status::State::Success as i32 {
            conn.prepare_cached(
                "UPDATE operations SET live = 0 WHERE kind = ?1 AND project = ?2 AND app = ?3
                 AND workspace = ?4 AND live = 1 AND id != ?5",
            )?
            .execute(params![
                KIND_RELEASE,
                app.project,
                app.application,
                op.workspace,
                op.id
            ])?;
            live = true;
        }
    }
    op.live = live;
    if kind == pb::OperationKind::Deployment
        && op.physical_state == pb::PhysicalState::Destroyed as i32
    {
        unlive_releases_of(conn, &app, &op.workspace, &op.id)?;
    }
    let commit = op
        .provenance
        .as_ref()
        .map(|p| p.commit.clone())
        .unwrap_or_default();
    conn.prepare_cached(
        "INSERT OR REPLACE INTO operations
         (id, kind, project, app, workspace, seq, state, physical_state, commit_sha, live, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        op.id,
        kind as i32,
        app.project,
        app.application,
        op.workspace,
        op.sequence as i64,
        state,
        op.physical_state,
        commit,
        live,
        blob::seal(&op)
    ])?;
    Ok(op)
}

/// Checks an update against the stored record (same kind and application, which keeps its
/// sequence, start time and liveness), or gives a new one its id and the app's next sequence.
/// Whether the record is live so far.
fn place(
    conn: &Connection,
    op: &mut pb::Operation,
    kind: pb::OperationKind,
    app: &pb::r#ref::Application,
) -> Result<bool, StoreError> {
    let existing: Option<(i32, i64, bool, Vec<u8>)> = if op.id.is_empty() {
        None
    } else {
        conn.query_row(
            "SELECT kind, seq, live, data FROM operations WHERE id = ?1",
            [&op.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?
    };
    match existing {
        Some((old_kind, seq, old_live, data)) => {
            if old_kind != kind as i32 {
                return Err(StoreError::Invalid(format!(
                    "operation {} is a {}, not a {}",
                    op.id,
                    kind_name(old_kind),
                    kind_name(kind as i32)
                )));
            }
            let old: pb::Operation = blob::decode("operations", &data)?;
            if old.application != op.application {
                return Err(StoreError::Invalid(format!(
                    "operation {} belongs to another application; its application cannot change",
                    op.id
                )));
            }
            op.sequence = seq as u64;
            if let (Some(new), Some(old)) = (op.status.as_mut(), old.status.as_ref())
                && new.start_time.is_none()
            {
                new.start_time = old.start_time;
            }
            Ok(old_live)
        }
        None => {
            if op.id.is_empty() {
                op.id = wayline_core::id::new_id();
            }
            let max: i64 = conn
                .prepare_cached(
                    "SELECT COALESCE(MAX(seq), 0) FROM operations WHERE kind = ?1 AND project = ?2 AND app = ?3",
                )?
                .query_row(params![kind as i32, app.project, app.application], |r| r.get(0))?;
            op.sequence = max as u64 + 1;
            ensure_app(conn, &app.project, &app.application)?;
            touch_workspace(conn, &op.workspace, &app.project)?;
            Ok(false)
        }
    }
}

/// Sets the start time if unset, and the completion time of a finished one; its state.
fn stamp_times(op: &mut pb::Operation) -> i32 {
    let status = op.status.get_or_insert_with(Default::default);
    if status.start_time.is_none() {
        status.start_time = Some(wayline_core::time::now());
    }
    let state = status.state;
    if matches!(
        pb::status::State::try_from(state),
        Ok(pb::status::State::Success | pb::status::State::Error)
    ) && status.complete_time.is_none()
    {
        status.complete_time = Some(wayline_core::time::now());
    }
    state
}

/// A destroyed deployment is released nowhere: its live release stops being live (so lists,
/// `status` and the UI stop calling it live, and `rollback` has nothing live to leave).
fn unlive_releases_of(
    conn: &Connection,
    app: &pb::r#ref::Application,
    workspace: &str,
    deployment_id: &str,
) -> Result<(), StoreError> {
    let live: Option<(String, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT id, data FROM operations WHERE kind = ?1 AND project = ?2 AND app = ?3
             AND workspace = ?4 AND live = 1 LIMIT 1",
        )?
        .query_row(
            params![
                pb::OperationKind::Release as i32,
                app.project,
                app.application,
                workspace
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((id, data)) = live {
        let release: pb::Operation = blob::decode("operations", &data)?;
        if release.deployment_id == deployment_id {
            conn.prepare_cached("UPDATE operations SET live = 0 WHERE id = ?1")?
                .execute([id])?;
        }
    }
    Ok(())
}

fn kind_name(kind: i32) -> &'static str {
    match pb::OperationKind::try_from(kind) {
        Ok(pb::OperationKind::Build) => "build",
        Ok(pb::OperationKind::PushedArtifact) => "pushed artifact",
        Ok(pb::OperationKind::Deployment) => "deployment",
        Ok(pb::OperationKind::Release) => "release",
        Ok(pb::OperationKind::StatusReport) => "status report",
        _ => "record of unknown kind",
    }
}

pub(super) fn list_operations(
    conn: &Connection,
    f: &OperationFilter,
) -> Result<Vec<pb::Operation>, StoreError> {
    let mut sql = String::from("SELECT data, live FROM operations WHERE kind = ?");
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(f.kind)];
    if let Some((project, app)) = &f.app {
        sql.push_str(" AND project = ? AND app = ?");
        args.push(Box::new(project.clone()));
        args.push(Box::new(app.clone()));
    }
    if let Some(ws) = &f.workspace {
        sql.push_str(" AND workspace = ?");
        args.push(Box::new(ws.clone()));
    }
    if let Some(prefix) = f.commit_prefix.as_ref().filter(|p| !p.is_empty()) {
        sql.push_str(" AND substr(commit_sha, 1, ?) = ?");
        args.push(Box::new(prefix.len() as i64));
        args.push(Box::new(prefix.clone()));
    }
    if let Some(ps) = f.physical_state {
        sql.push_str(" AND physical_state = ?");
        args.push(Box::new(ps));
    }
    if let Some(st) = f.state {
        sql.push_str(" AND state = ?");
        args.push(Box::new(st));
    }
    // Within one app the sequence orders records; across apps the ULID id (creation time) does.
    let order_col = if f.app.is_some() { "seq" } else { "id" };
    let dir = if f.ascending { "ASC" } else { "DESC" };
    let _ = write!(sql, " ORDER BY {order_col} {dir}");
    if f.limit > 0 {
        let _ = write!(sql, " LIMIT {}", f.limit);
    }
    let mut stmt = conn.prepare_cached(&sql)?;
    let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| a.as_ref()).collect();
    read_ops(&mut stmt, &refs)
}

pub(super) fn get_operation(
    conn: &Connection,
    kind: i32,
    target: &OperationTarget,
) -> Result<Option<pb::Operation>, StoreError> {
    let ops = match target {
        OperationTarget::Id(id) => {
            let mut stmt = conn
                .prepare_cached("SELECT data, live FROM operations WHERE id = ?1 AND kind = ?2")?;
            read_ops(&mut stmt, &[id, &kind])?
        }
        OperationTarget::Latest {
            project,
            app,
            workspace,
            success_only,
        } => {
            let mut stmt = conn.prepare_cached(
                "SELECT data, live FROM operations WHERE kind = ?1 AND project = ?2 AND app = ?3
                 AND workspace = ?4 AND (?5 = 0 OR state = ?6) ORDER BY seq DESC LIMIT 1",
            )?;
            read_ops(
                &mut stmt,
                &[
                    &kind,
                    project,
                    app,
                    workspace,
                    success_only,
                    &(pb::status::State::Success as i32),
                ],
            )?
        }
        OperationTarget::Sequence { project, app, seq } => {
            let mut stmt = conn.prepare_cached(
                "SELECT data, live FROM operations WHERE kind = ?1 AND project = ?2 AND app = ?3 AND seq = ?4",
            )?;
            read_ops(&mut stmt, &[&kind, project, app, &(*seq as i64)])?
        }
        OperationTarget::Live {
            project,
            app,
            workspace,
        } => {
            let mut stmt = conn.prepare_cached(
                "SELECT data, live FROM operations WHERE kind = ?1 AND project = ?2 AND app = ?3
                 AND workspace = ?4 AND live = 1 LIMIT 1",
            )?;
            read_ops(&mut stmt, &[&KIND_RELEASE, project, app, workspace])?
        }
    };
    Ok(ops.into_iter().next())
}
