//! Text into syntax trees: a whole file, or a large one in parts parsed on several threads
//! (issue 10: an 8 MB file of 54,544 apps spends half its load in the parser).

use std::ops::Range;
use std::sync::Arc;

use hcl::edit::structure::Body;

use crate::diag::{Diagnostic, Diagnostics, Source, SourceFile};
use crate::{limits, recover};

/// Files from this size up are parsed in parts, one per core; below it a thread costs more
/// than it saves.
const PARALLEL_FROM: usize = 1 << 20;

/// A file, or a part of one, and its syntax tree (spans relative to the part's start).
pub(crate) struct Part {
    pub(crate) file: Source,
    pub(crate) body: Body,
}

/// Parses a file and hands each part to `each` on the thread that parsed it (so what `each`
/// frees, that thread's next allocations reuse): in parts cut between top-level structures
/// ([`limits::cuts`]) when the file is large and there are cores to share the work, else
/// whole. The parts together hold exactly the whole file's structures, in order; a file with
/// an error is parsed whole again, so the errors are the same either way.
pub(crate) fn parse_each<R: Send>(
    file: &Source,
    each: impl Fn(Part) -> R + Sync,
) -> Result<Vec<R>, Diagnostics> {
    let threads = if file.is_native() {
        crate::parallel::threads_for(file.text.len(), PARALLEL_FROM)
    } else {
        1
    };
    if threads > 1 {
        let cuts = limits::cuts(&file.text, threads).map_err(|at| too_deep(file, at))?;
        if cuts.len() > 2 {
            let ranges: Vec<Range<usize>> = cuts.windows(2).map(|w| w[0]..w[1]).collect();
            let done = crate::parallel::map(&ranges, |r| {
                let file = Arc::new(SourceFile::part(file, r.clone()));
                let body = hcl::edit::parser::parse_body(&file.text).ok()?;
                Some(each(Part { file, body }))
            });
            if let Some(done) = done.into_iter().collect() {
                return Ok(done);
            }
        }
    }
    let body = parse_body(file)?;
    Ok(vec![each(Part {
        file: file.clone(),
        body,
    })])
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
            app.repeat((PARALLEL_FROM / app.len()) + 10)
        );
        let file: Source = Arc::new(SourceFile::new("big.hcl", text.clone()));
        let parts = parse_each(&file, |p| p).unwrap();
        let threads = crate::parallel::threads_for(text.len(), PARALLEL_FROM);
        assert_eq!(parts.len(), threads, "one part per core");
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
        assert_eq!(parse_each(&small, |p| p.body.len()).unwrap(), [1]);
        let broken: Source = Arc::new(SourceFile::new("b.hcl", format!("{text}app {{\n")));
        let err = parse_each(&broken, |p| p.body.len()).unwrap_err();
        assert!(err.to_string().contains("b.hcl:"), "{err}");
    }
}
