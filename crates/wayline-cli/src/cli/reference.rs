//! The CLI reference (`docs/cli.md`), generated from the clap definitions.

use std::fmt::Write as _;

use clap::CommandFactory;

use super::Cli;

fn render(cmd: &mut clap::Command, path: &str, out: &mut String) {
    if cmd.is_hide_set() {
        return;
    }
    let name = if path.is_empty() {
        cmd.get_name().to_owned()
    } else {
        format!("{path} {}", cmd.get_name())
    };
    let depth = name.matches(' ').count() + 1;
    let _ = writeln!(out, "{} `{name}`\n", "#".repeat(depth.min(4) + 1));
    let help = cmd.render_long_help().to_string();
    let _ = writeln!(out, "```text\n{}\n```\n", help.trim_end());
    let mut subs: Vec<clap::Command> = cmd.get_subcommands().cloned().collect();
    for sub in &mut subs {
        if sub.get_name() != "help" {
            render(sub, &name, out);
        }
    }
}

/// Keeps `docs/cli.md` in step with the code: regenerate with `UPDATE_DOCS=1 cargo test -p
/// wayline-cli reference`.
#[test]
fn cli_reference_is_up_to_date() {
    let mut out = String::from(
        "# `wayline` command reference\n\nGenerated from the code by `cargo test -p wayline-cli reference` \
         (`UPDATE_DOCS=1` rewrites it). Every flag also takes the single-dash form (`-app web`).\n\n",
    );
    let mut cmd = Cli::command();
    cmd.build();
    render(&mut cmd, "", &mut out);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &out).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == out,
        "docs/cli.md is out of date: run `UPDATE_DOCS=1 cargo test -p wayline-cli reference`"
    );
}
