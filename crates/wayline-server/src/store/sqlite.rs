//! The embedded default store: one SQLite file in WAL mode.
//!
//! One writer thread owns the write connection and commits queued writes in batches ("group
//! commit"): each write runs in its own savepoint, so one failing write does not undo the others,
//! and every caller is answered only after the batch's COMMIT. `synchronous=NORMAL` in WAL mode
//! means a committed transaction survives the process being killed (kill -9); only an OS crash or
//! power loss can lose the last commits. Reads use a small pool of read connections on tokio's
//! blocking threads, so readers never wait for the writer.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use prost::Message;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;
use wayline_proto::v1 as pb;

mod ops;

use super::{
    IdTable, JobFilter, OperationFilter, OperationTarget, Pending, Store, StoreError, TokenRecord,
    schema,
};

type Reply = Box<dyn FnOnce(Result<(), Arc<str>>) + Send>;
type WriteCmd = Box<dyn FnOnce(&Connection) -> (bool, Reply) + Send>;

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;
/// Read connections kept open.
const MAX_IDLE_READERS: usize = 4;

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<WriteCmd>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    readers: Arc<Mutex<Vec<Connection>>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "busy_timeout", 5000)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        let mut conn = open_conn(path)?;
        quick_check(&conn)?;
        schema::migrate(&mut conn)?;
        let (tx, rx) = mpsc::channel::<WriteCmd>();
        let thread = std::thread::Builder::new()
            .name("wayline-db-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|source| StoreError::Io {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(thread)),
            readers: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Pending<T> {
        let (tx, rx) = oneshot::channel::<Result<T, StoreError>>();
        let cmd: WriteCmd = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |commit| {
                let out = match commit {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::Commit(e.to_string())),
                };
                let _ = tx.send(out);
            });
            (ok, reply)
        });
        let sent = self
            .writer
            .lock()
            .expect("writer lock")
            .as_ref()
            .is_some_and(|w| w.send(cmd).is_ok());
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Pending<T> {
        let pool = Arc::clone(&self.readers);
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let idle = pool.lock().expect("reader pool").pop();
                let conn = match idle {
                    Some(c) => c,
                    None => open_conn(&path)?,
                };
                let out = f(&conn);
                let mut idle = pool.lock().expect("reader pool");
                if idle.len() < MAX_IDLE_READERS {
                    idle.push(conn);
                }
                out
            })
            .await
            .map_err(|e| StoreError::Commit(format!("read task failed: {e}")))?
        })
    }
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<WriteCmd>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(_) => break,
            }
        }
        let mut replies = Vec::with_capacity(batch.len());
        let outcome = (|| -> Result<(), rusqlite::Error> {
            let mut tx = conn.transaction()?;
            for cmd in batch.drain(..) {
                let sp = tx.savepoint()?;
                let (ok, reply) = cmd(&sp);
                if ok {
                    sp.commit()?;
                } else {
                    drop(sp); // rolls back only this write
                }
                replies.push(reply);
            }
            tx.commit()
        })();
        let commit: Result<(), Arc<str>> = outcome.map_err(|e| {
            tracing::error!(error = %e, "database batch failed to commit");
            Arc::from(e.to_string())
        });
        // Commands never run (because the batch failed early) drop their senders: callers see Closed.
        for reply in replies {
            reply(commit.clone());
        }
    }
    // A clean stop leaves everything in the database file (and an empty WAL), so the file alone
    // is a complete copy once the server has stopped.
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "checkpointing the WAL at shutdown");
    }
    tracing::debug!("database writer stopped");
}

/// SQLite's fast consistency check (page structure and record formats, not index contents);
/// a damaged file is refused before anything is served from it.
fn quick_check(conn: &Connection) -> Result<(), StoreError> {
    let mut stmt = conn.prepare("PRAGMA quick_check(5)")?;
    let findings: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    if findings.len() == 1 && findings[0] == "ok" {
        return Ok(());
    }
    Err(StoreError::Damaged(findings.join("; ")))
}

fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, StoreError> {
    Ok(M::decode(bytes)?)
}

fn now_ms() -> i64 {
    wayline_core::time::to_millis(&wayline_core::time::now())
}

use ops::{get_operation, list_operations, upsert_operation};

const DEFAULT_WORKSPACE: &str = "default";

fn ensure_app(conn: &Connection, project: &str, app: &str) -> Result<(), StoreError> {
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
            params![project, p.encode_to_vec()],
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

fn touch_workspace(conn: &Connection, workspace: &str, project: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO workspaces (name, project, active_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (name, project) DO UPDATE SET active_ms = excluded.active_ms",
        params![workspace, project, now_ms()],
    )?;
    Ok(())
}

fn load_project(conn: &Connection, name: &str) -> Result<Option<pb::Project>, StoreError> {
    let data: Option<Vec<u8>> = conn
        .query_row("SELECT data FROM projects WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(data) = data else { return Ok(None) };
    let mut p: pb::Project = decode(&data)?;
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

fn list_jobs(conn: &Connection, f: &JobFilter) -> Result<Vec<pb::Job>, StoreError> {
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
    rows.map(|d| decode(&d?)).collect()
}

fn all_blobs<M: Message + Default>(conn: &Connection, sql: &str) -> Result<Vec<M>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
    rows.map(|d| decode(&d?)).collect()
}

fn app_key(project: &str, app: &str) -> (String, String) {
    (project.to_owned(), app.to_owned())
}

impl Store for SqliteStore {
    fn ids_with_prefix(&self, table: IdTable, prefix: &str, limit: u32) -> Pending<Vec<String>> {
        // A range on the primary key: every id >= prefix and < prefix + U+10FFFF (whose UTF-8
        // sorts after any continuation) starts with prefix; LIKE would not use the index.
        let low = prefix.to_owned();
        let high = format!("{prefix}\u{10ffff}");
        self.read(move |c| {
            let (sql, kind) = match table {
                IdTable::Jobs => (
                    "SELECT id FROM jobs WHERE id >= ?1 AND id < ?2 AND ?4 = 0 ORDER BY id LIMIT ?3",
                    0,
                ),
                IdTable::Operations(kind) => (
                    "SELECT id FROM operations WHERE id >= ?1 AND id < ?2 AND kind = ?4 ORDER BY id LIMIT ?3",
                    kind,
                ),
            };
            let mut stmt = c.prepare_cached(sql)?;
            let rows = stmt.query_map(params![low, high, limit, kind], |r| r.get::<_, String>(0))?;
            rows.map(|r| r.map_err(StoreError::from)).collect()
        })
    }

    fn get_state(&self, key: &str) -> Pending<Option<Vec<u8>>> {
        let key = key.to_owned();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT value FROM server_state WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn init_state(&self, key: &str, value: Vec<u8>) -> Pending<Vec<u8>> {
        let key = key.to_owned();
        self.write(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO server_state (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
            Ok(c.query_row(
                "SELECT value FROM server_state WHERE key = ?1",
                [key],
                |r| r.get(0),
            )?)
        })
    }

    fn claim_state(&self, key: &str, value: Vec<u8>) -> Pending<bool> {
        let key = key.to_owned();
        self.write(move |c| {
            Ok(c.execute(
                "INSERT OR IGNORE INTO server_state (key, value) VALUES (?1, ?2)",
                params![key, value],
            )? == 1)
        })
    }

    fn put_state(&self, key: &str, value: Vec<u8>) -> Pending<()> {
        let key = key.to_owned();
        self.write(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO server_state (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
            Ok(())
        })
    }

    fn delete_state(&self, key: &str) -> Pending<()> {
        let key = key.to_owned();
        self.write(move |c| {
            c.execute("DELETE FROM server_state WHERE key = ?1", [key])?;
            Ok(())
        })
    }

    fn insert_token(&self, t: TokenRecord) -> Pending<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO tokens (id, kind, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)",
                params![t.id, t.kind, t.created_ms, t.expires_ms],
            )?;
            Ok(())
        })
    }

    fn revoke_token(&self, id: &str) -> Pending<bool> {
        let id = id.to_owned();
        self.write(move |c| {
            Ok(c.execute("UPDATE tokens SET revoked = 1 WHERE id = ?1", [id])? == 1)
        })
    }

    fn revoked_tokens(&self) -> Pending<Vec<String>> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT id FROM tokens WHERE revoked = 1")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn upsert_project(&self, mut project: pb::Project) -> Pending<pb::Project> {
        self.write(move |c| {
            if project.name.is_empty() {
                return Err(StoreError::Invalid("project.name is required".into()));
            }
            let apps = std::mem::take(&mut project.applications);
            c.execute(
                "INSERT OR REPLACE INTO projects (name, data) VALUES (?1, ?2)",
                params![project.name, project.encode_to_vec()],
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
        })
    }

    fn get_project(&self, name: &str) -> Pending<Option<pb::Project>> {
        let name = name.to_owned();
        self.read(move |c| load_project(c, &name))
    }

    fn list_projects(&self) -> Pending<Vec<pb::Project>> {
        self.read(|c| {
            let names: Vec<String> = c
                .prepare("SELECT name FROM projects ORDER BY name")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut out = Vec::with_capacity(names.len());
            for n in names {
                out.extend(load_project(c, &n)?);
            }
            Ok(out)
        })
    }

    fn delete_project(&self, name: &str) -> Pending<bool> {
        let name = name.to_owned();
        self.write(move |c| {
            let n = c.execute("DELETE FROM projects WHERE name = ?1", [&name])?;
            c.execute("DELETE FROM apps WHERE project = ?1", [&name])?;
            c.execute("DELETE FROM workspaces WHERE project = ?1", [&name])?;
            c.execute("DELETE FROM operations WHERE project = ?1", [&name])?;
            Ok(n == 1)
        })
    }

    fn upsert_application(&self, project: &str, name: &str) -> Pending<pb::Application> {
        let (project, name) = app_key(project, name);
        self.write(move |c| {
            if project.is_empty() || name.is_empty() {
                return Err(StoreError::Invalid(
                    "project and application name are required".into(),
                ));
            }
            ensure_app(c, &project, &name)?;
            touch_workspace(c, DEFAULT_WORKSPACE, &project)?;
            Ok(pb::Application { project, name })
        })
    }

    fn touch_workspace(&self, workspace: &str, project: &str) -> Pending<()> {
        let (workspace, project) = app_key(workspace, project);
        self.write(move |c| touch_workspace(c, &workspace, &project))
    }

    fn list_workspaces(&self) -> Pending<Vec<pb::Workspace>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT name, project, active_ms FROM workspaces ORDER BY name, project",
            )?;
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
        })
    }

    fn upsert_operation(&self, op: pb::Operation) -> Pending<pb::Operation> {
        self.write(move |c| upsert_operation(c, op))
    }

    fn get_operation(&self, kind: i32, target: OperationTarget) -> Pending<Option<pb::Operation>> {
        self.read(move |c| get_operation(c, kind, &target))
    }

    fn list_operations(&self, filter: OperationFilter) -> Pending<Vec<pb::Operation>> {
        self.read(move |c| list_operations(c, &filter))
    }

    fn save_job(&self, job: &pb::Job) -> Pending<()> {
        let data = job.encode_to_vec();
        let id = job.id.clone();
        let state = job.state;
        let app = job.application.clone().unwrap_or_default();
        let workspace = job.workspace.clone();
        let target = match job.target_runner.as_ref().and_then(|t| t.target.as_ref()) {
            Some(pb::target_runner::Target::Id(id)) => id.clone(),
            _ => String::new(),
        };
        self.write(move |c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO jobs (id, state, project, app, workspace, target_runner, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![id, state, app.project, app.application, workspace, target, data])?;
            Ok(())
        })
    }

    fn append_job_events(
        &self,
        job_id: &str,
        idx: u64,
        events: Vec<pb::TerminalEvent>,
    ) -> Pending<()> {
        let job_id = job_id.to_owned();
        let data = pb::runner_job_stream_request::TerminalBatch { events }.encode_to_vec();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO job_events (job_id, idx, data) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![job_id, idx as i64, data])?;
            Ok(())
        })
    }

    fn get_job(&self, id: &str) -> Pending<Option<pb::Job>> {
        let id = id.to_owned();
        self.read(move |c| {
            let data: Option<Vec<u8>> = c
                .prepare_cached("SELECT data FROM jobs WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            data.map(|d| decode(&d)).transpose()
        })
    }

    fn job_events(&self, id: &str) -> Pending<Vec<pb::TerminalEvent>> {
        let id = id.to_owned();
        self.read(move |c| {
            let mut stmt =
                c.prepare_cached("SELECT data FROM job_events WHERE job_id = ?1 ORDER BY idx")?;
            let rows = stmt.query_map([id], |r| r.get::<_, Vec<u8>>(0))?;
            let mut out = Vec::new();
            for d in rows {
                let batch: pb::runner_job_stream_request::TerminalBatch = decode(&d?)?;
                out.extend(batch.events);
            }
            Ok(out)
        })
    }

    fn list_jobs(&self, filter: JobFilter) -> Pending<Vec<pb::Job>> {
        self.read(move |c| list_jobs(c, &filter))
    }

    fn unfinished_jobs(&self) -> Pending<Vec<pb::Job>> {
        self.read(|c| {
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
        })
    }

    fn job_counts(&self) -> Pending<Vec<(i32, u64)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT state, COUNT(*) FROM jobs GROUP BY state")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, i32>(0)?, r.get::<_, i64>(1)? as u64))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn save_runner(&self, runner: &pb::Runner) -> Pending<()> {
        let id = runner.id.clone();
        let data = runner.encode_to_vec();
        self.write(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO runners (id, data) VALUES (?1, ?2)",
                params![id, data],
            )?;
            Ok(())
        })
    }

    fn get_runner(&self, id: &str) -> Pending<Option<pb::Runner>> {
        let id = id.to_owned();
        self.read(move |c| {
            let data: Option<Vec<u8>> = c
                .query_row("SELECT data FROM runners WHERE id = ?1", [id], |r| r.get(0))
                .optional()?;
            data.map(|d| decode(&d)).transpose()
        })
    }

    fn list_runners(&self) -> Pending<Vec<pb::Runner>> {
        self.read(|c| all_blobs(c, "SELECT data FROM runners ORDER BY id"))
    }

    fn delete_runner(&self, id: &str) -> Pending<bool> {
        let id = id.to_owned();
        self.write(move |c| Ok(c.execute("DELETE FROM runners WHERE id = ?1", [id])? == 1))
    }

    fn set_config(&self, vars: Vec<pb::ConfigVar>) -> Pending<()> {
        self.write(move |c| {
            for v in vars {
                let key = params![
                    v.scope,
                    v.project,
                    v.application,
                    v.workspace,
                    v.label_selector,
                    v.name
                ];
                if matches!(v.value, Some(pb::config_var::Value::Unset(true))) {
                    c.execute(
                        "DELETE FROM config_vars WHERE scope = ?1 AND project = ?2 AND app = ?3
                         AND workspace = ?4 AND selector = ?5 AND name = ?6",
                        key,
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
                            v.encode_to_vec()
                        ],
                    )?;
                }
            }
            Ok(())
        })
    }

    fn list_config(&self) -> Pending<Vec<pb::ConfigVar>> {
        self.read(|c| all_blobs(c, "SELECT data FROM config_vars ORDER BY rowid"))
    }

    fn set_config_source(&self, s: pb::ConfigSource) -> Pending<()> {
        self.write(move |c| {
            if s.delete {
                c.execute(
                    "DELETE FROM config_sources WHERE type = ?1 AND scope = ?2 AND project = ?3 AND app = ?4",
                    params![s.r#type, s.scope, s.project, s.application],
                )?;
            } else {
                c.execute(
                    "INSERT OR REPLACE INTO config_sources (type, scope, project, app, data)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![s.r#type, s.scope, s.project, s.application, s.encode_to_vec()],
                )?;
            }
            Ok(())
        })
    }

    fn list_config_sources(&self) -> Pending<Vec<pb::ConfigSource>> {
        self.read(|c| {
            all_blobs(
                c,
                "SELECT data FROM config_sources ORDER BY type, scope, project, app",
            )
        })
    }

    fn create_hostname(&self, h: pb::Hostname) -> Pending<pb::Hostname> {
        self.write(move |c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO hostnames (hostname, data) VALUES (?1, ?2)",
                params![h.hostname, h.encode_to_vec()],
            )?;
            if n == 0 {
                return Err(StoreError::Exists(format!(
                    "hostname {} is already registered",
                    h.hostname
                )));
            }
            Ok(h)
        })
    }

    fn delete_hostname(&self, hostname: &str) -> Pending<bool> {
        let hostname = hostname.to_owned();
        self.write(move |c| {
            Ok(c.execute("DELETE FROM hostnames WHERE hostname = ?1", [hostname])? == 1)
        })
    }

    fn list_hostnames(&self) -> Pending<Vec<pb::Hostname>> {
        self.read(|c| all_blobs(c, "SELECT data FROM hostnames ORDER BY hostname"))
    }

    fn upsert_trigger(&self, mut t: pb::Trigger) -> Pending<pb::Trigger> {
        self.write(move |c| {
            if t.id.is_empty() {
                t.id = wayline_core::id::new_id();
            }
            c.execute(
                "INSERT OR REPLACE INTO triggers (id, data) VALUES (?1, ?2)",
                params![t.id, t.encode_to_vec()],
            )?;
            Ok(t)
        })
    }

    fn list_triggers(&self) -> Pending<Vec<pb::Trigger>> {
        self.read(|c| all_blobs(c, "SELECT data FROM triggers ORDER BY id"))
    }

    fn backup_to(&self, path: PathBuf) -> Pending<()> {
        // The online backup API copies a consistent snapshot page by page while writers continue.
        self.read(move |c| {
            let mut dst = Connection::open(&path)?;
            let backup = rusqlite::backup::Backup::new(c, &mut dst)?;
            backup.run_to_completion(256, std::time::Duration::ZERO, None)?;
            drop(backup);
            dst.pragma_update(None, "journal_mode", "DELETE")?;
            Ok(())
        })
    }

    fn close(&self) -> Pending<()> {
        let sender = self.writer.lock().expect("writer lock").take();
        let thread = self
            .writer_thread
            .lock()
            .expect("writer thread lock")
            .take();
        Box::pin(async move {
            drop(sender);
            if let Some(t) = thread {
                tokio::task::spawn_blocking(move || t.join())
                    .await
                    .map_err(|e| StoreError::Commit(e.to_string()))?
                    .map_err(|_| StoreError::Commit("database writer panicked".into()))?;
            }
            Ok(())
        })
    }
}

/// Checks that `path` is a Wayline database this build can open (used before a restore).
pub(crate) fn verify_database(path: &Path) -> Result<u32, StoreError> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if ok != "ok" {
        return Err(StoreError::Invalid(format!(
            "the snapshot failed SQLite's integrity check: {ok}"
        )));
    }
    let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == 0 || version > schema::CURRENT {
        return Err(StoreError::Invalid(format!(
            "the snapshot has schema version {version}; this server reads versions 1 to {}",
            schema::CURRENT
        )));
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrations_are_idempotent_and_newer_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let store = SqliteStore::open(&path).unwrap();
        store.put_state("k", b"v".to_vec()).await.unwrap();
        store.close().await.unwrap();
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.get_state("k").await.unwrap(), Some(b"v".to_vec()));
        assert_eq!(verify_database(&path).unwrap(), schema::CURRENT);
        store.close().await.unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = SqliteStore::open(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the database has schema version 99 but this server supports up to {}; upgrade Wayline",
                schema::CURRENT
            )
        );
    }

    #[tokio::test]
    async fn a_failing_write_does_not_undo_its_batch_neighbours() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("w.db")).unwrap();
        let host = |name: &str| pb::Hostname {
            hostname: name.into(),
            ..Default::default()
        };
        // Enqueued back to back, these usually share one transaction.
        let a = store.create_hostname(host("a"));
        let dup = store.create_hostname(host("a"));
        let b = store.create_hostname(host("b"));
        assert!(a.await.is_ok());
        assert_eq!(
            dup.await.unwrap_err().to_string(),
            "hostname a is already registered"
        );
        assert!(b.await.is_ok());
        let names: Vec<String> = store
            .list_hostnames()
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.hostname)
            .collect();
        assert_eq!(names, vec!["a", "b"]);
        store.close().await.unwrap();
        assert!(matches!(
            store.put_state("x", vec![]).await,
            Err(StoreError::Closed)
        ));
    }
}
