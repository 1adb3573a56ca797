//! Splits a selector into tokens, each with the column it starts at.

use std::fmt;

use super::SelectorError;
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
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
pub(super) struct Token {
    pub(super) kind: Kind,
    pub(super) col: usize,
}

pub(super) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | ':')
}

#[allow(clippy::many_single_char_names)] // i/j/c are the usual scanner cursors
pub(super) fn lex(src: &str) -> Result<Vec<Token>, SelectorError> {
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
