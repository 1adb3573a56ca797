//! Label selectors: boolean expressions over a label map.
//!
//! Used by `label "<selector>" {}` scopes in `wayline.hcl`, by the `selectormatch` and
//! `selectorlookup` functions, and by the server to resolve label-scoped config.
//!
//! ```text
//! selector   := or
//! or         := and (("or" | "||") and)*
//! and        := unary (("and" | "&&") unary)*
//! unary      := ("not" | "!") unary | "(" or ")" | comparison
//! comparison := key ("==" | "!=") value
//!             | key ["not"] "in" "[" value ("," value)* [","] "]"
//!             | key "is" ["not"] "empty"
//! key, value := bare word ([A-Za-z0-9_./:-]+) or a double-quoted string
//! ```
//!
//! A missing label compares as the empty string, so `env != "prod"` holds when `env` is unset.
//!
//! Selectors come from untrusted places (a runner's `SetConfig`, a `wayline.hcl` under review),
//! so nesting is bounded: parentheses and `not` may nest [`MAX_DEPTH`] deep, and chains of
//! `and`/`or` are kept flat, so parsing, evaluating, printing and dropping a selector never
//! recurse deeper than that, whatever its length.

mod lex;
mod parser;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;

use lex::is_word_char;
pub use parser::parse;

/// A parsed selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `key == "value"`
    Eq(String, String),
    /// `key != "value"`
    Ne(String, String),
    /// `key in ["a", "b"]`
    In(String, Vec<String>),
    /// `key not in ["a", "b"]`
    NotIn(String, Vec<String>),
    /// `key is empty` (unset or "")
    Empty(String),
    /// `not <selector>`
    Not(Box<Selector>),
    /// `<a> and <b> and …` (two or more terms)
    And(Vec<Selector>),
    /// `<a> or <b> or …` (two or more terms)
    Or(Vec<Selector>),
}

/// How deep parentheses and `not` may nest. Real selectors use two or three levels; the limit
/// keeps a hostile one (thousands of `(`) from overflowing the stack.
pub const MAX_DEPTH: usize = 64;

/// A syntax error in a selector, with the 1-based column (in characters) where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError {
    /// 1-based character column of the offending token.
    pub column: usize,
    /// What was wrong, e.g. ``expected `==`, `!=`, `in` or `is` after `env`, found `=` ``.
    pub message: String,
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for SelectorError {}

impl Selector {
    /// Evaluates the selector against a label map.
    pub fn matches(&self, labels: &HashMap<String, String>) -> bool {
        self.matches_with(&|k| labels.get(k).map(String::as_str))
    }

    /// Evaluates the selector with a lookup function (for maps other than `HashMap`).
    pub fn matches_with<'a>(&self, get: &dyn Fn(&str) -> Option<&'a str>) -> bool {
        match self {
            Selector::Eq(k, v) => get(k).unwrap_or("") == v,
            Selector::Ne(k, v) => get(k).unwrap_or("") != v,
            Selector::In(k, vs) => get(k).is_some_and(|have| vs.iter().any(|v| v == have)),
            Selector::NotIn(k, vs) => !get(k).is_some_and(|have| vs.iter().any(|v| v == have)),
            Selector::Empty(k) => get(k).unwrap_or("").is_empty(),
            Selector::Not(s) => !s.matches_with(get),
            Selector::And(terms) => terms.iter().all(|s| s.matches_with(get)),
            Selector::Or(terms) => terms.iter().any(|s| s.matches_with(get)),
        }
    }
}

/// Prints the selector with parentheses only where precedence needs them, so the printed form
/// parses back to the same selector and nests no deeper than the source did.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// A string in the selector's own escapes (`\"`, `\\`, `\n`, `\t`).
        fn quote(v: &str) -> String {
            let mut out = String::with_capacity(v.len() + 2);
            out.push('"');
            for c in v.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        fn list(vs: &[String]) -> String {
            let items: Vec<String> = vs.iter().map(|v| quote(v)).collect();
            format!("[{}]", items.join(", "))
        }
        fn key(k: &str) -> String {
            let bare = !k.is_empty()
                && k.chars().all(is_word_char)
                && !matches!(k, "and" | "or" | "not" | "in");
            if bare { k.to_owned() } else { quote(k) }
        }
        match self {
            Selector::Eq(k, v) => write!(f, "{} == {}", key(k), quote(v)),
            Selector::Ne(k, v) => write!(f, "{} != {}", key(k), quote(v)),
            Selector::In(k, vs) => write!(f, "{} in {}", key(k), list(vs)),
            Selector::NotIn(k, vs) => write!(f, "{} not in {}", key(k), list(vs)),
            Selector::Empty(k) => write!(f, "{} is empty", key(k)),
            Selector::Not(s) => match **s {
                Selector::And(_) | Selector::Or(_) => write!(f, "not ({s})"),
                _ => write!(f, "not {s}"),
            },
            Selector::And(terms) => {
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    if matches!(t, Selector::Or(_)) {
                        write!(f, "({t})")?;
                    } else {
                        write!(f, "{t}")?;
                    }
                }
                Ok(())
            }
            Selector::Or(terms) => {
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    write!(f, "{t}")?;
                }
                Ok(())
            }
        }
    }
}
