//! The build context: the files under the context directory that `.dockerignore` does not
//! exclude, as the tar stream the engine's `/build` endpoint takes.
//!
//! Matching is the Docker CLI's (moby/patternmatcher, which `docker build` uses): each line is
//! trimmed, `#` lines are comments, `!` re-includes, the pattern is cleaned like Go's
//! `filepath.Clean` (so a leading `/` and a trailing `/` are dropped: `/build/` is `build`), and
//! it is compiled to an anchored regular expression: `*` and `?` stay within one path segment,
//! `**` spans any number of them (none included), `[…]` is a class and `\` escapes. Later lines
//! win, and a path is excluded when it or one of its parent directories matches.
//!
//! Why a regex per pattern, as moby does, rather than `globset` or `ignore`: those follow
//! gitignore's rules, which differ from Docker's where it matters (a gitignore `*.log` matches at
//! any depth, Docker's only at the top; gitignore cannot re-include a file whose directory is
//! excluded, Docker can). Translating each pattern the way patternmatcher does keeps Docker's
//! meaning exactly, and `regex` is linked already.

use std::io;
use std::path::{Path, PathBuf};

use regex::Regex;

/// One `.dockerignore` line.
#[derive(Debug, Clone)]
struct Pattern {
    regex: Regex,
    exclusion: bool,
}

/// The parsed `.dockerignore` of a context.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

/// A `.dockerignore` line that is not a valid pattern.
#[derive(Debug, thiserror::Error)]
#[error(".dockerignore line {line}: `{pattern}` is not a valid pattern")]
pub struct BadPattern {
    /// 1-based line number.
    pub line: usize,
    /// The pattern as written.
    pub pattern: String,
}

impl DockerIgnore {
    /// Parses a context's `.dockerignore` after the default rule: `.git` stays out (history
    /// and the credentials of remotes have no place in an image, and it can be large). Later
    /// lines win, so a `!.git` line in the file brings it back.
    pub fn with_defaults(text: &str) -> Result<Self, BadPattern> {
        let mut ignore = Self::parse(".git")?;
        ignore.patterns.extend(Self::parse(text)?.patterns);
        Ok(ignore)
    }

    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<Self, BadPattern> {
        let mut patterns = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = clean(body);
            if cleaned.is_empty() {
                continue;
            }
            let regex = glob_to_regex(&cleaned).ok_or_else(|| BadPattern {
                line: i + 1,
                pattern: raw.to_owned(),
            })?;
            patterns.push(Pattern { regex, exclusion });
        }
        Ok(Self { patterns })
    }

    /// Whether the context-relative, `/`-separated `path` is left out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let parents: Vec<&str> = path.split('/').collect();
        let mut matched = false;
        for pattern in &self.patterns {
            // Only patterns that could flip the current state matter.
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.regex.is_match(path);
            if !hit && parents.len() > 1 {
                for i in 1..parents.len() {
                    if pattern.regex.is_match(&parents[..i].join("/")) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }
}

/// `filepath.Clean` for a pattern, made relative to the context.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Translates a Docker ignore glob into an anchored regex.
fn glob_to_regex(pattern: &str) -> Option<Regex> {
    let mut out = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                // As patternmatcher reads `**`: a `/` after it is part of it; at the end it is
                // anything, elsewhere any number of whole directories, none included (so
                // `a/**/b` matches `a/b`, and `**.tmp` matches `.tmp` and `x/.tmp`, not `a.tmp`).
                i += 1;
                if chars.get(i + 1) == Some(&'/') {
                    i += 1;
                }
                if i + 1 == chars.len() {
                    out.push_str(".*");
                } else {
                    out.push_str("(.*/)?");
                }
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '\\' => {
                i += 1;
                let next = chars.get(i)?;
                out.push_str(&regex::escape(&next.to_string()));
            }
            '[' => {
                // Character classes mean the same in Go's and Rust's regex syntax (`[^a]` negates).
                let end = chars[i + 1..].iter().position(|&c| c == ']')? + i + 1;
                out.extend(&chars[i..=end]);
                i = end;
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    out.push('$');
    Regex::new(&out).ok()
}

/// Errors while reading the context.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The context directory or a file in it could not be read.
    #[error("reading the build context: {0}")]
    Io(#[from] io::Error),
    /// `.dockerignore` has a bad line.
    #[error(transparent)]
    Ignore(#[from] BadPattern),
    /// The Dockerfile does not exist.
    #[error("Dockerfile `{}` not found", .0.display())]
    NoDockerfile(PathBuf),
}

/// A context ready to send: the tar bytes and the Dockerfile's name inside it.
#[derive(Debug)]
pub struct Context {
    /// Uncompressed tar of the context.
    pub tar: Vec<u8>,
    /// The Dockerfile's path inside the tar, for the `dockerfile` build parameter.
    pub dockerfile: String,
    /// How many files and directories went in.
    pub entries: usize,
}

/// The name a Dockerfile from outside the context gets inside the tar.
const OUTSIDE_DOCKERFILE: &str = ".wayline.Dockerfile";

/// Tars `dir`, leaving out what its `.dockerignore` excludes, and adds `dockerfile` (always sent,
/// like the Docker CLI does, even when ignored; copied in when it lies outside the context).
pub fn tar_context(dir: &Path, dockerfile: &Path) -> Result<Context, ContextError> {
    let text = match fs_err::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e.into()),
    };
    let ignore = DockerIgnore::with_defaults(&text)?;
    if !dockerfile.is_file() {
        return Err(ContextError::NoDockerfile(dockerfile.to_owned()));
    }
    let inside = dockerfile.strip_prefix(dir).ok().map(|p| {
        p.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    });
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut entries = 0;
    let always: Vec<&str> = inside
        .iter()
        .map(String::as_str)
        .chain([".dockerignore"])
        .collect();
    walk(dir, "", &ignore, &always, &mut builder, &mut entries)?;
    let dockerfile_name = match inside {
        Some(name) => name,
        None => {
            let mut file = fs_err::File::open(dockerfile)?;
            builder.append_file(OUTSIDE_DOCKERFILE, file.file_mut())?;
            entries += 1;
            OUTSIDE_DOCKERFILE.to_owned()
        }
    };
    let tar = builder.into_inner()?;
    Ok(Context {
        tar,
        dockerfile: dockerfile_name,
        entries,
    })
}

fn walk(
    dir: &Path,
    prefix: &str,
    ignore: &DockerIgnore,
    always: &[&str],
    builder: &mut tar::Builder<Vec<u8>>,
    entries: &mut usize,
) -> Result<(), ContextError> {
    let mut children: Vec<_> = fs_err::read_dir(dir)?.collect::<Result<_, _>>()?;
    children.sort_by_key(fs_err::DirEntry::file_name);
    for child in children {
        let name = child.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let path = child.path();
        let is_dir = child.file_type()?.is_dir();
        let excluded = ignore.excludes(&rel) && !always.contains(&rel.as_str());
        if is_dir {
            let keep_inside = always.iter().any(|a| a.starts_with(&format!("{rel}/")));
            if excluded && !ignore.has_exclusions() && !keep_inside {
                continue;
            }
            if !excluded {
                builder.append_path_with_name(&path, &rel)?;
                *entries += 1;
            }
            walk(&path, &rel, ignore, always, builder, entries)?;
        } else if !excluded {
            builder.append_path_with_name(&path, &rel)?;
            *entries += 1;
        }
    }
    Ok(())
}

/// Entries of a tar, for tests and diagnostics.
pub fn tar_entries(tar: &[u8]) -> io::Result<Vec<String>> {
    let mut archive = tar::Archive::new(tar);
    let mut names = Vec::new();
    for entry in archive.entries()? {
        names.push(
            entry?
                .path()?
                .to_string_lossy()
                .trim_end_matches('/')
                .to_owned(),
        );
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ig(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap()
    }

    #[test]
    fn git_is_left_out_unless_brought_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".git/objects")).unwrap();
        std::fs::write(dir.path().join(".git/config"), "[remote]").unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch").unwrap();
        std::fs::write(dir.path().join("app.txt"), "x").unwrap();
        let dockerfile = dir.path().join("Dockerfile");
        let names = tar_entries(&tar_context(dir.path(), &dockerfile).unwrap().tar).unwrap();
        assert_eq!(names, ["Dockerfile", "app.txt"]);
        std::fs::write(dir.path().join(".dockerignore"), "!.git\n").unwrap();
        let names = tar_entries(&tar_context(dir.path(), &dockerfile).unwrap().tar).unwrap();
        assert!(names.contains(&".git/config".to_owned()), "{names:?}");
    }

    #[test]
    fn docker_cli_matching_rules() {
        let i = ig("# comment\n*.log\n!keep.log\ntarget\n/abs/x\n**/*.tmp\ndocs/**\n");
        assert!(i.excludes("a.log"));
        assert!(!i.excludes("keep.log"));
        assert!(!i.excludes("dir/a.log"), "`*` does not cross directories");
        assert!(i.excludes("target"));
        assert!(
            i.excludes("target/debug/x"),
            "a matching parent excludes its children"
        );
        assert!(i.excludes("abs/x"));
        assert!(i.excludes("a.tmp"));
        assert!(i.excludes("deep/er/b.tmp"));
        assert!(i.excludes("docs/a/b"));
        assert!(!i.excludes("src/main.rs"));
    }

    #[test]
    fn leading_and_trailing_slashes_are_cleaned_away() {
        let i = ig("/build/\n./out//logs/\nnested/../gone\n");
        assert!(i.excludes("build"));
        assert!(i.excludes("build/x.o"));
        assert!(
            !i.excludes("src/build"),
            "a leading `/` does not mean any depth"
        );
        assert!(i.excludes("out/logs/a"));
        assert!(i.excludes("gone"));
        assert!(!i.excludes("nested"));
    }

    #[test]
    fn double_star_spans_any_number_of_directories() {
        let i = ig("a/**/b\n**/cache\nlogs/**\n**.tmp\n");
        assert!(i.excludes("a/b"), "`**/` may match no directory");
        assert!(i.excludes("a/x/y/b"));
        assert!(!i.excludes("a/xb"));
        assert!(i.excludes("cache"));
        assert!(i.excludes("deep/down/cache/file"));
        assert!(i.excludes("logs/2024/01.txt"));
        assert!(
            !i.excludes("logs"),
            "`logs/**` needs something under `logs/`"
        );
        // patternmatcher's reading: `**` before a name stands for whole directories.
        assert!(i.excludes(".tmp"));
        assert!(i.excludes("x/y/.tmp"));
        assert!(!i.excludes("a.tmp"));
        assert!(ig("**\n").excludes("any/thing"));
    }

    #[test]
    fn an_exception_reincludes_inside_an_excluded_directory() {
        let i = ig("build\n!build/keep\n*.txt\n! spaced.txt\n");
        assert!(i.excludes("build"));
        assert!(i.excludes("build/other"));
        assert!(!i.excludes("build/keep"));
        assert!(i.excludes("other.txt"));
        assert!(!i.excludes("spaced.txt"), "the space after `!` is trimmed");
        // A later exclusion wins over an earlier exception.
        let j = ig("*.md\n!README.md\nREADME*\n");
        assert!(j.excludes("README.md"));
        // And the tar walks into the excluded directory to find what is brought back.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(d.join(".dockerignore"), "build\n!build/keep\n").unwrap();
        std::fs::create_dir_all(d.join("build")).unwrap();
        std::fs::write(d.join("build/keep"), "k").unwrap();
        std::fs::write(d.join("build/other"), "o").unwrap();
        let ctx = tar_context(d, &d.join("Dockerfile")).unwrap();
        assert_eq!(
            tar_entries(&ctx.tar).unwrap(),
            vec![".dockerignore", "Dockerfile", "build/keep"]
        );
    }

    #[test]
    fn escapes_match_the_character_itself() {
        let i = ig("\\*literal\nq\\?\n");
        assert!(i.excludes("*literal"));
        assert!(!i.excludes("xliteral"));
        assert!(i.excludes("q?"));
        assert!(!i.excludes("qa"));
    }

    #[test]
    fn later_lines_win_and_char_classes_work() {
        let i = ig("*\n!src\nsrc/[ab].txt\n?.md\n");
        assert!(i.excludes("README"));
        assert!(!i.excludes("src/main.rs"));
        assert!(i.excludes("src/a.txt"));
        assert!(!i.excludes("src/c.txt"));
        let j = ig("[^a].txt\n");
        assert!(j.excludes("b.txt"));
        assert!(!j.excludes("a.txt"));
    }

    #[test]
    fn bad_pattern_names_its_line() {
        let err = DockerIgnore::parse("ok\n[abc\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            ".dockerignore line 2: `[abc` is not a valid pattern"
        );
    }

    #[test]
    fn tar_honours_dockerignore_and_keeps_the_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(d.join(".dockerignore"), "secret*\nbuild\nDockerfile\n").unwrap();
        std::fs::write(d.join("index.html"), "hi").unwrap();
        std::fs::write(d.join("secret.key"), "k").unwrap();
        std::fs::create_dir_all(d.join("build/out")).unwrap();
        std::fs::write(d.join("build/out/big"), "x").unwrap();
        std::fs::create_dir_all(d.join("www")).unwrap();
        std::fs::write(d.join("www/a.html"), "a").unwrap();
        let ctx = tar_context(d, &d.join("Dockerfile")).unwrap();
        assert_eq!(ctx.dockerfile, "Dockerfile");
        assert_eq!(
            tar_entries(&ctx.tar).unwrap(),
            vec![
                ".dockerignore",
                "Dockerfile",
                "index.html",
                "www",
                "www/a.html"
            ]
        );
        assert_eq!(ctx.entries, 5);
    }

    #[test]
    fn dockerfile_outside_the_context_is_copied_in() {
        let dir = tempfile::tempdir().unwrap();
        let ctx_dir = dir.path().join("ctx");
        std::fs::create_dir_all(&ctx_dir).unwrap();
        std::fs::write(ctx_dir.join("f"), "f").unwrap();
        std::fs::write(dir.path().join("Dockerfile.web"), "FROM scratch\n").unwrap();
        let ctx = tar_context(&ctx_dir, &dir.path().join("Dockerfile.web")).unwrap();
        assert_eq!(ctx.dockerfile, ".wayline.Dockerfile");
        assert_eq!(
            tar_entries(&ctx.tar).unwrap(),
            vec!["f", ".wayline.Dockerfile"]
        );
        let missing = tar_context(&ctx_dir, &dir.path().join("nope")).unwrap_err();
        assert_eq!(
            missing.to_string(),
            format!(
                "Dockerfile `{}` not found",
                dir.path().join("nope").display()
            )
        );
    }
}
