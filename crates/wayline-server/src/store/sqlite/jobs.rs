//! Jobs, their stored terminal output, and runners.

use std::fmt::Write as _;

use rusqlite::{Connection, OptionalExtension, params};
use wayline_proto::v1 as pb;

use super::blob;
use crate::store::{JobFilter, StoreError};

/// A job as stored: the indexed columns beside the sealed message.
pub(super) struct JobRow {
    id: String,
    state: i32,
    project: String,
    app: String,
    workspace: String,
    target: String,
    data: Vec<u8>,
}

impl JobRow {
    pub(super) fn new(job: &pb::Job) -> Self {
        let app = job.application.clone().unwrap_or_default();
        let target = match job.target_runner.as_ref().and_then(|t| t.target.as_ref()) {
            Some(pb::target_runner::Target::Id(id)) => id.clone(),
            _ => String::new(),
        };
        Self {
            id: job.id.clone(),
            state: job.state,
            project: app.project,
            app: app.application,
            workspace: job.workspace.clone(),
            target,
            data: blob::seal(job),
        }
    }
}

pub(super) fn save_job(c: &Connection, j: &JobRow) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT OR REPLACE INTO jobs (id, state, project, app, workspace, target_runner, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        j.id,
        j.state,
        j.project,
        j.app,
        j.workspace,
        j.target,
        j.data
    ])?;
    Ok(())
}

/// The sealed form of a batch of terminal events.
pub(super) fn seal_events(events: Vec<pb::TerminalEvent>) -> Vec<u8> {
    blob::seal(&pb::runner_job_stream_request::TerminalBatch { events })
}

pub(super) fn append_job_events(
    c: &Connection,
    job_id: &str,
    idx: u64,
    sealed: &[u8],
) -> Result<(), StoreError> {
    c.prepare_cached("INSERT OR REPLACE INTO job_events (job_id, idx, data) VALUES (?1, ?2, ?3)")?
        .execute(params![job_id, idx as i64, sealed])?;
    Ok(())
}

pub(super) fn get_job(c: &Connection, id: &str) -> Result<Option<pb::Job>, StoreError> {
    let data: Option<Vec<u8>> = c
        .prepare_cached("SELECT data FROM jobs WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    data.map(|d| blob::decode("jobs", &d)).transpose()
}

pub(super) fn job_events(c: &Connection, id: &str) -> Result<Vec<pb::TerminalEvent>, StoreError> {
    let mut stmt =
        c.prepare_cached("SELECT data FROM job_events WHERE job_id = ?1 ORDER BY idx")?;
    let rows = stmt.query_map([id], |r| r.get::<_, Vec<u8>>(0))?;
    let mut out = Vec::new();
    for d in rows {
        let batch: pb::runner_job_stream_request::TerminalBatch = blob::decode("job_events", &d?)?;
        out.extend(batch.events);
    }
    Ok(out)
}

pub(super) fn list_jobs(conn: &Connection, f: &JobFilter) -> Result<Vec<pb::Job>, StoreError> {
    let mut sql = String::from("SELECT data FROM jobs WHERE 1 = 1");
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
    // An empty project or app does not narrow (`job list -project X` alone lists X's jobs).
    if let Some((project, app)) = &f.app {
        if !project.is_empty() {
            sql.push_str(" AND project = ?");
            args.push(Box::new(project.clone()));
        }
        if !app.is_empty() {
            sql.push_str(" AND app = ?");
            args.push(Box::new(app.clone()));
        }
    }
    if let Some(ws) = &f.workspace {
        sql.push_str(" AND workspace = ?");
        args.push(Box::new(ws.clone()));
    }
    if !f.states.is_empty() {
        let marks = vec!["?"; f.states.len()].join(", ");
        let _ = write!(sql, " AND state IN ({marks})");
        for s in &f.states {
            args.push(Box::new(*s));
        }
    }
    if let Some(r) = &f.target_runner_id {
        sql.push_str(" AND target_runner = ?");
        args.push(Box::new(r.clone()));
    }
    let dir = if f.ascending { "ASC" } else { "DESC" };
    let _ = write!(sql, " ORDER BY id {dir}");
    if f.limit > 0 {
        let _ = write!(sql, " LIMIT {}", f.limit);
    }
    let mut stmt = conn.prepare_cached(&sql)?;
    let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| a.as_ref()).collect();
    let rows = stmt.query_map(refs.as_slice(), |r| r.get::<_, Vec<u8>>(0))?;
    rows.map(|d| blob::decode("jobs", &d?)).collect()
}

pub(super) fn unfinished_jobs(c: &Connection) -> Result<Vec<pb::Job>, StoreError> {
    list_jobs(
        c,
        &JobFilter {
            states: vec![
                pb::job::State::Queued as i32,
                pb::job::State::Waiting as i32,
                pb::job::State::Running as i32,
            ],
            ascending: true,
            ..Default::default()
        },
    )
}

pub(super) fn job_counts(c: &Connection) -> Result<Vec<(i32, u64)>, StoreError> {
    let mut stmt = c.prepare_cached("SELECT state, COUNT(*) FROM jobs GROUP BY state")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, i32>(0)?, r.get::<_, i64>(1)? as u64))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn save_runner(c: &Connection, id: &str, sealed: &[u8]) -> Result<(), StoreError> {
    c.execute(
        "INSERT OR REPLACE INTO runners (id, data) VALUES (?1, ?2)",
        params![id, sealed],
    )?;
    Ok(())
}

pub(super) fn get_runner(c: &Connection, id: &str) -> Result<Option<pb::Runner>, StoreError> {
    let data: Option<Vec<u8>> = c
        .query_row("SELECT data FROM runners WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    data.map(|d| blob::decode("runners", &d)).transpose()
}

pub(super) fn list_runners(c: &Connection) -> Result<Vec<pb::Runner>, StoreError> {
    blob::all(c, "runners", "SELECT data FROM runners ORDER BY id")
}

pub(super) fn delete_runner(c: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(c.execute("DELETE FROM runners WHERE id = ?1", [id])? == 1)
}
