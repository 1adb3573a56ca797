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

use std::collections::HashMap;
use std::fmt;

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

/// Parses a selector such as `env == "prod" and region != "eu"`.
pub fn parse(src: &str) -> Result<Selector, SelectorError> {
    let tokens = lex(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        end_col: src.chars().count() + 1,
        depth: 0,
    };
    if p.tokens.is_empty() {
        return Err(SelectorError {
            column: 1,
            message: "empty selector".to_owned(),
        });
    }
    let sel = p.or()?;
    if let Some(t) = p.peek() {
        return Err(p.err_at(
            t,
            format!("unexpected {} after a complete selector", t.kind),
        ));
    }
    Ok(sel)
}

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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Word(String),
    Str(String),
    EqEq,
    NotEq,
    Bang,
    AndAnd,
    OrOr,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Word(w) => write!(f, "`{w}`"),
            Kind::Str(s) => write!(f, "string {s:?}"),
            Kind::EqEq => f.write_str("`==`"),
            Kind::NotEq => f.write_str("`!=`"),
            Kind::Bang => f.write_str("`!`"),
            Kind::AndAnd => f.write_str("`&&`"),
            Kind::OrOr => f.write_str("`||`"),
            Kind::LParen => f.write_str("`(`"),
            Kind::RParen => f.write_str("`)`"),
            Kind::LBracket => f.write_str("`[`"),
            Kind::RBracket => f.write_str("`]`"),
            Kind::Comma => f.write_str("`,`"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    col: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | ':')
}

#[allow(clippy::many_single_char_names)] // i/j/c are the usual scanner cursors
fn lex(src: &str) -> Result<Vec<Token>, SelectorError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        let two = |a: char, b: char| c == a && chars.get(i + 1) == Some(&b);
        let (kind, len) = if c.is_whitespace() {
            i += 1;
            continue;
        } else if two('=', '=') {
            (Kind::EqEq, 2)
        } else if two('!', '=') {
            (Kind::NotEq, 2)
        } else if two('&', '&') {
            (Kind::AndAnd, 2)
        } else if two('|', '|') {
            (Kind::OrOr, 2)
        } else if c == '!' {
            (Kind::Bang, 1)
        } else if c == '(' {
            (Kind::LParen, 1)
        } else if c == ')' {
            (Kind::RParen, 1)
        } else if c == '[' {
            (Kind::LBracket, 1)
        } else if c == ']' {
            (Kind::RBracket, 1)
        } else if c == ',' {
            (Kind::Comma, 1)
        } else if c == '"' {
            let mut s = String::new();
            let mut j = i + 1;
            loop {
                match chars.get(j) {
                    None => {
                        return Err(SelectorError {
                            column: col,
                            message: "unterminated string".to_owned(),
                        });
                    }
                    Some('"') => break,
                    Some('\\') => {
                        match chars.get(j + 1) {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(&e @ ('"' | '\\')) => s.push(e),
                            _ => {
                                return Err(SelectorError {
                                    column: j + 1,
                                    message: "invalid escape in string".to_owned(),
                                });
                            }
                        }
                        j += 2;
                    }
                    Some(&other) => {
                        s.push(other);
                        j += 1;
                    }
                }
            }
            (Kind::Str(s), j + 1 - i)
        } else if is_word_char(c) {
            let mut j = i;
            while j < chars.len() && is_word_char(chars[j]) {
                j += 1;
            }
            (Kind::Word(chars[i..j].iter().collect()), j - i)
        } else {
            let message = if c == '=' {
                "unexpected `=`: use `==` to compare".to_owned()
            } else {
                format!("unexpected character `{c}`")
            };
            return Err(SelectorError {
                column: col,
                message,
            });
        };
        out.push(Token { kind, col });
        i += len;
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    end_col: usize,
    /// Open parentheses and `not`s around the current position.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: Kind::Word(x), .. }) if x == w)
    }

    #[allow(clippy::unused_self)]
    fn err_at(&self, t: &Token, message: String) -> SelectorError {
        SelectorError {
            column: t.col,
            message,
        }
    }

    fn err_here(&self, expected: &str) -> SelectorError {
        match self.peek() {
            Some(t) => self.err_at(t, format!("expected {expected}, found {}", t.kind)),
            None => SelectorError {
                column: self.end_col,
                message: format!("expected {expected}, found the end of the selector"),
            },
        }
    }

    /// Enters one level of nesting at token `t`, failing past [`MAX_DEPTH`].
    fn descend(&mut self, t: &Token) -> Result<(), SelectorError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err_at(
                t,
                format!(
                    "the selector nests deeper than {MAX_DEPTH} levels of parentheses and `not`"
                ),
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Selector, SelectorError> {
        let mut terms = vec![self.and()?];
        while self.is_word("or")
            || matches!(
                self.peek(),
                Some(Token {
                    kind: Kind::OrOr,
                    ..
                })
            )
        {
            self.pos += 1;
            terms.push(self.and()?);
        }
        Ok(flat(terms, Selector::Or))
    }

    fn and(&mut self) -> Result<Selector, SelectorError> {
        let mut terms = vec![self.unary()?];
        while self.is_word("and")
            || matches!(
                self.peek(),
                Some(Token {
                    kind: Kind::AndAnd,
                    ..
                })
            )
        {
            self.pos += 1;
            terms.push(self.unary()?);
        }
        Ok(flat(terms, Selector::And))
    }

    fn unary(&mut self) -> Result<Selector, SelectorError> {
        if self.is_word("not")
            || matches!(
                self.peek(),
                Some(Token {
                    kind: Kind::Bang,
                    ..
                })
            )
        {
            let t = self.next().expect("peeked");
            self.descend(&t)?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Selector::Not(Box::new(inner)));
        }
        if matches!(
            self.peek(),
            Some(Token {
                kind: Kind::LParen,
                ..
            })
        ) {
            let t = self.next().expect("peeked");
            self.descend(&t)?;
            let inner = self.or()?;
            self.depth -= 1;
            match self.peek() {
                Some(Token {
                    kind: Kind::RParen, ..
                }) => {
                    self.pos += 1;
                    return Ok(inner);
                }
                _ => return Err(self.err_here("`)`")),
            }
        }
        self.comparison()
    }

    fn operand(&mut self, what: &str) -> Result<String, SelectorError> {
        match self.peek().map(|t| t.kind.clone()) {
            Some(Kind::Word(w)) if !matches!(w.as_str(), "and" | "or" | "not" | "in") => {
                self.pos += 1;
                Ok(w)
            }
            Some(Kind::Str(s)) => {
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.err_here(what)),
        }
    }

    fn comparison(&mut self) -> Result<Selector, SelectorError> {
        let key = self.operand("a label name")?;
        let Some(op) = self.next() else {
            return Err(SelectorError {
                column: self.end_col,
                message: format!(
                    "expected `==`, `!=`, `in` or `is` after `{key}`, found the end of the selector"
                ),
            });
        };
        match &op.kind {
            Kind::EqEq => Ok(Selector::Eq(key, self.operand("a value")?)),
            Kind::NotEq => Ok(Selector::Ne(key, self.operand("a value")?)),
            Kind::Word(w) if w == "in" => Ok(Selector::In(key, self.list()?)),
            Kind::Word(w) if w == "not" => {
                if self.is_word("in") {
                    self.pos += 1;
                    Ok(Selector::NotIn(key, self.list()?))
                } else {
                    Err(self.err_here("`in` after `not`"))
                }
            }
            Kind::Word(w) if w == "is" => {
                let negate = self.is_word("not");
                if negate {
                    self.pos += 1;
                }
                if self.is_word("empty") {
                    self.pos += 1;
                    let sel = Selector::Empty(key);
                    Ok(if negate {
                        Selector::Not(Box::new(sel))
                    } else {
                        sel
                    })
                } else {
                    Err(self.err_here("`empty`"))
                }
            }
            other => Err(self.err_at(
                &op,
                format!("expected `==`, `!=`, `in` or `is` after `{key}`, found {other}"),
            )),
        }
    }

    fn list(&mut self) -> Result<Vec<String>, SelectorError> {
        match self.peek() {
            Some(Token {
                kind: Kind::LBracket,
                ..
            }) => self.pos += 1,
            _ => return Err(self.err_here("`[`")),
        }
        let mut out = Vec::new();
        loop {
            if matches!(
                self.peek(),
                Some(Token {
                    kind: Kind::RBracket,
                    ..
                })
            ) {
                self.pos += 1;
                return Ok(out);
            }
            out.push(self.operand("a value or `]`")?);
            match self.peek() {
                Some(Token {
                    kind: Kind::Comma, ..
                }) => self.pos += 1,
                Some(Token {
                    kind: Kind::RBracket,
                    ..
                }) => {}
                _ => return Err(self.err_here("`,` or `]`")),
            }
        }
    }
}

/// One term stays itself; several become `and`/`or` of them.
fn flat(mut terms: Vec<Selector>, join: fn(Vec<Selector>) -> Selector) -> Selector {
    if terms.len() == 1 {
        terms.pop().expect("one term")
    } else {
        join(terms)
    }
}

#[cfg(test)]
mod tests {
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

#[cfg(test)]
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
