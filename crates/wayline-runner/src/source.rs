//! Data sources: where a job's files come from, and the git provenance of what was used.

use std::path::{Path, PathBuf};
use std::process::Command;

use wayline_proto::v1::{DataSource, Provenance, data_source};

/// A prepared working copy.
#[derive(Debug)]
pub struct Workdir {
    /// The project directory to run in.
    pub path: PathBuf,
    /// A clone this job made (removed when dropped).
    _clone: Option<TempClone>,
}

#[derive(Debug)]
struct TempClone(PathBuf);

impl Drop for TempClone {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Why a data source could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "the job's local data source `{0}` does not exist on this runner (local jobs run on the machine that queued them)"
    )]
    MissingLocal(String),
    #[error(
        "the job has no data source: give the project a git data source (`wayline project apply -data-source=git`) or run with -local"
    )]
    None,
    #[error("git {action} failed: {stderr}")]
    Git { action: String, stderr: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Prepares the job's files: a local path as is, or a fresh clone of a git url at a ref.
pub fn prepare(source: Option<&DataSource>, scratch: &Path) -> Result<Workdir, SourceError> {
    match source.and_then(|s| s.source.as_ref()) {
        Some(data_source::Source::Local(l)) => {
            let path = PathBuf::from(&l.path);
            if !path.is_dir() {
                return Err(SourceError::MissingLocal(l.path.clone()));
            }
            Ok(Workdir { path, _clone: None })
        }
        Some(data_source::Source::Git(g)) => clone(g, scratch),
        None => Err(SourceError::None),
    }
}

fn clone(g: &data_source::Git, scratch: &Path) -> Result<Workdir, SourceError> {
    fs_err::create_dir_all(scratch)?;
    let dir = scratch.join(format!("clone-{}", wayline_core::id::new_id()));
    let guard = TempClone(dir.clone());
    let mut url = g.url.clone();
    let mut envs: Vec<(String, String)> = vec![("GIT_TERMINAL_PROMPT".into(), "0".into())];
    match &g.auth {
        Some(data_source::git::Auth::Basic(b)) => {
            if let Some(rest) = url.strip_prefix("https://") {
                url = format!("https://{}:{}@{rest}", b.username, b.password);
            }
        }
        Some(data_source::git::Auth::Ssh(s)) => {
            let key = scratch.join(format!("key-{}", wayline_core::id::new_id()));
            fs_err::write(&key, &s.private_key_pem)?;
            set_private(&key);
            envs.push((
                "GIT_SSH_COMMAND".into(),
                format!(
                    "ssh -i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new",
                    key.display()
                ),
            ));
        }
        None => {}
    }
    let mut args = vec!["clone".to_owned(), "--quiet".to_owned()];
    if g.recurse_submodules {
        args.push("--recurse-submodules".into());
    }
    args.push(url);
    args.push(dir.display().to_string());
    run_git(None, &args, &envs, "clone")?;
    let r = if g.r#ref.is_empty() {
        "HEAD"
    } else {
        g.r#ref.as_str()
    };
    if r != "HEAD" {
        run_git(
            Some(&dir),
            &["checkout".into(), "--quiet".into(), r.to_owned()],
            &envs,
            &format!("checkout of `{r}`"),
        )?;
    }
    let path = if g.path.is_empty() {
        dir.clone()
    } else {
        dir.join(&g.path)
    };
    Ok(Workdir {
        path,
        _clone: Some(guard),
    })
}

fn run_git(
    dir: Option<&Path>,
    args: &[String],
    envs: &[(String, String)],
    action: &str,
) -> Result<(), SourceError> {
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.args(args).envs(envs.iter().map(|(k, v)| (k, v)));
    let out = cmd.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SourceError::Git {
            action: action.to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

#[cfg(unix)]
fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

/// The git commit a directory is at, when it is inside a repository.
pub fn provenance(dir: &Path) -> Option<Provenance> {
    let p = wayline_config::git::provenance(dir)?;
    Some(Provenance {
        commit: p.commit,
        tag: p.tag.unwrap_or_default(),
        message: p.message,
        dirty: p.dirty,
        remote_url: wayline_config::git::remote_url(dir, "origin")
            .ok()
            .flatten()
            .unwrap_or_default(),
        r#ref: String::new(),
    })
}
