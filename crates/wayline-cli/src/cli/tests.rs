//! The grammar as a whole: every flag described, clap's own consistency checks, value ranges.

use super::Cli;

/// The server refused a negative `-prune-retain`; the CLI sent it.
#[test]
fn a_negative_prune_retain_is_refused() {
    use clap::Parser;
    let err = Cli::try_parse_from(["wayline", "up", "--prune-retain=-1"]).unwrap_err();
    let msg = err.to_string();
    assert_eq!(
        msg.lines().next().unwrap(),
        "error: invalid value '-1' for '--prune-retain <PRUNE_RETAIN>': -1 is not in 0..=2147483647"
    );
    assert!(Cli::try_parse_from(["wayline", "up", "--prune-retain=0"]).is_ok());
}

#[test]
fn every_flag_and_argument_is_described() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        let path = format!("{path} {}", cmd.get_name());
        for arg in cmd.get_arguments() {
            if arg.is_hide_set() || ["help", "version"].contains(&arg.get_id().as_str()) {
                continue;
            }
            if arg.get_help().is_none() {
                missing.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_about().is_none() {
                missing.push(format!("{path} {} (command)", sub.get_name()));
            }
            walk(sub, &path, missing);
        }
    }
    let mut missing = Vec::new();
    walk(&Cli::command(), "", &mut missing);
    assert!(
        missing.is_empty(),
        "without a description:\n{}",
        missing.join("\n")
    );
}

#[test]
fn grammar_is_consistent() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}
