//! `wayline fmt`: canonical layout that keeps comments.
//!
//! hcl-rs's formatter drops comments, so this is a careful line-based formatter over the token
//! structure: indentation by nesting depth (two spaces), `=` aligned within runs of single-line
//! attributes at the same depth, one space around `=`, trailing whitespace removed, at most one
//! blank line in a row, none after `{` or before `}`, and a final newline. Heredocs and
//! multi-line strings are left as they are. The input must parse; the output is checked to parse
//! to the same structure.

use crate::diag::{Diagnostic, Diagnostics, SourceFile};

/// Formats HCL source canonically. Errors when the source does not parse.
pub fn format_source(src: &str) -> Result<String, Diagnostics> {
    let file = SourceFile::new("<input>", src);
    let before = crate::parse::parse_body(&file)?;
    let out = format_lines(src);
    // Never hand back something that means something else.
    match hcl::edit::parser::parse_body(&out) {
        Ok(after) if hcl::Body::from(after.clone()) == hcl::Body::from(before) => Ok(out),
        _ => Err(Diagnostic::error("internal formatter error: the formatted text would change the configuration; the file was left as it is").into()),
    }
}

struct Line {
    depth: usize,
    /// Text without leading/trailing whitespace (verbatim lines keep theirs).
    text: String,
    verbatim: bool,
    /// For `key = value` lines: byte index of `=` in `text`.
    eq: Option<usize>,
}

/// Splits into lines, tracking nesting depth outside strings, comments and heredocs.
fn format_lines(src: &str) -> String {
    let mut lines: Vec<Line> = Vec::new();
    let mut depth: usize = 0;
    let mut heredoc: Option<String> = None;
    let mut in_block_comment = false;
    // Open string/template state carried across lines (multi-line templates are verbatim).
    let mut open_string = false;
    for raw in src.lines() {
        if let Some(end) = &heredoc {
            let done = raw.trim() == end;
            lines.push(Line {
                depth,
                text: raw.to_owned(),
                verbatim: true,
                eq: None,
            });
            if done {
                heredoc = None;
            }
            continue;
        }
        if in_block_comment || open_string {
            lines.push(Line {
                depth,
                text: raw.trim_end().to_owned(),
                verbatim: true,
                eq: None,
            });
        }
        let trimmed = raw.trim();
        let scan = scan(raw, in_block_comment, open_string);
        let was_verbatim = in_block_comment || open_string;
        in_block_comment = scan.in_block_comment;
        open_string = scan.open_string;
        if was_verbatim {
            depth = depth.saturating_add_signed(scan.delta);
            continue;
        }
        // A line that starts by closing lowers its own indent.
        let own = depth.saturating_sub(scan.leading_closes);
        let eq = if scan.depth_at_eq == Some(0)
            && !trimmed.starts_with('#')
            && !trimmed.starts_with("//")
        {
            scan.eq.map(|i| i - (raw.len() - raw.trim_start().len()))
        } else {
            None
        };
        let text = normalize_eq(trimmed, eq);
        let eq = eq.map(|_| text.find('=').unwrap_or(0));
        lines.push(Line {
            depth: own,
            text,
            verbatim: false,
            eq: eq.filter(|_| scan.delta == 0 && !scan.open_string),
        });
        depth = depth.saturating_add_signed(scan.delta);
        if let Some(h) = scan.heredoc {
            heredoc = Some(h);
        }
    }
    render(&lines)
}

fn normalize_eq(line: &str, eq: Option<usize>) -> String {
    match eq {
        Some(i) if i < line.len() => {
            let (k, v) = line.split_at(i);
            format!("{} = {}", k.trim_end(), v[1..].trim_start())
        }
        _ => line.to_owned(),
    }
}

struct Scan {
    delta: isize,
    leading_closes: usize,
    eq: Option<usize>,
    depth_at_eq: Option<isize>,
    heredoc: Option<String>,
    in_block_comment: bool,
    open_string: bool,
}

fn scan(line: &str, in_block_comment: bool, in_string: bool) -> Scan {
    let mut s = Scanner {
        line,
        b: line.as_bytes(),
        i: 0,
        in_block_comment,
        in_string,
        interp: Vec::new(),
        seen_other: false,
        delta: 0,
        leading_closes: 0,
        eq: None,
        depth_at_eq: None,
        heredoc: None,
    };
    while s.i < s.b.len() {
        if s.in_block_comment {
            s.comment_byte();
        } else if s.in_string {
            s.string_byte();
        } else if !s.code_byte() {
            break;
        }
    }
    Scan {
        delta: s.delta,
        leading_closes: s.leading_closes,
        eq: s.eq,
        depth_at_eq: s.depth_at_eq,
        heredoc: s.heredoc,
        in_block_comment: s.in_block_comment,
        open_string: s.in_string || !s.interp.is_empty(),
    }
}

/// [`scan`]'s walk over one line: a block comment, a string (with its interpolations) or code
/// at `i`, each mode one method that moves `i` on.
struct Scanner<'l> {
    line: &'l str,
    b: &'l [u8],
    i: usize,
    in_block_comment: bool,
    in_string: bool,
    /// Interpolation nesting inside strings: `${ ... }` may contain braces and strings.
    interp: Vec<isize>,
    /// Something other than a closing bracket came before (so a close is not leading).
    seen_other: bool,
    delta: isize,
    leading_closes: usize,
    eq: Option<usize>,
    depth_at_eq: Option<isize>,
    heredoc: Option<String>,
}

impl Scanner<'_> {
    fn comment_byte(&mut self) {
        if self.b[self.i..].starts_with(b"*/") {
            self.in_block_comment = false;
            self.i += 2;
        } else {
            self.i += 1;
        }
    }

    fn string_byte(&mut self) {
        let (b, i) = (self.b, self.i);
        let c = b[i];
        match c {
            b'\\' => self.i += 2,
            b'"' => {
                self.in_string = false;
                self.i += 1;
            }
            b'$' | b'%' if b.get(i + 1) == Some(&b'{') => {
                if b.get(i + 2) == Some(&c) {
                    self.i += 3; // escaped `$${` / `%%{`
                } else {
                    self.interp.push(0);
                    self.in_string = false;
                    self.i += 2;
                }
            }
            _ => self.i += 1,
        }
    }

    /// One byte of code; false where the rest of the line is a comment or a heredoc's text.
    fn code_byte(&mut self) -> bool {
        let (b, i) = (self.b, self.i);
        let c = b[i];
        match c {
            b'#' => return false,
            b'/' if b.get(i + 1) == Some(&b'/') => return false,
            b'/' if b.get(i + 1) == Some(&b'*') => {
                self.in_block_comment = true;
                self.i += 2;
                return true;
            }
            b'"' => {
                self.in_string = true;
                self.seen_other = true;
            }
            b'<' if b[i..].starts_with(b"<<") => {
                let rest = &self.line[i + 2..];
                let rest = rest.strip_prefix('-').unwrap_or(rest);
                let ident: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !ident.is_empty() {
                    self.heredoc = Some(ident);
                    return false;
                }
                self.seen_other = true;
            }
            b'{' | b'[' | b'(' => {
                if let Some(top) = self.interp.last_mut() {
                    *top += 1;
                } else {
                    self.delta += 1;
                }
                self.seen_other = true;
            }
            b'}' | b']' | b')' => {
                if self.close(c) {
                    self.i += 1;
                    return true;
                }
            }
            b'=' if self.interp.is_empty() => self.equals(),
            b' ' | b'\t' => {}
            _ => self.seen_other = true,
        }
        self.i += 1;
        true
    }

    /// A closing bracket; true when it ends an interpolation (back inside the string).
    fn close(&mut self, c: u8) -> bool {
        if let Some(top) = self.interp.last_mut() {
            if *top == 0 && c == b'}' {
                self.interp.pop();
                self.in_string = true;
                return true;
            }
            *top -= 1;
        } else {
            self.delta -= 1;
            if !self.seen_other {
                self.leading_closes += 1;
            }
        }
        false
    }

    /// The first `=` of an attribute (not `==`, `!=`, `<=`, `>=` or `=>`).
    fn equals(&mut self) {
        let (b, i) = (self.b, self.i);
        let prev = if i > 0 { b[i - 1] } else { b' ' };
        let next = b.get(i + 1).copied().unwrap_or(b' ');
        if self.eq.is_none()
            && !matches!(prev, b'=' | b'!' | b'<' | b'>')
            && next != b'='
            && next != b'>'
        {
            self.eq = Some(i);
            self.depth_at_eq = Some(self.delta);
        }
        self.seen_other = true;
    }
}

fn render(lines: &[Line]) -> String {
    // Width of the key column for each run of single-line attributes at one depth.
    let mut widths = vec![0usize; lines.len()];
    let mut i = 0;
    while i < lines.len() {
        if lines[i].eq.is_some() && !lines[i].verbatim {
            let d = lines[i].depth;
            let mut j = i;
            let mut w = 0;
            while j < lines.len()
                && lines[j].eq.is_some()
                && !lines[j].verbatim
                && lines[j].depth == d
            {
                w = w.max(
                    lines[j].text[..lines[j].eq.unwrap_or(0)]
                        .trim_end()
                        .chars()
                        .count(),
                );
                j += 1;
            }
            for slot in &mut widths[i..j] {
                *slot = w;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    let mut out = String::new();
    let mut blank_pending = false;
    let mut prev_open = true;
    for (idx, l) in lines.iter().enumerate() {
        if l.verbatim {
            out.push_str(&l.text);
            out.push('\n');
            prev_open = false;
            continue;
        }
        if l.text.is_empty() {
            blank_pending = true;
            continue;
        }
        let closes = l.text.starts_with('}') || l.text.starts_with(']') || l.text.starts_with(')');
        if blank_pending && !prev_open && !closes {
            out.push('\n');
        }
        blank_pending = false;
        out.push_str(&"  ".repeat(l.depth));
        match l.eq {
            Some(e) => {
                let key = l.text[..e].trim_end();
                let pad = widths[idx].saturating_sub(key.chars().count());
                out.push_str(key);
                out.push_str(&" ".repeat(pad));
                out.push_str(" = ");
                out.push_str(l.text[e + 1..].trim_start());
            }
            None => out.push_str(&l.text),
        }
        out.push('\n');
        prev_open = l.text.ends_with('{') || l.text.ends_with('[') || l.text.ends_with('(');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    if out.trim().is_empty() {
        return String::new();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_indents_and_keeps_comments() {
        let src = "project=\"p\"\n# top comment\napp \"web\" {\n      path = \"./web\" # inline\n  labels   =   { a = 1 }\n\n\n\n  build {\n use \"docker\" {}\n    }\n  deploy {\n    use \"docker\" {\n      service_port = 3000\n      x = \"a == b\"\n    }\n  }\n}\n";
        let out = format_source(src).unwrap();
        assert_eq!(
            out,
            "project = \"p\"\n# top comment\napp \"web\" {\n  path   = \"./web\" # inline\n  labels = { a = 1 }\n\n  build {\n    use \"docker\" {}\n  }\n  deploy {\n    use \"docker\" {\n      service_port = 3000\n      x            = \"a == b\"\n    }\n  }\n}\n"
        );
        assert_eq!(format_source(&out).unwrap(), out, "idempotent");
    }

    #[test]
    fn leaves_heredocs_and_multiline_values() {
        let src = "project = \"p\"\nx = <<EOT\n  keep   = this\n    as is\nEOT\ny = [\n\"a\",\n  \"b\",\n]\nz = \"${upper(\"a}\")}\"\n";
        let out = format_source(src).unwrap();
        assert_eq!(
            out,
            "project = \"p\"\nx       = <<EOT\n  keep   = this\n    as is\nEOT\ny = [\n  \"a\",\n  \"b\",\n]\nz = \"${upper(\"a}\")}\"\n"
        );
        assert_eq!(format_source(&out).unwrap(), out);
    }

    #[test]
    fn rejects_invalid_source() {
        let err = format_source("app {").unwrap_err();
        assert_eq!(err.len(), 1);
    }
}
