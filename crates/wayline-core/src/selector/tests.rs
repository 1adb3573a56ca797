//! Parsing, evaluation and printing of selectors, and the nesting bounds.

use super::*;

mod basics {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn evaluates_comparisons_and_connectives() {
        let l = labels(&[("env", "prod"), ("region", "us"), ("tier", "b")]);
        let yes = [
            r#"env == "prod" and region != "eu""#,
            r#"tier in ["a","b"]"#,
            "env == prod",
            r#"not env == "dev""#,
            r#"env == "dev" or (tier == "b" and not region == "eu")"#,
            r#"zone not in ["x"]"#,
            "zone is empty",
            "env is not empty",
            "waypoint/workspace != x && !(env == dev) || env == nope",
        ];
        for s in yes {
            assert!(parse(s).unwrap().matches(&l), "{s}");
        }
        let no = [
            r#"env == "prod" and region == "eu""#,
            "tier in [a]",
            "missing == x",
            "env is empty",
        ];
        for s in no {
            assert!(!parse(s).unwrap().matches(&l), "{s}");
        }
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let sel = parse("a == 1 or b == 2 and not c == 3").unwrap();
        assert_eq!(sel.to_string(), r#"a == "1" or b == "2" and not c == "3""#);
        let sel = parse("not (a == 1 or b == 2) and (c == 3 or d is empty)").unwrap();
        assert_eq!(
            sel.to_string(),
            r#"not (a == "1" or b == "2") and (c == "3" or d is empty)"#
        );
    }

    #[test]
    fn errors_point_at_the_column() {
        let cases = [
            ("env = prod", 5, "unexpected `=`: use `==` to compare"),
            (
                "env ==",
                7,
                "expected a value, found the end of the selector",
            ),
            (
                "env == a and",
                13,
                "expected a label name, found the end of the selector",
            ),
            (
                "(env == a",
                10,
                "expected `)`, found the end of the selector",
            ),
            ("env in a", 8, "expected `[`, found `a`"),
            ("env in [a b]", 11, "expected `,` or `]`, found `b`"),
            ("env == \"x", 8, "unterminated string"),
            (
                "env prod",
                5,
                "expected `==`, `!=`, `in` or `is` after `env`, found `prod`",
            ),
            (
                "env == a b == c",
                10,
                "unexpected `b` after a complete selector",
            ),
            ("", 1, "empty selector"),
            ("env == a $", 10, "unexpected character `$`"),
        ];
        for (src, column, message) in cases {
            let err = parse(src).unwrap_err();
            assert_eq!(
                (err.column, err.message.as_str()),
                (column, message),
                "{src}"
            );
        }
    }
}

mod limits {
    use super::*;

    #[test]
    fn nesting_up_to_the_limit_parses_and_evaluates() {
        let src = format!("{}a == 1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        let sel = parse(&src).unwrap();
        assert!(sel.matches(&HashMap::from([("a".to_owned(), "1".to_owned())])));
        let src = format!("{}a == 1", "!".repeat(MAX_DEPTH));
        assert!(parse(&src).is_ok());
    }

    /// 3,000 levels overflowed the stack before the limit (issue 10); the error points at the
    /// first token past the limit.
    #[test]
    fn deeper_nesting_is_an_error_at_the_column_of_the_limit() {
        let message = "the selector nests deeper than 64 levels of parentheses and `not`";
        let cases = [
            ("(".repeat(3000), 65),
            (format!("{}a == 1{}", "(".repeat(65), ")".repeat(65)), 65),
            (format!("{}a == 1", "not ".repeat(70)), 257),
            (format!("x == 1 and {}a == 1", "!(".repeat(40)), 12 + 64),
        ];
        for (src, column) in cases {
            let err = parse(&src).unwrap_err();
            assert_eq!(
                (err.column, err.message.as_str()),
                (column, message),
                "{src}"
            );
        }
    }

    /// A long flat chain is not nesting: it parses, evaluates, prints and drops without
    /// recursing once per term.
    #[test]
    fn long_chains_stay_flat() {
        let src = vec!["a == 1"; 50_000].join(" and ");
        let sel = parse(&src).unwrap();
        assert!(matches!(&sel, Selector::And(t) if t.len() == 50_000));
        assert!(sel.matches(&HashMap::from([("a".to_owned(), "1".to_owned())])));
        assert!(sel.to_string().len() > src.len());
        let src = vec!["a == 1"; 50_000].join(" || ");
        assert!(!parse(&src).unwrap().matches(&HashMap::new()));
    }
}
