//! One server per data dir and per database file.
//!
//! A server takes an exclusive `flock` on `server.lock` in its data dir and on `<db>.lock` next
//! to its database before it opens the database, and holds both until the process exits (the
//! kernel drops them even after `kill -9`). Two servers over one SQLite file would each keep
//! their own job queue, log windows and exec routes, and assign jobs twice. The lock files hold
//! the holder's pid and addresses (JSON), so a second server's refusal, the CLI and
//! `wayline server stop` can name and reach the running one without its socket.

use std::fmt::Write as _;
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The lock file in a data dir.
pub fn data_dir_lock_path(data_dir: &Path) -> PathBuf {
    data_dir.join("server.lock")
}

/// The lock file beside a database.
pub fn database_lock_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// What the lock holder wrote about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The server's process id.
    pub pid: u32,
    /// gRPC address (empty while the server is still starting).
    #[serde(default)]
    pub grpc: String,
    /// HTTP address.
    #[serde(default)]
    pub http: String,
    /// Unix socket path.
    #[serde(default)]
    pub socket: String,
}

impl Holder {
    /// "pid 42, gRPC 127.0.0.1:9701, HTTP 127.0.0.1:9702, socket /x/server.sock".
    pub fn describe(&self) -> String {
        let mut out = format!("pid {}", self.pid);
        for (what, v) in [
            ("gRPC", &self.grpc),
            ("HTTP", &self.http),
            ("socket", &self.socket),
        ] {
            if !v.is_empty() {
                let _ = write!(out, ", {what} {v}");
            }
        }
        if self.grpc.is_empty() {
            out.push_str(", still starting");
        }
        out
    }
}

/// Held locks; dropping releases them.
#[derive(Debug)]
pub(crate) struct ServerLock {
    files: Vec<(PathBuf, Flock<std::fs::File>)>,
}

fn open_lock_file(path: &Path) -> Result<std::fs::File, Error> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })
}

fn read_holder(file: &mut std::fs::File) -> Holder {
    let mut text = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut text);
    serde_json::from_str(&text).unwrap_or_default()
}

impl ServerLock {
    /// Locks each file without waiting; fails naming the running server when one is held.
    /// `what` describes each lock for the message (`data dir X`, `database X`).
    pub(crate) fn acquire(locks: &[(PathBuf, String)]) -> Result<Self, Error> {
        let mut files = Vec::new();
        for (path, what) in locks {
            if files.iter().any(|(p, _): &(PathBuf, _)| p == path) {
                continue;
            }
            let file = open_lock_file(path)?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => files.push((path.clone(), locked)),
                Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                    return Err(Error::AlreadyRunning {
                        what: what.clone(),
                        holder: read_holder(&mut file),
                    });
                }
                Err((_, e)) => {
                    return Err(Error::Io {
                        path: path.clone(),
                        source: e.into(),
                    });
                }
            }
        }
        let lock = Self { files };
        lock.record(&Holder {
            pid: std::process::id(),
            ..Holder::default()
        })?;
        Ok(lock)
    }

    /// Writes the holder's details into every lock file.
    pub(crate) fn record(&self, holder: &Holder) -> Result<(), Error> {
        let text = serde_json::to_string(holder).expect("plain struct");
        for (path, file) in &self.files {
            let io = |source| Error::Io {
                path: path.clone(),
                source,
            };
            let mut f: &std::fs::File = file;
            f.set_len(0).map_err(io)?;
            f.rewind().map_err(io)?;
            f.write_all(text.as_bytes()).map_err(io)?;
        }
        Ok(())
    }
}

/// The server holding the lock at `path`, or `None` when no live server holds it.
///
/// Probing takes the lock for an instant when it is free; a server starting in that instant
/// fails as if one were running, which only happens when two are started at once.
pub fn probe(path: &Path) -> Option<Holder> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .ok()?;
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_free) => None,
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => Some(read_holder(&mut file)),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder_and_a_released_lock_is_free() {
        let tmp = tempfile::tempdir().unwrap();
        let path = data_dir_lock_path(tmp.path());
        let locks = [(path.clone(), "data dir x".to_owned())];
        let held = ServerLock::acquire(&locks).unwrap();
        let holder = Holder {
            pid: std::process::id(),
            grpc: "127.0.0.1:1".into(),
            http: "127.0.0.1:2".into(),
            socket: "/s".into(),
        };
        held.record(&holder).unwrap();
        assert_eq!(probe(&path), Some(holder.clone()));
        let err = ServerLock::acquire(&locks).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "another Wayline server is already using data dir x (pid {}, gRPC 127.0.0.1:1, HTTP 127.0.0.1:2, socket /s); stop it first (`wayline server stop` for the local server, or `kill {}`)",
                holder.pid, holder.pid
            )
        );
        drop(held);
        assert_eq!(probe(&path), None);
        ServerLock::acquire(&locks).unwrap();
    }
}
