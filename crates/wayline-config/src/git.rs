//! Git helpers behind `gitrefpretty()` and friends, and the provenance the runner records.
//! They run the `git` binary, so they see exactly what the user's git sees.

use std::path::Path;
use std::process::Command;

/// A git command failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git` could not be started.
    #[error("cannot run `git`: {0}")]
    Spawn(#[from] std::io::Error),
    /// `git` ran and failed.
    #[error("`git {args}` failed in `{dir}`: {stderr}")]
    Failed {
        /// The arguments.
        args: String,
        /// Where it ran.
        dir: String,
        /// What git said.
        stderr: String,
    },
}

fn git(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()?;
    if !out.status.success() {
        return Err(GitError::Failed {
            args: args.join(" "),
            dir: dir.display().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The full hash of `HEAD`.
pub fn ref_hash(dir: &Path) -> Result<String, GitError> {
    git(dir, &["rev-parse", "HEAD"])
}

/// The tag pointing at `HEAD`, if any (the first in sort order when there are several).
pub fn ref_tag(dir: &Path) -> Result<Option<String>, GitError> {
    let tags = git(dir, &["tag", "--points-at", "HEAD", "--sort=refname"])?;
    Ok(tags.lines().next().map(str::to_owned))
}

/// Whether the working tree has uncommitted changes (untracked files included).
pub fn is_dirty(dir: &Path) -> Result<bool, GitError> {
    Ok(!git(dir, &["status", "--porcelain"])?.is_empty())
}

/// The tag if `HEAD` is tagged, else the commit hash; `_CHANGES_<unix-time>` is appended when
/// the tree is dirty, so that every build of uncommitted work gets a distinct name.
pub fn ref_pretty(dir: &Path) -> Result<String, GitError> {
    let base = match ref_tag(dir)? {
        Some(t) => t,
        None => ref_hash(dir)?,
    };
    if is_dirty(dir)? {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        return Ok(format!("{base}_CHANGES_{now}"));
    }
    Ok(base)
}

/// The URL of a remote, or `None` when there is no such remote.
pub fn remote_url(dir: &Path, name: &str) -> Result<Option<String>, GitError> {
    git(dir, &["rev-parse", "--git-dir"])?;
    match git(dir, &["remote", "get-url", name]) {
        Ok(url) => Ok(Some(url)),
        Err(GitError::Failed { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads `HEAD`, tags and remotes from the `.git` directory without running `git` (for
/// `wayline validate`, which must not start processes). Lightweight and packed tags only; no
/// dirty check. Each directory is read once per process.
pub mod read_only {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};

    /// What a repository's files say about `HEAD`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Head {
        /// The commit hash.
        pub hash: String,
        /// A tag pointing at it (the first in name order).
        pub tag: Option<String>,
        /// `remote "<name>"` → url.
        pub remotes: HashMap<String, String>,
    }

    type Cache = Mutex<HashMap<PathBuf, Arc<Result<Head, String>>>>;
    static CACHE: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Cache::default);

    /// `HEAD` of the repository holding `dir`, computed once per directory.
    pub fn head(dir: &Path) -> Arc<Result<Head, String>> {
        let mut cache = CACHE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .entry(dir.to_path_buf())
            .or_insert_with(|| Arc::new(read(dir)))
            .clone()
    }

    /// Bounds what is read from repository files (a `.git` is user data).
    const MAX_FILE: u64 = 4 << 20;

    fn text(p: &Path) -> Option<String> {
        let f = std::fs::File::open(p).ok()?;
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(f, MAX_FILE), &mut s).ok()?;
        Some(s)
    }

    /// The git dir and the common dir (they differ in linked worktrees).
    fn git_dirs(dir: &Path) -> Option<(PathBuf, PathBuf)> {
        let found = dir.ancestors().take(64).find_map(|d| {
            let g = d.join(".git");
            if g.is_dir() {
                Some(g)
            } else {
                let t = text(&g)?;
                let p = PathBuf::from(t.strip_prefix("gitdir:")?.trim());
                Some(if p.is_absolute() { p } else { d.join(p) })
            }
        })?;
        let common =
            text(&found.join("commondir")).map_or_else(|| found.clone(), |c| found.join(c.trim()));
        Some((found, common))
    }

    fn packed(common: &Path) -> Vec<(String, String)> {
        text(&common.join("packed-refs"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with('^'))
            .filter_map(|l| l.split_once(' '))
            .map(|(h, r)| (h.to_owned(), r.trim().to_owned()))
            .collect()
    }

    fn resolve(git: &Path, common: &Path, name: &str) -> Option<String> {
        let mut name = name.to_owned();
        for _ in 0..8 {
            let loose = text(&git.join(&name)).or_else(|| text(&common.join(&name)));
            let value = match loose {
                Some(v) => v.trim().to_owned(),
                None => packed(common).into_iter().find(|(_, r)| *r == name)?.0,
            };
            match value.strip_prefix("ref:") {
                Some(next) => next.trim().clone_into(&mut name),
                None => return Some(value),
            }
        }
        None
    }

    fn read(dir: &Path) -> Result<Head, String> {
        let (git, common) = git_dirs(dir)
            .ok_or_else(|| format!("`{}` is not inside a git repository", dir.display()))?;
        let hash =
            resolve(&git, &common, "HEAD").ok_or_else(|| "HEAD has no commit yet".to_owned())?;
        let mut tags: Vec<String> = packed(&common)
            .into_iter()
            .filter(|(h, r)| *h == hash && r.starts_with("refs/tags/"))
            .map(|(_, r)| r["refs/tags/".len()..].to_owned())
            .collect();
        if let Ok(rd) = std::fs::read_dir(common.join("refs/tags")) {
            for e in rd.flatten().take(10_000) {
                if text(&e.path()).is_some_and(|t| t.trim() == hash) {
                    tags.push(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
        tags.sort();
        Ok(Head {
            hash,
            tag: tags.into_iter().next(),
            remotes: remotes(&text(&common.join("config")).unwrap_or_default()),
        })
    }

    /// `[remote "name"] url = …` sections of a git config file.
    fn remotes(config: &str) -> HashMap<String, String> {
        let mut out = HashMap::new();
        let mut current: Option<String> = None;
        for line in config.lines().map(str::trim) {
            if let Some(sec) = line.strip_prefix('[') {
                current = sec
                    .strip_prefix("remote \"")
                    .and_then(|r| r.split_once('"'))
                    .map(|(n, _)| n.to_owned());
            } else if let (Some(name), Some((k, v))) = (&current, line.split_once('='))
                && k.trim() == "url"
            {
                out.entry(name.clone())
                    .or_insert_with(|| v.trim().to_owned());
            }
        }
        out
    }
}

/// What the runner records about the source of an operation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Provenance {
    /// Full commit hash of `HEAD`.
    pub commit: String,
    /// Tag at `HEAD`, if any.
    pub tag: Option<String>,
    /// First line of the commit message.
    pub message: String,
    /// Uncommitted changes present.
    pub dirty: bool,
}

/// Provenance of `dir`, or `None` when it is not inside a git work tree with a commit.
pub fn provenance(dir: &Path) -> Option<Provenance> {
    let commit = ref_hash(dir).ok()?;
    Some(Provenance {
        tag: ref_tag(dir).ok().flatten(),
        message: git(dir, &["log", "-1", "--format=%s"]).unwrap_or_default(),
        dirty: is_dirty(dir).unwrap_or(false),
        commit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    pub(crate) fn repo() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        run(d, &["init", "-q", "-b", "main"]);
        std::fs::write(d.join("a.txt"), "a").unwrap();
        run(d, &["add", "."]);
        run(d, &["commit", "-q", "-m", "first commit"]);
        tmp
    }

    #[test]
    fn hash_tag_pretty_dirty_and_remote() {
        let tmp = repo();
        let d = tmp.path();
        let hash = ref_hash(d).unwrap();
        assert_eq!(hash.len(), 40);
        assert_eq!(ref_tag(d).unwrap(), None);
        assert_eq!(ref_pretty(d).unwrap(), hash);

        run(d, &["tag", "v1.2.0"]);
        assert_eq!(ref_tag(d).unwrap().as_deref(), Some("v1.2.0"));
        assert_eq!(ref_pretty(d).unwrap(), "v1.2.0");

        std::fs::write(d.join("a.txt"), "changed").unwrap();
        let pretty = ref_pretty(d).unwrap();
        let suffix = pretty.strip_prefix("v1.2.0_CHANGES_").expect(&pretty);
        assert!(suffix.parse::<u64>().unwrap() > 1_700_000_000);

        assert_eq!(remote_url(d, "origin").unwrap(), None);
        run(
            d,
            &[
                "remote",
                "add",
                "origin",
                "https://example.com/acme/web.git",
            ],
        );
        assert_eq!(
            remote_url(d, "origin").unwrap().as_deref(),
            Some("https://example.com/acme/web.git")
        );

        let p = provenance(d).unwrap();
        assert_eq!(
            (p.commit, p.tag.as_deref(), p.message.as_str(), p.dirty),
            (hash, Some("v1.2.0"), "first commit", true)
        );
    }

    #[test]
    fn read_only_matches_git() {
        let tmp = repo();
        let d = tmp.path();
        run(d, &["tag", "v2"]);
        run(d, &["remote", "add", "up", "https://example.com/x.git"]);
        let head = read_only::head(d);
        let head = head.as_ref().as_ref().unwrap();
        assert_eq!(head.hash, ref_hash(d).unwrap());
        assert_eq!(head.tag.as_deref(), Some("v2"));
        assert_eq!(head.remotes["up"], "https://example.com/x.git");
        let outside = tempfile::tempdir().unwrap();
        let err = read_only::head(outside.path());
        assert!(
            err.as_ref()
                .as_ref()
                .unwrap_err()
                .contains("not inside a git repository")
        );
    }

    #[test]
    fn outside_a_repository() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(provenance(tmp.path()).is_none());
        let err = ref_hash(tmp.path()).unwrap_err().to_string();
        assert!(err.starts_with("`git rev-parse HEAD` failed in"), "{err}");
    }
}
