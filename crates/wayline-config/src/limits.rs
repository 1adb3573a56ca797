//! Limits on untrusted input: how deep expressions may nest before the recursive parser and
//! evaluator see them (a `[[[[…` 3,000 deep would overflow the stack), and how large a value a
//! function may build (`indent(2000000000, …)` from a 300-byte file).

/// Deepest nesting of brackets, braces, parentheses and interpolations (and of template
/// files rendering template files). Real files stay under 10.
pub const MAX_DEPTH: usize = 64;

/// Most bytes a function result (string) may hold.
pub const MAX_RESULT_BYTES: usize = 16 << 20;

/// Most elements a function result (list or map) may hold.
pub const MAX_RESULT_ITEMS: usize = 100_000;

/// Where nesting first went past [`MAX_DEPTH`]: the byte offset of the opener.
///
/// A small lexer: comments and quoted strings are skipped (their brackets don't count),
/// `${` / `%{` inside strings and heredocs count as one level each. `template` starts inside
/// a template (a `templatefile` text) rather than in code.
pub fn too_deep(text: &str, template: bool) -> Option<usize> {
    scan(text, template, &mut |_| {})
}

/// Where a file can be cut into about `parts` pieces that parse on their own (to parse a
/// large file on several threads): `0`, then the first top-level line start (outside every
/// bracket, string, comment and heredoc) at or after each `k * len / parts`, then the length.
/// `Err` is [`too_deep`]'s offset.
pub(crate) fn cuts(text: &str, parts: usize) -> Result<Vec<usize>, usize> {
    let parts = parts.max(1);
    let mut out = vec![0];
    let target = |k: usize| k.saturating_mul(text.len()) / parts;
    let mut on_top_line = |at: usize| {
        if out.len() < parts && at >= target(out.len()) && at < text.len() {
            out.push(at);
        }
    };
    if let Some(at) = scan(text, false, &mut on_top_line) {
        return Err(at);
    }
    out.push(text.len());
    Ok(out)
}

/// The lexer behind [`too_deep`] and [`cuts`]: `on_top_line` gets the offset of every line
/// start at the top level of code.
fn scan(text: &str, template: bool, on_top_line: &mut dyn FnMut(usize)) -> Option<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum Ctx {
        Code,
        /// Inside `"…"`.
        Str,
        /// Inside a template text (template files, heredoc bodies) until its end.
        Text,
    }
    let b = text.as_bytes();
    let mut stack: Vec<Ctx> = vec![if template { Ctx::Text } else { Ctx::Code }];
    let mut heredoc_ends: Vec<String> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let ctx = *stack.last().unwrap_or(&Ctx::Code);
        let c = b[i];
        match ctx {
            Ctx::Code => match c {
                b'#' => i = skip_line(b, i),
                b'/' if b.get(i + 1) == Some(&b'/') => i = skip_line(b, i),
                b'/' if b.get(i + 1) == Some(&b'*') => {
                    i = text[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 1);
                }
                b'"' => stack.push(Ctx::Str),
                b'<' if b.get(i + 1) == Some(&b'<') => {
                    // `<<EOF` / `<<-EOF`: the body up to the terminator line is template text.
                    let start = i + 2 + usize::from(b.get(i + 2) == Some(&b'-'));
                    let end = b[start..]
                        .iter()
                        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                        .map_or(b.len(), |n| start + n);
                    if end > start {
                        heredoc_ends.push(text[start..end].to_owned());
                        stack.push(Ctx::Text);
                        i = skip_line(b, end);
                    }
                }
                b'(' | b'[' | b'{' => {
                    stack.push(Ctx::Code);
                    if stack.len() > MAX_DEPTH + 1 {
                        return Some(i);
                    }
                }
                b')' | b']' | b'}' if stack.len() > 1 => {
                    stack.pop();
                }
                b'\n' if stack.len() == 1 => on_top_line(i + 1),
                _ => {}
            },
            Ctx::Str | Ctx::Text => match c {
                b'\\' if ctx == Ctx::Str => i += 1,
                b'"' if ctx == Ctx::Str => {
                    stack.pop();
                }
                b'$' | b'%' if b.get(i + 1) == Some(&b'{') => {
                    if b.get(i.wrapping_sub(1)) == Some(&c) && i > 0 {
                        // `$${` / `%%{` is an escaped, literal `${`.
                    } else {
                        stack.push(Ctx::Code);
                        i += 1;
                        if stack.len() > MAX_DEPTH + 1 {
                            return Some(i - 1);
                        }
                    }
                }
                b'\n' if ctx == Ctx::Text && !heredoc_ends.is_empty() => {
                    let line_end = b[i + 1..]
                        .iter()
                        .position(|c| *c == b'\n')
                        .map_or(b.len(), |n| i + 1 + n);
                    let line = text[i + 1..line_end].trim();
                    if heredoc_ends.last().is_some_and(|t| t == line) {
                        heredoc_ends.pop();
                        stack.pop();
                        i = line_end;
                        continue;
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    None
}

fn skip_line(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|c| *c == b'\n')
        .map_or(b.len(), |n| i + n)
}

/// The message for [`too_deep`].
pub fn too_deep_message() -> String {
    format!("expressions nest more than {MAX_DEPTH} levels deep here (the limit is {MAX_DEPTH})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_real_nesting_only() {
        let ok = format!("a = {}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(too_deep(&ok, false), None);
        let deep = format!("a = {}1{}", "[".repeat(3000), "]".repeat(3000));
        assert_eq!(too_deep(&deep, false), Some(4 + MAX_DEPTH));
        // Brackets in strings and comments don't count; interpolations do.
        let quoted = format!("a = \"{}\" # {}\n", "[".repeat(500), "(".repeat(500));
        assert_eq!(too_deep(&quoted, false), None);
        let interp = format!("a = {}x{}", "\"${".repeat(100), "}\"".repeat(100));
        assert!(too_deep(&interp, false).is_some());
        let heredoc = format!("a = <<EOF\n{}\nEOF\nb = 1\n", "{".repeat(500));
        assert_eq!(too_deep(&heredoc, false), None);
        assert_eq!(too_deep(&"$${".repeat(500), true), None);
        assert!(too_deep(&"${".repeat(500), true).is_some());
    }

    #[test]
    fn cuts_only_between_top_level_structures() {
        let block =
            "app \"a\" {\n  x = <<EOF\n}\napp \"b\" {\nEOF\n  y = \"}\\n\" # }\n  /* }\n */\n}\n";
        let text = block.repeat(8);
        let cuts = cuts(&text, 4).unwrap();
        assert_eq!(cuts.len(), 5, "{cuts:?}");
        assert_eq!((cuts[0], cuts[4]), (0, text.len()));
        for c in &cuts[1..4] {
            assert_eq!(c % block.len(), 0, "cut inside a block at {c}: {cuts:?}");
        }
        // More parts than top-level lines: as many as there are, never an empty one.
        assert_eq!(super::cuts("a = 1\n", 8).unwrap(), vec![0, 6]);
        assert_eq!(super::cuts("", 2).unwrap(), vec![0, 0]);
        let deep = format!("a = {}1{}", "[".repeat(3000), "]".repeat(3000));
        assert_eq!(super::cuts(&deep, 2), Err(4 + MAX_DEPTH));
    }
}
