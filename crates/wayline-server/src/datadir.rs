//! The server's data dir: owner-only permissions, private files, and the signs of a previous
//! life that tell a lost database from a first start.
//!
//! Like `ssh`, the server refuses to run when its data dir or a key file is open to other local
//! users (the message names the file and the `chmod` that fixes it): whoever reads the signing
//! key can sign a login token. Everything the server creates is owner-only: directories 0700,
//! files 0600 (written to a temporary name and renamed, so a crash never leaves half a key).

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::Error;

/// Permission bits that let someone other than the owner in.
const OTHERS: u32 = 0o077;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Creates `dir` (and missing parents) owner-only.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), Error> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))
}

/// Creates the data dir 0700, or checks that an existing one is not open to other users. An
/// existing *empty* directory (made by an installer or `mktemp -d`) is simply made 0700: it
/// holds nothing anyone could have read.
pub(crate) fn prepare(dir: &Path) -> Result<(), Error> {
    create_private_dir(dir)?;
    let empty = std::fs::read_dir(dir).map_err(io(dir))?.next().is_none();
    if empty {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    }
    refuse_if_shared(dir, "700")
}

/// Fails when `path` exists and its mode lets group or others in. `fix` is the mode to suggest.
pub(crate) fn refuse_if_shared(path: &Path, fix: &str) -> Result<(), Error> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(path)(e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & OTHERS != 0 {
        return Err(Error::Permissions {
            path: path.to_owned(),
            mode,
            fix: fix.to_owned(),
        });
    }
    Ok(())
}

/// Tightens an existing file the server owns (database, WAL, snapshot) to 0600; older versions
/// created them 0644. Missing files are fine.
pub(crate) fn tighten(path: &Path) -> Result<(), Error> {
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & OTHERS != 0 => {
            tracing::warn!(file = %path.display(), "made a server file owner-only (0600)");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

/// Creates `path` 0600 if missing (so SQLite, which gives its WAL and SHM files the database
/// file's mode, makes those 0600 too).
pub(crate) fn touch_private(path: &Path) -> Result<(), Error> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(io(path))
}

/// Writes `data` to `path` owner-only and durably: a temporary file, fsync, rename.
pub(crate) fn write_private(path: &Path, data: &[u8]) -> Result<(), Error> {
    write_private_file(path, data, true)
}

/// Like [`write_private`] without the fsyncs, for files rewritten on every start (`server.pid`,
/// `http.addr`) that need no durability: a crash only leaves the previous or the new content.
pub(crate) fn write_private_fast(path: &Path, data: &[u8]) -> Result<(), Error> {
    write_private_file(path, data, false)
}

fn write_private_file(path: &Path, data: &[u8], durable: bool) -> Result<(), Error> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(data).map_err(io(&tmp))?;
    if durable {
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if durable
        && let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        // The rename is durable once the directory is synced.
        let _ = d.sync_all();
    }
    Ok(())
}

/// The database's sidecar files SQLite creates in WAL mode.
pub(crate) fn sqlite_sidecars(db: &Path) -> [PathBuf; 2] {
    ["-wal", "-shm"].map(|suffix| {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    })
}

/// True when the database file is missing or has no content (a fresh database is created).
pub(crate) fn database_is_empty(db: &Path) -> Result<bool, Error> {
    match std::fs::metadata(db) {
        Ok(m) => Ok(m.len() == 0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io(db)(e)),
    }
}

/// Files in the data dir that only a server that ran before (with a database) leaves behind.
pub(crate) fn previous_life(data_dir: &Path) -> Vec<PathBuf> {
    [
        crate::keys::signing_key_path(data_dir),
        crate::tls::self_signed_cert_path(data_dir),
    ]
    .into_iter()
    .filter(|p| p.exists())
    .collect()
}

/// Refuses a missing or empty database in a data dir that shows a previous life: the database
/// was lost (deleted, truncated), and starting afresh would hand `BootstrapToken` (admin) to the
/// first caller. `-reinitialize` says starting afresh is intended.
pub(crate) fn refuse_lost_database(
    data_dir: &Path,
    db: &Path,
    reinitialize: bool,
) -> Result<(), Error> {
    if !database_is_empty(db)? {
        return Ok(());
    }
    let signs = previous_life(data_dir);
    if signs.is_empty() || reinitialize {
        return Ok(());
    }
    let signs: Vec<String> = signs.iter().map(|p| format!("`{}`", p.display())).collect();
    Err(Error::Config(format!(
        "the database `{}` is missing or empty, but this data dir was used before ({} exist): \
         the database was lost. Restore a snapshot with `cp <snapshot> {}`, or start a new, \
         empty server on this data dir with `-reinitialize` (this makes a new signing key, so \
         every token issued before stops working)",
        db.display(),
        signs.join(", "),
        db.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_dir_is_refused_with_the_chmod_that_fixes_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        prepare(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "an empty dir is made private");
        std::fs::write(dir.join("wayline.db"), b"").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = prepare(&dir).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "`{0}` is accessible by other users (mode 0755); make it private with `chmod 700 {0}`",
                dir.display()
            )
        );
    }

    #[test]
    fn private_files_are_0600_and_replaced_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("k");
        write_private(&key, b"one").unwrap();
        write_private(&key, b"two").unwrap();
        assert_eq!(std::fs::read(&key).unwrap(), b"two");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!tmp.path().join("k.tmp").exists());
    }

    #[test]
    fn a_lost_database_is_refused_only_after_a_previous_life() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("wayline.db");
        refuse_lost_database(tmp.path(), &db, false).unwrap();
        write_private(&crate::keys::signing_key_path(tmp.path()), b"k").unwrap();
        std::fs::write(&db, b"").unwrap();
        let err = refuse_lost_database(tmp.path(), &db, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "the database `{}` is missing or empty, but this data dir was used before",
                db.display()
            )),
            "{err}"
        );
        assert!(err.contains("`-reinitialize`"), "{err}");
        refuse_lost_database(tmp.path(), &db, true).unwrap();
        std::fs::write(&db, b"SQLite format 3\0").unwrap();
        refuse_lost_database(tmp.path(), &db, false).unwrap();
    }
}
