//! Text into syntax trees: a whole file, or a large one in parts parsed on several threads
//! (issue 10: an 8 MB file of 54,544 apps spends half its load in the parser).

use std::ops::Range;
use std::sync::Arc;

use hcl::edit::structure::Body;

use crate::diag::{Diagnostic, Diagnostics, Source, SourceFile};
use crate::{limits, recover};

/// Files from this size up are parsed in parts (on every core); below it a thread costs more
/// than it saves.
const SPLIT_FROM: usize = 1 << 20;

/// About how large a part of a large file is: small enough that a part's syntax tree (60 times
/// its text) stays in memory the allocator already has, large enough that cutting is cheap.
const PART_BYTES: usize = 256 << 10;

/// A file, or a part of one, and its syntax tree (spans relative to the part's start).
pub(crate) struct Part {
    pub(crate) file: Source,
    pub(crate) body: Body,
}

/// Parses a file and folds each part into an accumulator with `each`, on the thread that
/// parsed it; one accumulator per thread comes back, in file order.
///
/// A large file is cut between top-level structures ([`limits::cuts`]) into parts of about
/// [`PART_BYTES`], each core's thread taking a run of them one after the other: what `each`
/// frees of a part (its syntax tree), the next part's parse reuses, so the whole file's tree
/// never exists at once (issue 10: page faults were a third of a large load). The parts
/// together hold exactly the file's structures, in order; a file with an error is parsed
/// whole again, so the errors are the same either way.
pub(crate) fn parse_each<A: Default + Send>(
    file: &Source,
    each: impl Fn(&mut A, Part) + Sync,
) -> Result<Vec<A>, Diagnostics> {
    if file.is_native() && file.text.len() >= SPLIT_FROM {
        let threads = crate::parallel::threads_for(file.text.len(), SPLIT_FROM);
        let parts = (file.text.len() / PART_BYTES).max(threads);
        let cuts = limits::cuts(&file.text, parts).map_err(|at| too_deep(file, at))?;
        let ranges: Vec<Range<usize>> = cuts.windows(2).map(|w| w[0]..w[1]).collect();
        if ranges.len() > 1 {
            let runs: Vec<&[Range<usize>]> =
                ranges.chunks(ranges.len().div_ceil(threads)).collect();
            let done = crate::parallel::map(&runs, |run| {
                let mut acc = A::default();
                for r in *run {
                    let file = Arc::new(SourceFile::part(file, r.clone()));
                    let body = hcl::edit::parser::parse_body(&file.text).ok()?;
                    each(&mut acc, Part { file, body });
                }
                Some(acc)
            });
            if let Some(done) = done.into_iter().collect() {
                return Ok(done);
            }
        }
    }
    let body = parse_body(file)?;
    let mut acc = A::default();
    each(
        &mut acc,
        Part {
            file: file.clone(),
            body,
        },
    );
    Ok(vec![acc])
}

/// Freeing the syntax tree of a file with thousands of blocks takes a good part of a load
/// (issue 10: 0.2 s of an 8 MB file); nothing waits for it, so a large one is freed on a
/// thread of its own.
pub(crate) fn drop_in_background(parts: Vec<Part>) {
    const LARGE: usize = 512;
    if parts.iter().map(|p| p.body.len()).sum::<usize>() >= LARGE {
        // With no thread to be had, the closure (and the trees) is dropped here instead.
        let _ = std::thread::Builder::new()
            .name("wayline-config-drop".into())
            .spawn(move || drop(parts));
    }
}

fn too_deep(file: &SourceFile, at: usize) -> Diagnostics {
    Diagnostic::at(file, at..at + 1, limits::too_deep_message()).into()
}

/// Parses a file's body, refusing nesting past [`limits::MAX_DEPTH`] before the (recursive)
/// parser sees it. A file with syntax errors yields every one of them (see [`recover`]).
pub(crate) fn parse_body(file: &SourceFile) -> Result<Body, Diagnostics> {
    if let Some(at) = limits::too_deep(&file.text, false) {
        return Err(too_deep(file, at));
    }
    match hcl::edit::parser::parse_body(&file.text) {
        Ok(body) => Ok(body),
        Err(first) => {
            let errors = recover::each_error(
                &file.text,
                first,
                |text| hcl::edit::parser::parse_body(text).map(drop),
                |e| e.location().offset(),
            );
            Err(errors.iter().map(|e| parse_error(file, e)).collect())
        }
    }
}

/// Converts an hcl-edit syntax error to a diagnostic at its position.
fn parse_error(file: &SourceFile, e: &hcl::edit::parser::Error) -> Diagnostic {
    let loc = e.location();
    let offset = loc.offset().min(file.text.len());
    if e.message().contains("redefined attribute") {
        // hcl-edit rejects a repeated attribute while parsing; say it the way schema errors do.
        let key: String = file.text[offset..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        if !key.is_empty() {
            let msg = format!("attribute `{key}` is set twice in the same block");
            return Diagnostic::at(file, offset..offset + key.len(), msg);
        }
    }
    let msg = if e.message().is_empty() {
        "invalid syntax"
    } else {
        e.message()
    };
    Diagnostic::at(file, offset..offset + 1, format!("syntax error: {msg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_file_is_parsed_in_parts_that_hold_all_of_it() {
        let app = "app \"a\" {\n  build {\n    use \"docker\" {}\n  }\n}\n";
        let text = format!(
            "project = \"p\"\n{}",
            app.repeat((SPLIT_FROM / app.len()) + 10)
        );
        let file: Source = Arc::new(SourceFile::new("big.hcl", text.clone()));
        let runs: Vec<Vec<Part>> = parse_each(&file, |acc: &mut Vec<Part>, p| acc.push(p)).unwrap();
        let threads = crate::parallel::threads_for(text.len(), SPLIT_FROM);
        assert_eq!(runs.len(), threads, "a run of parts per core");
        let parts: Vec<Part> = runs.into_iter().flatten().collect();
        assert_eq!(parts.len(), (text.len() / PART_BYTES).max(threads));
        let whole = hcl::edit::parser::parse_body(&text).unwrap();
        assert_eq!(
            parts.iter().map(|p| p.body.len()).sum::<usize>(),
            whole.len()
        );
        // Each part's spans are shown at their place in the whole file.
        let mut line = 1;
        for p in &parts {
            let first = p.body.iter().next().unwrap();
            let at = p.file.location(hcl::edit::Span::span(first).unwrap());
            assert_eq!((at.line, at.column), (line, 1));
            line += p.file.text.lines().count();
        }
        // A small file, and one with an error, are parsed whole.
        let small: Source = Arc::new(SourceFile::new("s.hcl", app));
        let count = |acc: &mut usize, p: Part| *acc += p.body.len();
        assert_eq!(parse_each(&small, count).unwrap(), [1]);
        let broken: Source = Arc::new(SourceFile::new("b.hcl", format!("{text}app {{\n")));
        let err = parse_each(&broken, count).unwrap_err();
        assert!(err.to_string().contains("b.hcl:"), "{err}");
    }
}
