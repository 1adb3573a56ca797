//! Hostile input to the CLI gets an error, not a crash (issue 10 §2).

use crate::common::TestEnv;

/// A label selector nested 3,000 deep overflowed the CLI's stack in `config set -label-scope`.
#[test]
fn a_deeply_nested_label_scope_is_an_error_at_its_column() {
    let env = TestEnv::new();
    let deep = format!("{}a == b{}", "(".repeat(3000), ")".repeat(3000));
    let r = env.run(&[
        "config",
        "set",
        "-scope",
        "global",
        "-label-scope",
        &deep,
        "X=1",
    ]);
    assert_eq!(r.code(), Some(1), "{}", r.all());
    assert!(
        r.stderr().contains(&format!(
            "-label-scope `…{}…`: column 65: the selector nests deeper than 64 levels of parentheses and `not`",
            "(".repeat(80)
        )),
        "{}",
        r.all()
    );
    assert!(r.stderr().len() < 400, "{}", r.all());
}
