//! Every syntax error of a file, not only the first: hcl-edit stops at the first error, so the
//! statement holding it (an attribute, or a whole block when its header is broken) is blanked
//! out and the text parsed again, until it parses or [`MAX_SYNTAX_ERRORS`] were found.
//!
//! Blanking replaces bytes with spaces and keeps newlines, so every later error keeps its
//! byte offset, line and column in the original text.

use std::ops::Range;

/// Most syntax errors reported for one file (the rest are usually follow-ups of these).
pub(crate) const MAX_SYNTAX_ERRORS: usize = 20;

/// Most bytes re-parsed in total while looking for further errors: a huge broken file gets its
/// first errors, not minutes of re-parsing.
const MAX_REPARSE_BYTES: usize = 64 << 20;

/// Every error `parse` finds in `text`, given the `first` one it found: after each, the
/// statement at the error's offset is blanked and the text parsed again.
pub(crate) fn each_error<E>(
    text: &str,
    first: E,
    mut parse: impl FnMut(&str) -> Result<(), E>,
    offset_of: impl Fn(&E) -> usize,
) -> Vec<E> {
    let mut current = text.to_owned();
    let mut reparsed = text.len();
    let mut last_at = offset_of(&first).min(current.len());
    let mut errors = vec![first];
    while errors.len() < MAX_SYNTAX_ERRORS && reparsed <= MAX_REPARSE_BYTES {
        let span = statement_at(&current, last_at);
        if !blank(&mut current, span) {
            break;
        }
        let Err(e) = parse(&current) else { break };
        reparsed += current.len();
        let at = offset_of(&e).min(current.len());
        if at == last_at {
            // The same place again: what is left there is not a statement that can go.
            break;
        }
        last_at = at;
        errors.push(e);
    }
    errors
}

/// Replaces the bytes of `span` except newlines with spaces; false when there was nothing
/// but whitespace there (no progress can be made).
fn blank(text: &mut String, span: Range<usize>) -> bool {
    let mut bytes = std::mem::take(text).into_bytes();
    let mut changed = false;
    for b in &mut bytes[span] {
        if !b.is_ascii_whitespace() {
            *b = b' ';
            changed = true;
        }
    }
    // Only ASCII bytes were written, and whole UTF-8 sequences are inside the span (it runs
    // from a line start to a line start or the end), so the text stays UTF-8.
    *text = String::from_utf8(bytes).unwrap_or_default();
    changed
}

/// The statement that holds byte `at`: from the line start where it begins to the line start
/// where the next statement at the same or an outer level begins.
fn statement_at(text: &str, at: usize) -> Range<usize> {
    let marks = statement_starts(text);
    let i = marks.partition_point(|m| m.0 <= at).saturating_sub(1);
    let (start, depth) = marks[i];
    let end = marks[i + 1..]
        .iter()
        .find(|m| m.1 <= depth)
        .map_or(text.len(), |m| m.0);
    start..end
}

#[derive(Clone, PartialEq)]
enum Open {
    /// `{` of a block or object: its lines are statements of their own.
    Brace,
    /// `(` or `[`: its lines continue the expression.
    Group,
    /// `"…"`.
    Str,
    /// `${…}` / `%{…}` in a string or heredoc.
    Interp,
    /// A heredoc's body, up to its terminator line.
    Heredoc(String),
}

/// Line starts where a statement may begin (outside strings, heredocs, comments, `(` and
/// `[`), each with the number of `{` open there; always starts with `(0, 0)`.
fn statement_starts(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut marks = vec![(0, 0)];
    let mut stack: Vec<Open> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match stack.last() {
            Some(Open::Str) => match c {
                b'\\' => i += 1,
                b'"' => {
                    stack.pop();
                }
                // A string cannot span lines: end it here, so a missing quote spoils one line.
                b'\n' => {
                    stack.pop();
                    continue;
                }
                b'$' | b'%' if b.get(i + 1) == Some(&b'{') => i = open_interp(b, i, &mut stack),
                _ => {}
            },
            Some(Open::Heredoc(tag)) => match c {
                b'$' | b'%' if b.get(i + 1) == Some(&b'{') => i = open_interp(b, i, &mut stack),
                b'\n' => {
                    let line_end = line_end(b, i + 1);
                    if text[i + 1..line_end].trim() == tag.as_str() {
                        stack.pop();
                        i = line_end;
                        continue;
                    }
                }
                _ => {}
            },
            _ => i = code_byte(text, i, &mut stack, &mut marks),
        }
        i += 1;
    }
    marks
}

/// One byte of code (outside strings and heredoc bodies); returns the index of the last byte
/// it consumed.
fn code_byte(
    text: &str,
    i: usize,
    stack: &mut Vec<Open>,
    marks: &mut Vec<(usize, usize)>,
) -> usize {
    let b = text.as_bytes();
    match b[i] {
        b'#' => return line_end(b, i).saturating_sub(1).max(i),
        b'/' if b.get(i + 1) == Some(&b'/') => return line_end(b, i).saturating_sub(1).max(i),
        b'/' if b.get(i + 1) == Some(&b'*') => {
            return text[i + 2..].find("*/").map_or(b.len(), |n| i + 3 + n);
        }
        b'"' => stack.push(Open::Str),
        b'<' if b.get(i + 1) == Some(&b'<') => {
            let start = i + 2 + usize::from(b.get(i + 2) == Some(&b'-'));
            let end = b[start..]
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                .map_or(b.len(), |n| start + n);
            if end > start {
                stack.push(Open::Heredoc(text[start..end].to_owned()));
                // Stop before the header's newline: the body starts after it.
                return line_end(b, end).saturating_sub(1).max(i);
            }
        }
        b'{' => stack.push(Open::Brace),
        b'(' | b'[' => stack.push(Open::Group),
        b'}' | b')' | b']' => {
            if matches!(stack.last(), Some(Open::Brace | Open::Group | Open::Interp)) {
                stack.pop();
            }
        }
        b'\n' if stack.iter().all(|o| *o == Open::Brace) => marks.push((i + 1, stack.len())),
        _ => {}
    }
    i
}

fn open_interp(b: &[u8], i: usize, stack: &mut Vec<Open>) -> usize {
    // `$${` / `%%{` is a literal `${`.
    if i > 0 && b[i - 1] == b[i] {
        return i;
    }
    stack.push(Open::Interp);
    i + 1
}

fn line_end(b: &[u8], i: usize) -> usize {
    b[i.min(b.len())..]
        .iter()
        .position(|c| *c == b'\n')
        .map_or(b.len(), |n| i + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(text: &str, at: &str) -> String {
        let off = text.find(at).unwrap();
        text[statement_at(text, off)].to_owned()
    }

    #[test]
    fn a_broken_attribute_is_its_own_line() {
        let t = "a = 1\napp \"x\" {\n  b = = 2\n  c = 3\n}\n";
        assert_eq!(region(t, "= 2"), "  b = = 2\n");
    }

    #[test]
    fn a_broken_block_header_takes_the_whole_block() {
        let t = "a = 1\napp \"x\" y z {\n  b = 2\n  c {\n  }\n}\nd = 4\n";
        assert_eq!(
            region(t, "z {"),
            "app \"x\" y z {\n  b = 2\n  c {\n  }\n}\n"
        );
    }

    #[test]
    fn lists_strings_and_heredocs_continue_a_statement() {
        let t = "a = [\n  1,\n  = ,\n]\nb = <<EOF\n{\nEOF\nc = \"{ ${x} [\"\nd = 1\n";
        assert_eq!(region(t, "= ,"), "a = [\n  1,\n  = ,\n]\n");
        assert_eq!(region(t, "EOF\nc"), "b = <<EOF\n{\nEOF\n");
        assert_eq!(region(t, "c ="), "c = \"{ ${x} [\"\n");
    }

    #[test]
    fn an_unterminated_string_spoils_one_line() {
        let t = "a = \"abc\nb = 1\n";
        assert_eq!(region(t, "abc"), "a = \"abc\n");
    }

    #[test]
    fn stops_when_nothing_is_left_to_blank() {
        let errors = each_error("x", 5, |_| Err::<(), usize>(5), |e| *e);
        assert_eq!(
            errors.len(),
            1,
            "the same error again is not reported twice"
        );
        let many = "a = =\n".repeat(50);
        let errors = each_error(&many, 2, |t| t.find('=').map_or(Ok(()), Err), |e| *e);
        assert_eq!(errors.len(), MAX_SYNTAX_ERRORS);
    }
}
