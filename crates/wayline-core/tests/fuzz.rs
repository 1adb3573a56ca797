//! Fuzzing the selector parser with a stable harness (proptest): arbitrary bytes and token
//! soups never panic, and whatever parses prints to a form that parses back to the same
//! meaning. A bounded number of cases runs with the normal test suite; inputs that once crashed
//! live in `tests/corpus/selector/` and are replayed on every run.

use std::collections::HashMap;

use proptest::prelude::*;
use wayline_core::selector::{self, Selector};

fn label_maps() -> Vec<HashMap<String, String>> {
    let values = ["", "x", "1"];
    let mut maps = Vec::new();
    for a in values {
        for b in values {
            let mut m = HashMap::new();
            if !a.is_empty() {
                m.insert("a".to_owned(), a.to_owned());
            }
            m.insert("b".to_owned(), b.to_owned());
            maps.push(m);
        }
    }
    maps
}

/// Parses `src`; what parses must print and reparse to a selector with the same meaning.
fn check(src: &str) {
    match selector::parse(src) {
        Ok(sel) => {
            let printed = sel.to_string();
            let again: Selector = selector::parse(&printed)
                .unwrap_or_else(|e| panic!("{src:?} printed as {printed:?}, which fails: {e}"));
            for m in label_maps() {
                assert_eq!(
                    sel.matches(&m),
                    again.matches(&m),
                    "{src:?} vs {printed:?} on {m:?}"
                );
            }
        }
        Err(e) => {
            assert!(
                e.column >= 1 && e.column <= src.chars().count() + 1,
                "{src:?}: column {} out of range",
                e.column
            );
        }
    }
}

fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "(", ")", "not ", "!", " and ", " or ", "&&", "||", "a", "b", "==", "!=", " in ", "[", "]",
        ",", "\"x\"", "\"\\n\"", " is ", "empty", " ", "1", "\"a b\"",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn token_soups_parse_or_fail_cleanly(tokens in prop::collection::vec(token(), 0..40)) {
        check(&tokens.concat());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash(depth in 0usize..400, open in token()) {
        check(&format!("{}a == 1", open.repeat(depth)));
    }
}

#[test]
fn the_crash_corpus_stays_fixed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/selector");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus dir") {
        let path = entry.unwrap().path();
        let src = std::fs::read_to_string(&path).unwrap();
        check(&src);
        n += 1;
    }
    assert!(n >= 5, "the corpus has {n} inputs");
}
