//! No input may panic the loader, the evaluator, the formatter or the selector parser.
//! A bounded proptest harness (runs in CI with the normal test suite).

use proptest::prelude::*;
use wayline_config::{EvalContext, EvalInputs, Format, format_source, parse_str};

fn corpus() -> Vec<String> {
    let dir = super::fixtures_dir();
    let mut out = Vec::new();
    for sub in ["good", "bad"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                out.push(std::fs::read_to_string(p).unwrap());
            }
        }
    }
    out.sort();
    out
}

fn exercise(src: &str, format: Format) {
    if let Ok(config) = parse_str(src, "fuzz.hcl", format) {
        let inputs = EvalInputs {
            cli_vars: vec!["x=1".into()],
            ..Default::default()
        };
        let diags = EvalContext::validate(&config, &inputs);
        let _ = diags.to_string();
        let _ = diags.to_json();
        for app in &config.apps {
            if let Ok(ctx) = EvalContext::new(
                &config,
                &EvalInputs {
                    app: Some(app.name.clone()),
                    ..inputs.clone()
                },
            ) {
                let _ = ctx.config_vars();
                let _ = app
                    .deploy
                    .evaluate_use(&ctx, &serde_json::json!({"artifact": {"image": "i"}}));
            }
        }
    } else if let Err(d) = parse_str(src, "fuzz.hcl", format) {
        let _ = d.to_string();
    }
    let _ = format_source(src).map(|once| {
        assert_eq!(
            format_source(&once).ok().as_ref(),
            Some(&once),
            "fmt not idempotent"
        );
    });
}

/// Edits a corpus file: replace a byte range with fuzz text.
fn mutated() -> impl Strategy<Value = String> {
    let corpus = corpus();
    (
        0..corpus.len(),
        any::<prop::sample::Index>(),
        0usize..12,
        "[ -~\n{}\"=\\[\\]$#]{0,12}",
    )
        .prop_map(move |(i, at, len, insert)| {
            let src = &corpus[i];
            let mut start = at.index(src.len().max(1));
            while !src.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + len).min(src.len());
            while !src.is_char_boundary(end) {
                end += 1;
            }
            format!("{}{insert}{}", &src[..start], &src[end..])
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_fixtures_never_panic(src in mutated()) {
        exercise(&src, Format::Hcl);
        exercise(&src, Format::Json);
    }

    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,200}") {
        exercise(&src, Format::Hcl);
        exercise(&src, Format::Json);
    }

    #[test]
    fn selectors_never_panic(src in "[a-z =!\"()\\[\\],&|]{0,40}") {
        let _ = wayline_core::selector::parse(&src);
    }
}
