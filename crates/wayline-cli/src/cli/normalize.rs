//! Waypoint's single-dash long flags (`-app web`) made into clap's `--app web`.

use std::ffi::OsString;

/// Flags before or within `exec` whose value is the next argument (so that argument is not
/// taken for the remote command).
const VALUE_FLAGS: &[&str] = &[
    "-a",
    "-p",
    "-w",
    "-d",
    "--app",
    "--project",
    "--workspace",
    "--instance",
    "--deployment",
];

/// Turns Waypoint-style `-flag` into `--flag` so both spellings work. Short flags (`-a`),
/// counted verbosity (`-vv`), negative numbers and everything after `--` pass unchanged, and
/// so does the remote command of `exec` (from its first positional argument on), which
/// belongs to another program. `wayline -v`, `-version` and `--version` alone mean `version`.
pub(crate) fn normalize_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let args: Vec<OsString> = args.into_iter().collect();
    if args.len() == 2
        && matches!(
            args[1].to_str(),
            Some("-v" | "-V" | "-version" | "--version")
        )
    {
        return vec![args[0].clone(), OsString::from("version")];
    }
    let mut out = Vec::new();
    let mut passthrough = false;
    let mut command_seen = false;
    let mut in_exec = false;
    let mut value_next = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || passthrough {
            out.push(arg);
            continue;
        }
        let Some(s) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if s == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        if !s.starts_with('-') || s == "-" {
            if !value_next {
                if in_exec {
                    // The remote command starts here: its flags are its own.
                    passthrough = true;
                } else if !command_seen {
                    command_seen = true;
                    in_exec = s == "exec";
                }
            }
            value_next = false;
            out.push(arg);
            continue;
        }
        let single_dash_long = s.len() > 2
            && !s.starts_with("--")
            && s[1..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            && !s[1..].chars().all(|c| c == 'v');
        let flag = if single_dash_long {
            format!("-{s}")
        } else {
            s.to_owned()
        };
        value_next = !flag.contains('=') && VALUE_FLAGS.contains(&flag.as_str());
        out.push(OsString::from(flag));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_args(args.iter().map(OsString::from))
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn single_dash_flags_become_long() {
        assert_eq!(
            norm(&["wayline", "up", "-prune-retain", "2"]),
            ["wayline", "up", "--prune-retain", "2"]
        );
        assert_eq!(
            norm(&["wayline", "-vv", "up", "-a", "web"]),
            ["wayline", "-vv", "up", "-a", "web"]
        );
        assert_eq!(
            norm(&["wayline", "exec", "--", "ls", "-la"]),
            ["wayline", "exec", "--", "ls", "-la"]
        );
        assert_eq!(
            norm(&["wayline", "up", "-release=false"]),
            ["wayline", "up", "--release=false"]
        );
    }

    #[test]
    fn the_remote_command_of_exec_keeps_its_flags() {
        assert_eq!(
            norm(&["wayline", "exec", "/bin/busybox", "echo", "-version"]),
            ["wayline", "exec", "/bin/busybox", "echo", "-version"]
        );
        assert_eq!(
            norm(&[
                "wayline",
                "-app",
                "web",
                "exec",
                "-instance",
                "i1",
                "ls",
                "-la",
                "-color"
            ]),
            [
                "wayline",
                "--app",
                "web",
                "exec",
                "--instance",
                "i1",
                "ls",
                "-la",
                "-color"
            ]
        );
        assert_eq!(
            norm(&[
                "wayline",
                "exec",
                "-d",
                "v3",
                "-tty=false",
                "sh",
                "-c",
                "-x"
            ]),
            [
                "wayline",
                "exec",
                "-d",
                "v3",
                "--tty=false",
                "sh",
                "-c",
                "-x"
            ]
        );
        // Other commands' positionals do not stop the rewriting.
        assert_eq!(
            norm(&["wayline", "deployment", "destroy", "v2", "-auto-approve"]),
            ["wayline", "deployment", "destroy", "v2", "--auto-approve"]
        );
    }

    #[test]
    fn version_flags_mean_the_version_command() {
        for flag in ["-v", "-V", "-version", "--version"] {
            assert_eq!(norm(&["wayline", flag]), ["wayline", "version"]);
        }
        assert_eq!(norm(&["wayline", "-v", "up"]), ["wayline", "-v", "up"]);
    }
}
