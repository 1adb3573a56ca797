//! Finding the configuration file from a directory upwards.

use std::path::{Path, PathBuf};

use crate::{Error, Format};

/// File names, in order of preference within one directory.
const NAMES: &[&str] = &[
    "wayline.hcl",
    "waypoint.hcl",
    "wayline.hcl.json",
    "waypoint.hcl.json",
];

/// A configuration file that [`find_config`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Path to the file.
    pub path: PathBuf,
    /// Its syntax.
    pub format: Format,
    /// Set when the directory held more than one candidate, naming which one was used.
    pub warning: Option<String>,
}

/// Looks for `wayline.hcl`, `waypoint.hcl`, `wayline.hcl.json`, `waypoint.hcl.json` in
/// `start_dir`, then its parents, stopping after the filesystem root or a directory that
/// contains `.git` (the repository boundary).
pub fn find_config(start_dir: impl AsRef<Path>) -> Result<Option<Found>, Error> {
    let mut dir = Some(start_dir.as_ref());
    while let Some(d) = dir {
        let present: Vec<&str> = NAMES
            .iter()
            .copied()
            .filter(|n| d.join(n).is_file())
            .collect();
        if let Some(first) = present.first() {
            let path = d.join(first);
            let warning = (present.len() > 1).then(|| {
                let others: Vec<String> = present[1..].iter().map(|n| format!("`{n}`")).collect();
                format!(
                    "found both `{first}` and {} in `{}`; using `{first}`",
                    others.join(" and "),
                    d.display()
                )
            });
            tracing::debug!(path = %path.display(), "found configuration");
            return Ok(Some(Found {
                format: Format::from_path(&path),
                path,
                warning,
            }));
        }
        if d.join(".git").exists() {
            break;
        }
        dir = d.parent();
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_in_parents_and_prefers_wayline() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::write(root.join("waypoint.hcl"), "project = \"p\"").unwrap();
        let sub = root.join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        let found = find_config(&sub).unwrap().unwrap();
        assert_eq!(found.path, root.join("waypoint.hcl"));
        assert_eq!(found.warning, None);

        std::fs::write(root.join("wayline.hcl"), "project = \"p\"").unwrap();
        let found = find_config(&sub).unwrap().unwrap();
        assert_eq!(found.path, root.join("wayline.hcl"));
        assert_eq!(
            found.warning.unwrap(),
            format!(
                "found both `wayline.hcl` and `waypoint.hcl` in `{}`; using `wayline.hcl`",
                root.display()
            )
        );
    }

    #[test]
    fn json_form_and_git_boundary() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::write(root.join("wayline.hcl"), "project = \"p\"").unwrap();
        let repo = root.join("repo");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        let sub = repo.join("src");
        std::fs::create_dir_all(&sub).unwrap();
        assert_eq!(
            find_config(&sub).unwrap(),
            None,
            "must not look above the .git boundary"
        );
        std::fs::write(repo.join("waypoint.hcl.json"), "{}").unwrap();
        let found = find_config(&sub).unwrap().unwrap();
        assert_eq!(found.format, Format::Json);
    }
}
