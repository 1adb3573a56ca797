//! The corpus of real `waypoint.hcl` files (`../shared/waypoint-corpus`, or
//! `WAYLINE_CORPUS_DIR`) through `wayline validate -json`, one process per file, as
//! `run.sh` does: valid files are accepted or rejected only because they use a Waypoint plugin
//! Wayline does not provide; invalid files are rejected. The whole result table is a snapshot,
//! so a change in any file's outcome or first error shows in review.
//!
//! Skips with a reason when the corpus is absent, unless `WAYLINE_REQUIRE_CORPUS=1`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Need, git, skip, wayline_bin};

/// Valid files Wayline rejects for a reason other than a missing plugin, each with why. Waypoint
/// rejects most of them too (see the manifest's notes).
const KNOWN: &[(&str, &str)] = &[
    (
        "app name",
        "app names follow the same rule as project names (Waypoint >= 0.10 too)",
    ),
    (
        "project name",
        "Wayline (like Waypoint >= 0.10's server) allows only letters, digits, `-`, `_` and `.` in project names",
    ),
    (
        "`deploy` block",
        "no `deploy` block, which Waypoint requires as well",
    ),
    (
        "block `deploy` appears twice",
        "two `deploy` blocks in one app, which Waypoint rejects as well",
    ),
    (
        "`build_args` is an attribute of `use \"docker\"`, not a block",
        "a map written as a block, which Waypoint's docker plugin (gohcl) rejects when the job decodes it",
    ),
    (
        "invalid label selector",
        "Waypoint test fixture with the bare selector `bar` (no operator)",
    ),
    (
        "unknown variable `web_sg`",
        "an undefined bare variable, which fails in Waypoint too",
    ),
    (
        "`poll`",
        "a git data source attribute Waypoint does not have either",
    ),
    (
        "failed to open file",
        "reads a file at an absolute path of the author's machine",
    ),
    (
        "missing required attribute `project`",
        "Waypoint load-only test fixture without a project",
    ),
    (
        "unknown step kind",
        "Waypoint test fixture using test-only step plugins",
    ),
    (
        "has no steps",
        "Waypoint load-only test fixture (Config.Validate rejects it)",
    ),
    (
        "`build` block",
        "Waypoint load-only test fixture without stages (Config.Validate rejects it)",
    ),
];

/// Why Waypoint rejects each invalid file (the manifest's notes), as words one of Wayline's
/// errors for it must contain: rejected, and for the same reason.
const INVALID_BECAUSE: &[(&str, &[&str])] = &[
    (
        "internal_cli_testdata_invalid.hcl",
        &["`default` is set twice"],
    ),
    (
        "config_reference_loop.hcl",
        &["reference loop in `config`: config.env.v1 -> config.env.v2"],
    ),
    (
        "pipeline_dupe_name.hcl",
        &["pipeline \"foo\" is declared twice"],
    ),
    (
        "pipeline_invalid_step.hcl",
        &["unknown step kind `invalid`"],
    ),
    ("pipeline_no_step.hcl", &["pipeline \"foo\" has no steps"]),
    (
        "pipeline_step_double.hcl",
        &["has both `use` and `pipeline`"],
    ),
    (
        "pipeline_step_no_use.hcl",
        &["step \"bad\" of pipeline \"foo\" has no `use` block"],
    ),
    (
        "validate_app.hcl",
        &[
            "must be a child of the project directory",
            "label key `waypoint/foo` is reserved",
        ],
    ),
    (
        "validate_duplicate_def.hcl",
        &["variable \"dinosaur\" is declared twice"],
    ),
    (
        "validate_invalid_def.hcl",
        &["invalid default for variable `bees`"],
    ),
    ("validate_invalid_type.hcl", &["unknown type `notatype`"]),
    (
        "validate_no_build.hcl",
        &["app \"foo\" has no `build` block"],
    ),
];

/// An error about a plugin this machine lacks: one of Waypoint's, or a third-party one (in a
/// file Waypoint accepts, an unknown plugin name is never a typo).
fn lacks_plugin(msg: &str) -> bool {
    msg.contains("is a Waypoint plugin")
        || msg.contains("is not installed")
        || (msg.contains("unknown ") && msg.contains(" plugin `"))
}

fn corpus_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("WAYLINE_CORPUS_DIR") {
        return Some(PathBuf::from(d));
    }
    // `../shared/waypoint-corpus` from the repository root, or from any folder above it (a
    // worktree sits deeper than the main checkout).
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .skip(2)
        .map(|d| d.join("../shared/waypoint-corpus"))
        .find(|d| d.join("MANIFEST.tsv").is_file())
}

struct Entry {
    folder: String,
    expected_valid: bool,
    notes: String,
}

fn manifest(dir: &Path) -> Vec<Entry> {
    std::fs::read_to_string(dir.join("MANIFEST.tsv"))
        .expect("MANIFEST.tsv")
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 5).then(|| Entry {
                folder: f[0].to_owned(),
                expected_valid: f[3] == "valid",
                notes: f[4].to_owned(),
            })
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// `validate -json` in a copy of the folder made a git repository: (accepted, error messages).
fn validate(src: &Path, scratch: &Path, home: &Path) -> (bool, Vec<String>) {
    let w = scratch.join(src.file_name().unwrap());
    copy_dir(src, &w);
    git(&w, &["init", "-q"]);
    git(&w, &["add", "-A"]);
    git(&w, &["commit", "-qm", "corpus"]);
    let out = Command::new(wayline_bin())
        .args(["validate", "-json"])
        .current_dir(&w)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .output()
        .expect("run wayline");
    std::fs::remove_dir_all(&w).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: no JSON ({e}): {}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let errors = json["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["severity"] == "error")
        .map(|d| {
            format!(
                "{}:{}: {}",
                d["line"].as_u64().unwrap_or(0),
                d["column"].as_u64().unwrap_or(0),
                d["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    (out.status.success() && json["valid"] == true, errors)
}

#[test]
fn every_real_waypoint_file_gets_the_expected_result() {
    let Some(dir) = corpus_dir() else {
        skip(
            "every_real_waypoint_file_gets_the_expected_result",
            Need::Corpus,
            "no waypoint corpus at ../shared/waypoint-corpus (or WAYLINE_CORPUS_DIR)",
        );
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let home = scratch.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut table = BTreeMap::new();
    let mut wrong = Vec::new();
    let (mut valid, mut accepted, mut invalid, mut rejected) = (0, 0, 0, 0);
    for e in manifest(&dir) {
        let (ok, errors) = validate(&dir.join(&e.folder), scratch.path(), &home);
        let first = errors.first().cloned().unwrap_or_default();
        if e.expected_valid {
            valid += 1;
            accepted += usize::from(ok);
            // A valid file may fail only because it needs a plugin Wayline lacks, or for one
            // of the known reasons, never with a language error.
            let plugin_only = errors.iter().all(|m| lacks_plugin(m));
            // Waypoint's load-only fixtures without stages are rejected for that (so is
            // Waypoint's Config.Validate); the rest of such an app is still checked, and what
            // Waypoint's test never evaluated may fail too (`lower(a, b)`, a registry `use
            // "docker" {}` without `image`).
            let stageless = e.notes.contains("load-only")
                && errors
                    .iter()
                    .any(|m| m.contains("`build` and `deploy` are required"));
            let known = stageless
                || errors.iter().all(|m| {
                    lacks_plugin(m)
                        || KNOWN.iter().any(|(k, _)| m.contains(k))
                        || (e.notes.contains("not valid HCL") && m.contains("syntax error"))
                        || (e.notes.contains("docker plugin does not have either")
                            && m.contains("in `use \"docker\"`"))
                });
            if !ok && !plugin_only && !known {
                wrong.push(format!(
                    "{}: valid, rejected: {}",
                    e.folder,
                    errors.join(" | ")
                ));
            }
        } else {
            invalid += 1;
            rejected += usize::from(!ok);
            if ok {
                wrong.push(format!("{}: invalid, accepted", e.folder));
            }
            match INVALID_BECAUSE.iter().find(|(f, _)| e.folder.ends_with(f)) {
                None => wrong.push(format!("{}: invalid, but not in INVALID_BECAUSE", e.folder)),
                Some((_, because)) => {
                    for b in *because {
                        if !errors.iter().any(|m| m.contains(b)) {
                            wrong.push(format!(
                                "{}: rejected, but not because {b:?}: {}",
                                e.folder,
                                errors.join(" | ")
                            ));
                        }
                    }
                }
            }
        }
        // The scratch path differs on every run (`path.project` in a project name).
        let first = first.replace(&scratch.path().display().to_string(), "[scratch]");
        let outcome = if ok {
            "accepted".to_owned()
        } else {
            format!("rejected: {first}")
        };
        table.insert(e.folder, outcome);
    }
    assert!(
        wrong.is_empty(),
        "unexpected results:\n{}",
        wrong.join("\n")
    );
    let summary = format!(
        "{accepted}/{valid} valid files accepted, {rejected}/{invalid} invalid files rejected"
    );
    eprintln!("waypoint corpus: {summary}");
    insta::assert_yaml_snapshot!("waypoint_corpus", (summary, table));
}

/// `up` checks plugin names and `use` bodies before it queues anything: a typo fails at once,
/// with the position, and no build (no job, no embedded server) starts.
#[test]
fn up_with_a_plugin_typo_fails_before_any_build() {
    let env = crate::common::TestEnv::new();
    env.write(
        "wayline.hcl",
        "project = \"p\"\napp \"web\" {\n  build {\n    use \"dockr\" {}\n  }\n  deploy {\n    use \"exec\" {\n      comand = [\"true\"]\n    }\n  }\n}\n",
    );
    let r = env.run(&["up"]);
    assert!(!r.success(), "{}", r.all());
    let err = r.stderr();
    assert!(err.contains("unknown builder plugin `dockr`"), "{err}");
    assert!(err.contains("wayline.hcl:4:9"), "{err}");
    assert!(err.contains("did you mean `docker`?"), "{err}");
    assert!(
        err.contains("unknown attribute `comand` in `use \"exec\"`"),
        "{err}"
    );
    assert!(!r.stdout().contains("Deploying"), "{}", r.all());
    // No server was started for it.
    let status = env.run(&["server", "stop"]);
    assert!(
        status
            .stdout()
            .contains("Your local server is not running."),
        "{}",
        status.all()
    );
}

/// `validate` is pure: it runs no `git` (the git functions read `.git`) and writes nothing to
/// the temporary directory, though the file calls `templatedir`, `jsonnetfile`, `jsonnetdir`
/// and the git functions (which, in a job, write files and run git).
#[test]
fn validate_runs_no_git_and_writes_no_temporary_files() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = crate::common::TestEnv::new();
    env.write("tpl/a.txt", "a=${a}");
    env.write("x.jsonnet", "{ a: std.extVar('a') }");
    env.write("j/y.jsonnet", "{ b: 2 }");
    env.write(
        "waypoint.hcl",
        r#"project = "p"
app "web" {
  labels = { "rev" = gitrefpretty(), "origin" = gitremoteurl("origin") }
  build {
    use "docker" {}
  }
  deploy {
    use "exec" {
      command = ["cat", templatedir("tpl", { a = "x" }), jsonnetfile("x.jsonnet", { ext_vars = { a = "1" } }), jsonnetdir("j"), gitrefhash()]
    }
  }
}
"#,
    );
    git(&env.project, &["init", "-q"]);
    git(&env.project, &["add", "-A"]);
    git(&env.project, &["commit", "-qm", "pure"]);
    // A `git` first on PATH that records being run, and an empty TMPDIR.
    let bin = env.home.path().join("fakebin");
    let ran = env.home.path().join("git-ran");
    let tmp = env.home.path().join("tmp");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let fake = bin.join("git");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\nexit 1\n", ran.display()),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for args in [&["validate"][..], &["validate", "-json"]] {
        let out = env
            .cmd(args)
            .env("PATH", &path)
            .env("TMPDIR", &tmp)
            .output()
            .expect("run wayline");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{args:?}: {all}");
        assert!(
            !ran.exists(),
            "{args:?} ran git: {}",
            std::fs::read_to_string(&ran).unwrap_or_default()
        );
        let written: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
        assert!(written.is_empty(), "{args:?} wrote {written:?}");
    }
}
