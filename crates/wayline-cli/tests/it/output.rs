//! How the binary behaves as part of a pipeline and with hostile values: a reader that goes
//! away, names full of escape sequences.

use std::process::Stdio;
use std::time::Duration;

use crate::common::{Run, TestEnv};

const APP: &str = r#"project = "pipes"

app "web" {
  build {
    use "null" {}
  }
  deploy {
    use "null" {}
  }
}
"#;

/// Runs `wayline args` with stdout a pipe whose reader has already gone, as after `| head`.
fn run_into_closed_pipe(env: &TestEnv, args: &[&str]) -> Run {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let child = env
        .cmd(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wayline");
    Run::wait(child, Duration::from_mins(1), args)
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let env = TestEnv::new();
    env.write("wayline.hcl", APP);
    for args in [
        &["completion", "bash"][..],
        &["-plain", "up"][..],
        &["--help"][..],
    ] {
        let r = run_into_closed_pipe(&env, args);
        assert_eq!(r.code(), Some(0), "`{}`: {}", args.join(" "), r.all());
        assert!(
            !r.stderr().contains("panicked") && !r.stderr().contains("Broken pipe"),
            "`{}` is not quiet: {}",
            args.join(" "),
            r.all()
        );
    }
}

#[test]
fn debug_logs_into_a_pipe_carry_no_colour_codes() {
    let env = TestEnv::new();
    env.write("wayline.hcl", APP);
    let r = env.ok(&["-vv", "validate"]);
    assert!(
        r.stderr().contains("DEBUG found configuration"),
        "{}",
        r.all()
    );
    assert!(!r.stderr().contains('\x1b'), "{:?}", r.stderr());
}
