//! A temporary home: an empty `$HOME` (config and data dirs inside it) with a project folder,
//! in which tests run the real binaries as a fresh user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// An empty home and a `project` folder inside it, removed when dropped.
#[derive(Debug)]
pub struct TempHome {
    dir: tempfile::TempDir,
    project: PathBuf,
}

impl TempHome {
    /// A new home in the system temp dir, named `<prefix>…`.
    pub fn new(prefix: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("temp home");
        let project = dir.path().join("project");
        std::fs::create_dir_all(&project).expect("project folder");
        Self { dir, project }
    }

    /// The home directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The project folder, where commands run.
    pub fn project(&self) -> &Path {
        &self.project
    }

    /// Writes `text` to `name` (a path relative to the project folder), making parent dirs.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.project.join(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("parent dirs");
        }
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        p
    }

    /// `program` run in the project folder with only this home's environment: `PATH`, `HOME`,
    /// `XDG_CONFIG_HOME`, `XDG_DATA_HOME`, `NO_COLOR=1`, and `WAYLINE_ENTRYPOINT_BINARY` and
    /// `DOCKER_HOST` when the test run has them. Stdin is closed.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.project)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env("XDG_DATA_HOME", self.path().join("data"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        for var in ["WAYLINE_ENTRYPOINT_BINARY", "DOCKER_HOST"] {
            if let Some(v) = std::env::var_os(var) {
                c.env(var, v);
            }
        }
        c
    }
}

/// Runs `git args…` in `dir` as a fixed author, with no system or user git config (so the
/// machine's settings cannot change the result), asserting success; returns the trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.test")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.test")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
