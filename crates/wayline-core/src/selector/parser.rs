//! Recursive descent over the tokens, bounded by [`MAX_DEPTH`]: parentheses and `not` nest,
//! chains of `and`/`or` stay flat.

use super::lex::{Kind, Token, lex};
use super::{MAX_DEPTH, Selector, SelectorError};

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
