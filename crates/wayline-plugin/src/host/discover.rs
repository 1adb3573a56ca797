//! Finding plugin executables and verifying their checksums.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// `waypoint-plugin-<name>` executables speak Waypoint's protocol: the Waypoint provider
/// (`wayline-waypoint`) finds those.
const PREFIXES: [&str; 1] = ["wayline-plugin-"];

fn all_dirs(search_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs = search_dirs.to_vec();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The executable `wayline-plugin-<name>`: in each search dir, then each PATH dir.
pub(super) fn find(search_dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains('/') {
        return None;
    }
    all_dirs(search_dirs).into_iter().find_map(|d| {
        PREFIXES
            .iter()
            .map(|p| d.join(format!("{p}{name}")))
            .find(|c| is_executable(c))
    })
}

/// Names of every plugin executable in the search dirs and PATH.
pub(super) fn discover_names(search_dirs: &[PathBuf]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for d in all_dirs(search_dirs) {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let f = e.file_name();
            let Some(f) = f.to_str() else { continue };
            if let Some(n) = PREFIXES.iter().find_map(|p| f.strip_prefix(p))
                && !n.is_empty()
                && is_executable(&e.path())
            {
                out.insert(n.to_owned());
            }
        }
    }
    out
}

/// The lowercase hex sha256 of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// A plugin executable whose sha256 is not the one configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "checksum mismatch for plugin `{name}` at `{path}`: expected sha256 {expected}, got {actual}"
)]
pub struct PluginChecksumError {
    /// Plugin name.
    pub name: String,
    /// The executable.
    pub path: String,
    /// From the HCL `plugin` block.
    pub expected: String,
    /// Of the file.
    pub actual: String,
}

pub(super) fn verify(name: &str, path: &Path, expected: &str) -> Result<(), String> {
    let actual = sha256_file(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let expected_norm = expected.trim().to_ascii_lowercase();
    if actual == expected_norm {
        Ok(())
    } else {
        Err(PluginChecksumError {
            name: name.to_owned(),
            path: path.display().to_string(),
            expected: expected_norm,
            actual,
        }
        .to_string())
    }
}
