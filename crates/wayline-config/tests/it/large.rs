//! A file with thousands of apps loads and validates in time linear in its size (issue 10:
//! it was quadratic). The timing figure is in `benches/load.rs`; this asserts the result.

use std::fmt::Write as _;

use wayline_config::{EvalInputs, Format, parse_str, validate_str};

/// A generated file of about `bytes` bytes: one app per ~200 bytes.
fn many_apps(bytes: usize) -> (String, usize) {
    let mut s = String::from("project = \"big\"\n");
    let mut n = 0;
    while s.len() < bytes {
        let _ = write!(
            s,
            "app \"svc-{n}\" {{\n  labels = {{ \"tier\" = \"backend\" }}\n  build {{\n    use \"docker\" {{}}\n  }}\n  deploy {{\n    use \"docker\" {{\n      service_port = {}\n    }}\n  }}\n}}\n",
            3000 + n % 1000
        );
        n += 1;
    }
    (s, n)
}

/// `validate` of a generated file, from the current directory.
fn validate_big(src: &str) -> wayline_config::Diagnostics {
    validate_str(
        src,
        "big.hcl",
        Format::Hcl,
        std::path::Path::new("."),
        &EvalInputs::default(),
    )
}

#[test]
fn a_file_with_thousands_of_apps_loads_and_validates() {
    let (src, n) = many_apps(2 << 20);
    let config = parse_str(&src, "big.hcl", Format::Hcl).unwrap();
    assert_eq!(config.apps.len(), n);
    assert_eq!(config.apps[n - 1].name, format!("svc-{}", n - 1));
    let diags = validate_big(&src);
    assert!(!diags.has_errors(), "{diags}");
}

/// A file large enough to be parsed in parts on several threads reports every error at its
/// place in the whole file, as a small one does: errors near the end, a name declared in two
/// parts, a top-level attribute set in two parts. (On one core the parts are parsed one after
/// the other, and the same positions hold.)
#[test]
fn errors_in_a_file_parsed_in_parts_are_at_their_place_in_the_whole_file() {
    let (mut src, n) = many_apps(3 << 20);
    let line_of = |src: &str| src.lines().count() + 1;
    let dup_line = line_of(&src);
    src.push_str("app \"svc-0\" {\n  colour = 1\n  build {\n    use \"docker\" {}\n  }\n  deploy {\n    use \"docker\" {}\n  }\n}\n");
    let var_line = line_of(&src);
    src.push_str("variable \"port\" {\n  type = strng\n}\n");
    let project_line = line_of(&src);
    src.push_str("project = \"again\"\n");
    let diags = validate_big(&src);
    let got: Vec<String> = diags
        .iter()
        .map(|d| {
            let l = d.location.as_ref().expect("located");
            format!("{}:{}: {}", l.line, l.column, d.message)
        })
        .collect();
    assert_eq!(
        got,
        [
            format!("{dup_line}:5: app \"svc-0\" is declared twice; the first is on line 2"),
            format!(
                "{}:3: unknown attribute `colour` in app \"svc-0\"",
                dup_line + 1
            ),
            // A variable's own place, from the last part, as well.
            format!(
                "{var_line}:10: variable `port` has no value here; a job fails unless the server has one"
            ),
            format!("{}:10: unknown type `strng`", var_line + 1),
            format!(
                "{project_line}:1: attribute `project` is set twice at the top level; the first is on line 1"
            ),
        ],
        "{diags}"
    );
    // The apps come in file order, the last one from the last part.
    let err = parse_str(&src, "big.hcl", Format::Hcl).unwrap_err();
    assert_eq!(err.len(), 4, "{err}"); // decoding alone: the four errors, not the warning
    let ok = many_apps(3 << 20).0;
    let config = parse_str(&ok, "big.hcl", Format::Hcl).unwrap();
    assert_eq!(config.apps.len(), n);
    assert!(
        config
            .apps
            .iter()
            .enumerate()
            .all(|(i, a)| a.name == format!("svc-{i}"))
    );
    let last = config.apps[n - 1].location();
    assert_eq!((last.line, last.column), (line_of(&ok) - 11, 5));
}
