//! The embedded default store: one SQLite file in WAL mode.
//!
//! One writer thread owns the write connection and commits queued writes in batches ("group
//! commit"): each write runs in its own savepoint, so one failing write does not undo the others,
//! and every caller is answered only after the batch's COMMIT. `synchronous=NORMAL` in WAL mode
//! means a committed transaction survives the process being killed (kill -9); only an OS crash or
//! power loss can lose the last commits. Reads use a small pool of read connections on tokio's
//! blocking threads, so readers never wait for the writer.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;
use wayline_proto::v1 as pb;

mod blob;
mod canary;
mod catalog;
mod config;
mod jobs;
mod ops;
mod state;

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
        blob::register_functions(&conn)?;
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
    Err(StoreError::Damaged(format!(
        "SQLite's quick_check reports: {}",
        findings.join("; ")
    )))
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
            let rows = stmt.query_map(rusqlite::params![low, high, limit, kind], |r| {
                r.get::<_, String>(0)
            })?;
            rows.map(|r| r.map_err(StoreError::from)).collect()
        })
    }

    fn get_state(&self, key: &str) -> Pending<Option<Vec<u8>>> {
        let key = key.to_owned();
        self.read(move |c| state::get(c, &key))
    }

    fn init_state(&self, key: &str, value: Vec<u8>) -> Pending<Vec<u8>> {
        let key = key.to_owned();
        self.write(move |c| state::init(c, &key, &value))
    }

    fn claim_state(&self, key: &str, value: Vec<u8>) -> Pending<bool> {
        let key = key.to_owned();
        self.write(move |c| state::claim(c, &key, &value))
    }

    fn put_state(&self, key: &str, value: Vec<u8>) -> Pending<()> {
        let key = key.to_owned();
        self.write(move |c| state::put(c, &key, &value))
    }

    fn delete_state(&self, key: &str) -> Pending<()> {
        let key = key.to_owned();
        self.write(move |c| state::delete(c, &key))
    }

    fn insert_token(&self, t: TokenRecord) -> Pending<()> {
        self.write(move |c| state::insert_token(c, &t))
    }

    fn revoke_token(&self, id: &str) -> Pending<bool> {
        let id = id.to_owned();
        self.write(move |c| state::revoke_token(c, &id))
    }

    fn revoked_tokens(&self) -> Pending<Vec<String>> {
        self.read(state::revoked_tokens)
    }

    fn upsert_project(&self, project: pb::Project) -> Pending<pb::Project> {
        self.write(move |c| catalog::upsert_project(c, project))
    }

    fn get_project(&self, name: &str) -> Pending<Option<pb::Project>> {
        let name = name.to_owned();
        self.read(move |c| catalog::load_project(c, &name))
    }

    fn list_projects(&self) -> Pending<Vec<pb::Project>> {
        self.read(catalog::list_projects)
    }

    fn delete_project(&self, name: &str) -> Pending<bool> {
        let name = name.to_owned();
        self.write(move |c| catalog::delete_project(c, &name))
    }

    fn upsert_application(&self, project: &str, name: &str) -> Pending<pb::Application> {
        let (project, name) = (project.to_owned(), name.to_owned());
        self.write(move |c| catalog::upsert_application(c, project, name))
    }

    fn touch_workspace(&self, workspace: &str, project: &str) -> Pending<()> {
        let (workspace, project) = (workspace.to_owned(), project.to_owned());
        self.write(move |c| catalog::touch_workspace(c, &workspace, &project))
    }

    fn list_workspaces(&self) -> Pending<Vec<pb::Workspace>> {
        self.read(catalog::list_workspaces)
    }

    fn upsert_operation(&self, op: pb::Operation) -> Pending<pb::Operation> {
        self.write(move |c| ops::upsert_operation(c, op))
    }

    fn get_operation(&self, kind: i32, target: OperationTarget) -> Pending<Option<pb::Operation>> {
        self.read(move |c| ops::get_operation(c, kind, &target))
    }

    fn list_operations(&self, filter: OperationFilter) -> Pending<Vec<pb::Operation>> {
        self.read(move |c| ops::list_operations(c, &filter))
    }

    fn save_job(&self, job: &pb::Job) -> Pending<()> {
        let row = jobs::JobRow::new(job);
        self.write(move |c| jobs::save_job(c, &row))
    }

    fn append_job_events(
        &self,
        job_id: &str,
        idx: u64,
        events: Vec<pb::TerminalEvent>,
    ) -> Pending<()> {
        let job_id = job_id.to_owned();
        let sealed = jobs::seal_events(events);
        self.write(move |c| jobs::append_job_events(c, &job_id, idx, &sealed))
    }

    fn get_job(&self, id: &str) -> Pending<Option<pb::Job>> {
        let id = id.to_owned();
        self.read(move |c| jobs::get_job(c, &id))
    }

    fn job_events(&self, id: &str) -> Pending<Vec<pb::TerminalEvent>> {
        let id = id.to_owned();
        self.read(move |c| jobs::job_events(c, &id))
    }

    fn list_jobs(&self, filter: JobFilter) -> Pending<Vec<pb::Job>> {
        self.read(move |c| jobs::list_jobs(c, &filter))
    }

    fn unfinished_jobs(&self) -> Pending<Vec<pb::Job>> {
        self.read(jobs::unfinished_jobs)
    }

    fn job_counts(&self) -> Pending<Vec<(i32, u64)>> {
        self.read(jobs::job_counts)
    }

    fn save_runner(&self, runner: &pb::Runner) -> Pending<()> {
        let id = runner.id.clone();
        let sealed = blob::seal(runner);
        self.write(move |c| jobs::save_runner(c, &id, &sealed))
    }

    fn get_runner(&self, id: &str) -> Pending<Option<pb::Runner>> {
        let id = id.to_owned();
        self.read(move |c| jobs::get_runner(c, &id))
    }

    fn list_runners(&self) -> Pending<Vec<pb::Runner>> {
        self.read(jobs::list_runners)
    }

    fn delete_runner(&self, id: &str) -> Pending<bool> {
        let id = id.to_owned();
        self.write(move |c| jobs::delete_runner(c, &id))
    }

    fn set_config(&self, vars: Vec<pb::ConfigVar>) -> Pending<()> {
        self.write(move |c| config::set_config(c, vars))
    }

    fn list_config(&self) -> Pending<Vec<pb::ConfigVar>> {
        self.read(config::list_config)
    }

    fn set_config_source(&self, s: pb::ConfigSource) -> Pending<()> {
        self.write(move |c| config::set_config_source(c, &s))
    }

    fn list_config_sources(&self) -> Pending<Vec<pb::ConfigSource>> {
        self.read(config::list_config_sources)
    }

    fn create_hostname(&self, h: pb::Hostname) -> Pending<pb::Hostname> {
        self.write(move |c| config::create_hostname(c, h))
    }

    fn delete_hostname(&self, hostname: &str) -> Pending<bool> {
        let hostname = hostname.to_owned();
        self.write(move |c| config::delete_hostname(c, &hostname))
    }

    fn list_hostnames(&self) -> Pending<Vec<pb::Hostname>> {
        self.read(config::list_hostnames)
    }

    fn set_canary(&self, canary: pb::Canary) -> Pending<()> {
        self.write(move |c| canary::set(c, &canary))
    }

    fn list_canaries(&self) -> Pending<Vec<pb::Canary>> {
        self.read(canary::list)
    }

    fn upsert_trigger(&self, t: pb::Trigger) -> Pending<pb::Trigger> {
        self.write(move |c| config::upsert_trigger(c, t))
    }

    fn list_triggers(&self) -> Pending<Vec<pb::Trigger>> {
        self.read(config::list_triggers)
    }

    fn backup_to(&self, path: PathBuf) -> Pending<()> {
        // The online backup API copies a consistent snapshot page by page while writers continue.
        self.read(move |c| {
            // The copy holds every config secret: owner-only from its first byte.
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .map_err(|source| StoreError::Io {
                    path: path.clone(),
                    source,
                })?;
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
