//! Bad files: each starts with `# expect: LINE:COL MESSAGE` lines (JSON files carry them in a
//! sibling `.expect` file) listing exactly the diagnostics a user sees, in order.

use wayline_config::{EvalInputs, validate_file};

fn diagnostics_of(path: &std::path::Path) -> wayline_config::Diagnostics {
    let inputs = EvalInputs {
        workspace: "default".into(),
        ..Default::default()
    };
    validate_file(path, &inputs)
}

#[test]
fn bad_files_report_exact_messages_and_positions() {
    let dir = super::fixtures_dir().join("bad");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.ends_with(".expect"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 20,
        "the corpus has {} bad files",
        names.len()
    );
    let mut failures = Vec::new();
    for name in &names {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let expect_src = if name.ends_with(".json") {
            std::fs::read_to_string(dir.join(format!("{name}.expect"))).unwrap()
        } else {
            text.clone()
        };
        let expected: Vec<String> = expect_src
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(str::to_owned)
            .collect();
        assert!(!expected.is_empty(), "{name} has no `# expect:` lines");
        let diags = diagnostics_of(&path);
        let got: Vec<String> = diags
            .iter()
            .map(|d| {
                let loc = d
                    .location
                    .as_ref()
                    .map_or("-".to_owned(), |l| format!("{}:{}", l.line, l.column));
                match &d.help {
                    Some(h) => format!("{loc} {} ({h})", d.message),
                    None => format!("{loc} {}", d.message),
                }
            })
            .collect();
        if got != expected && std::env::var_os("UPDATE_EXPECT").is_some() {
            // Developer aid: rewrite the expectations, then review them with `git diff`.
            let lines: Vec<String> = got.iter().map(|g| format!("# expect: {g}")).collect();
            if name.ends_with(".json") {
                std::fs::write(dir.join(format!("{name}.expect")), lines.join("\n") + "\n")
                    .unwrap();
            } else {
                let rest: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.starts_with("# expect: "))
                    .collect();
                std::fs::write(&path, lines.join("\n") + "\n" + &rest.join("\n") + "\n").unwrap();
            }
            continue;
        }
        if got != expected {
            failures.push(format!(
                "{name}:\n  expected: {expected:#?}\n  got: {got:#?}\n{diags}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rendering_shows_file_line_caret_and_help() {
    let path = super::fixtures_dir().join("bad/multiple-errors.hcl");
    let out = diagnostics_of(&path)
        .to_string()
        .replace(&super::fixtures_dir().display().to_string(), "<fixtures>");
    insta::assert_snapshot!("rendered_multiple_errors", out);
}

#[test]
fn json_output_for_validate() {
    let path = super::fixtures_dir().join("bad/multiple-errors.hcl");
    let mut json = diagnostics_of(&path).to_json();
    let text = json
        .to_string()
        .replace(&super::fixtures_dir().display().to_string(), "<fixtures>");
    json = serde_json::from_str(&text).unwrap();
    insta::assert_json_snapshot!("validate_json_multiple_errors", json);
}
