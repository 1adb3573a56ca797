//! The token signing key: 32 random bytes in `signing.key` (0600) in the data dir.
//!
//! It is kept out of the database so that a snapshot, a backup tool or a copied `wayline.db`
//! never carries it. Databases written before this lived in `server_state` under `hmac_key`:
//! at start the key is moved out to the file (written durably first, then deleted from the
//! table, so a crash in between only leaves a copy to delete next time).

use std::path::{Path, PathBuf};

use crate::Error;
use crate::datadir;
use crate::store::Store;

/// Where the key was kept before it had its own file.
const LEGACY_STATE_KEY: &str = "hmac_key";
const KEY_LEN: usize = 32;

/// The signing key's file in a data dir.
pub(crate) fn signing_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("signing.key")
}

fn invalid(path: &Path, len: usize) -> Error {
    Error::Config(format!(
        "the signing key `{}` has {len} bytes, not {KEY_LEN}; restore it from a backup, or remove \
         it and start with `-reinitialize` (every token issued before then stops working)",
        path.display()
    ))
}

/// Loads the key, migrating it out of the database or generating it on first start.
pub(crate) async fn load_or_create(
    data_dir: &Path,
    store: &dyn Store,
    db_path: &Path,
) -> Result<Vec<u8>, Error> {
    let path = signing_key_path(data_dir);
    let store_err = |source| Error::Store {
        path: db_path.to_owned(),
        source,
    };
    let legacy = store.get_state(LEGACY_STATE_KEY).await.map_err(store_err)?;
    let key = if path.exists() {
        datadir::refuse_if_shared(&path, "600")?;
        std::fs::read(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?
    } else if let Some(old) = legacy.clone() {
        datadir::write_private(&path, &old)?;
        tracing::info!(file = %path.display(), "moved the signing key out of the database");
        old
    } else {
        let fresh = rand::random::<[u8; KEY_LEN]>().to_vec();
        datadir::write_private(&path, &fresh)?;
        fresh
    };
    if key.len() != KEY_LEN {
        return Err(invalid(&path, key.len()));
    }
    if legacy.is_some() {
        store
            .delete_state(LEGACY_STATE_KEY)
            .await
            .map_err(store_err)?;
    }
    Ok(key)
}

/// Removes the key so the next [`load_or_create`] makes a new one (`-reinitialize`).
pub(crate) fn discard(data_dir: &Path) -> Result<(), Error> {
    let path = signing_key_path(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {
            tracing::warn!(file = %path.display(), "discarded the old signing key (-reinitialize)");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::store::SqliteStore;

    #[tokio::test]
    async fn a_key_in_the_database_moves_to_its_own_private_file() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("wayline.db");
        let store = SqliteStore::open(&db).unwrap();
        let old = vec![7u8; KEY_LEN];
        store
            .put_state(LEGACY_STATE_KEY, old.clone())
            .await
            .unwrap();
        let key = load_or_create(tmp.path(), &store, &db).await.unwrap();
        assert_eq!(key, old);
        assert_eq!(store.get_state(LEGACY_STATE_KEY).await.unwrap(), None);
        let path = signing_key_path(tmp.path());
        assert_eq!(std::fs::read(&path).unwrap(), old);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Later starts read the file.
        assert_eq!(load_or_create(tmp.path(), &store, &db).await.unwrap(), old);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = load_or_create(tmp.path(), &store, &db)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "`{0}` is accessible by other users (mode 0640); make it private with `chmod 600 {0}`",
                path.display()
            )
        );
        store.close().await.unwrap();
    }
}
