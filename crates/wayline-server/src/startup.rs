//! The steps of [`crate::start`] before serving: locks, the checks on the database, listeners,
//! TLS, and the files only the lock holder writes.

use std::net::SocketAddr;
use std::path::Path;

use crate::store::{self, SqliteStore};
use crate::{Error, ServerOptions, datadir, keys, lock, service, tls};

/// Moves a verified snapshot staged by `RestoreSnapshot` into place.
fn apply_staged_restore(db: &Path) -> Result<(), Error> {
    let staged = service::staged_restore_path(db);
    if !staged.exists() {
        return Ok(());
    }
    for p in datadir::sqlite_sidecars(db) {
        if p.exists() {
            std::fs::remove_file(&p).map_err(|source| Error::Io {
                path: p.clone(),
                source,
            })?;
        }
    }
    std::fs::rename(&staged, db).map_err(|source| Error::Io {
        path: db.to_owned(),
        source,
    })?;
    tracing::warn!(db = %db.display(), "restored the database from a snapshot");
    Ok(())
}

/// Takes the data dir's and the database's locks (see [`lock`]).
pub(crate) fn take_locks(opts: &ServerOptions) -> Result<lock::ServerLock, Error> {
    let db_dir = opts
        .db_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    datadir::create_private_dir(db_dir)?;
    // Two spellings of one database path must meet at one lock file.
    let db = std::fs::canonicalize(db_dir).map_or_else(
        |_| opts.db_path.clone(),
        |d| d.join(opts.db_path.file_name().unwrap_or_default()),
    );
    lock::ServerLock::acquire(&[
        (
            lock::data_dir_lock_path(&opts.data_dir),
            format!("the data dir `{}`", opts.data_dir.display()),
        ),
        (
            lock::database_lock_path(&db),
            format!("the database `{}`", opts.db_path.display()),
        ),
    ])
}

fn is_corruption(e: &store::StoreError) -> Option<String> {
    match e {
        store::StoreError::Damaged(detail) => Some(detail.clone()),
        store::StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, msg))
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
            ) =>
        {
            Some(msg.clone().unwrap_or_else(|| f.to_string()))
        }
        _ => None,
    }
}

/// Opens the database after the checks that must come first (the locks are held).
pub(crate) fn open_store(opts: &ServerOptions) -> Result<SqliteStore, Error> {
    let db = &opts.db_path;
    apply_staged_restore(db)?;
    datadir::refuse_lost_database(&opts.data_dir, db, opts.reinitialize)?;
    if opts.reinitialize {
        if datadir::database_is_empty(db)? {
            keys::discard(&opts.data_dir)?;
        } else {
            tracing::warn!(db = %db.display(), "-reinitialize ignored: the database is not empty");
        }
    }
    datadir::touch_private(db)?;
    datadir::tighten(db)?;
    for p in datadir::sqlite_sidecars(db) {
        datadir::tighten(&p)?;
    }
    SqliteStore::open(db).map_err(|source| match is_corruption(&source) {
        Some(detail) => Error::Damaged {
            path: db.clone(),
            detail,
        },
        None => Error::Store {
            path: db.clone(),
            source,
        },
    })
}

pub(crate) async fn bind_tcp(
    addr: SocketAddr,
) -> Result<(tokio::net::TcpListener, SocketAddr), Error> {
    let err = |source| Error::Listen {
        addr: addr.to_string(),
        source,
    };
    let l = tokio::net::TcpListener::bind(addr).await.map_err(err)?;
    let bound = l.local_addr().map_err(err)?;
    Ok((l, bound))
}

pub(crate) fn load_tls(opts: &ServerOptions) -> Result<Option<tls::Pem>, Error> {
    if opts.disable_tls {
        return Ok(None);
    }
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(host) = opts
        .advertise_addr
        .as_deref()
        .map(|a| a.rsplit_once(':').map_or(a, |(h, _)| h))
    {
        names.push(host.trim_matches(['[', ']']).to_owned());
    }
    tls::load_or_generate(
        opts.tls_cert_file.as_deref(),
        opts.tls_key_file.as_deref(),
        &opts.data_dir,
        names,
    )
    .map(Some)
}

/// Writes `server.pid` and `http.addr` (only the lock holder does) and the addresses into the
/// lock files.
pub(crate) fn record_holder(
    opts: &ServerOptions,
    lock: &lock::ServerLock,
    grpc: SocketAddr,
    http: SocketAddr,
) -> Result<(), Error> {
    lock.record(&lock::Holder {
        pid: std::process::id(),
        grpc: grpc.to_string(),
        http: http.to_string(),
        socket: opts
            .unix_socket
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    })?;
    datadir::write_private_fast(
        &opts.data_dir.join("server.pid"),
        std::process::id().to_string().as_bytes(),
    )?;
    datadir::write_private_fast(
        &opts.data_dir.join("http.addr"),
        http.to_string().as_bytes(),
    )
}

/// The unix socket's directory: the default one (`socket/` in the data dir, which the Docker
/// platform mounts into containers) is made 0700, or 0711 when `socket_mode` lets others in.
pub(crate) fn prepare_socket_dir(opts: &ServerOptions, path: &Path) -> Result<(), Error> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    datadir::create_private_dir(dir)?;
    if dir == opts.data_dir.join("socket") {
        let mode = if opts.socket_mode & 0o077 > 0 {
            0o711
        } else {
            0o700
        };
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(mode)).map_err(
            |source| Error::Io {
                path: dir.to_owned(),
                source,
            },
        )?;
    }
    Ok(())
}
