//! Diagnostics: every problem in a file, each with `file:line:col`, the source line and a caret.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::Serialize;

/// One loaded source file, kept so that diagnostics can show the offending line.
///
/// For the JSON form, `text` is the HCL that the JSON was translated to and `display` is the
/// original JSON; `offset_map` maps translated offsets back to JSON offsets.
///
/// A large file is parsed in parts, on several threads ([`crate::parse`]); a part is a
/// `SourceFile` whose `text` is its slice of the whole and whose spans are shown at their
/// place in the whole file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name shown in diagnostics (the path as given).
    pub name: String,
    /// The text that was parsed.
    pub text: String,
    display: Option<String>,
    offset_map: Vec<(usize, usize)>,
    line_starts: Vec<usize>,
    /// For a part: the whole file and where the part starts in it.
    within: Option<(Source, usize)>,
}

impl SourceFile {
    /// Wraps native HCL text.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let line_starts = line_starts(&text);
        Self {
            name: name.into(),
            text,
            display: None,
            offset_map: Vec::new(),
            line_starts,
            within: None,
        }
    }

    /// The part of `whole` at `range` (a native HCL file), with spans relative to its start.
    pub(crate) fn part(whole: &Source, range: Range<usize>) -> Self {
        Self {
            name: whole.name.clone(),
            text: whole.text[range.clone()].to_owned(),
            display: None,
            offset_map: Vec::new(),
            line_starts: Vec::new(),
            within: Some((whole.clone(), range.start)),
        }
    }

    /// Whether this is native HCL as the user wrote it: not translated from JSON, not a part.
    pub(crate) fn is_native(&self) -> bool {
        self.display.is_none() && self.within.is_none()
    }

    /// A span of this file (a part's) as a span of the whole file.
    pub(crate) fn absolute(&self, span: Range<usize>) -> Range<usize> {
        match &self.within {
            Some((_, base)) => span.start + base..span.end + base,
            None => span,
        }
    }

    /// The file a span is shown in, and the span in it.
    fn whole(&self, span: Range<usize>) -> (&SourceFile, Range<usize>) {
        match &self.within {
            Some((whole, _)) => (whole, self.absolute(span)),
            None => (self, span),
        }
    }

    /// Wraps HCL translated from JSON: positions map back into `original` through `offset_map`
    /// (pairs of translated offset, original offset, sorted by the first).
    pub(crate) fn translated(
        name: impl Into<String>,
        text: String,
        original: String,
        offset_map: Vec<(usize, usize)>,
    ) -> Self {
        let line_starts = line_starts(&original);
        Self {
            name: name.into(),
            text,
            display: Some(original),
            offset_map,
            line_starts,
            within: None,
        }
    }

    /// The file as the user wrote it (the JSON for `*.hcl.json`), e.g. to send with a job.
    pub fn original(&self) -> &str {
        match &self.within {
            Some((whole, _)) => whole.original(),
            None => self.shown(),
        }
    }

    fn shown(&self) -> &str {
        self.display.as_deref().unwrap_or(&self.text)
    }

    /// Maps a span in `text` to a span in what the user sees.
    fn shown_span(&self, span: Range<usize>) -> Range<usize> {
        if self.display.is_none() {
            return span;
        }
        let idx = self.offset_map.partition_point(|(t, _)| *t <= span.start);
        let start = if idx == 0 {
            0
        } else {
            self.offset_map[idx - 1].1
        };
        // A translated span has no exact counterpart: point at the JSON key it came from.
        let shown = self.shown();
        let end = shown[start..]
            .find(['\n', ','])
            .map_or(shown.len(), |n| start + n)
            .max(start + 1)
            .min(shown.len());
        start..end
    }

    /// The 1-based line and column (in characters) of a byte offset in `text`.
    pub fn location(&self, span: Range<usize>) -> Location {
        if let Some((whole, _)) = &self.within {
            return whole.location(self.absolute(span));
        }
        let span = self.shown_span(span);
        let (line, column) = self.line_col(span.start);
        Location {
            file: self.name.clone(),
            line,
            column,
        }
    }

    fn line_col(&self, offset: usize) -> (usize, usize) {
        let shown = self.shown();
        let offset = offset.min(shown.len());
        let line_idx = self
            .line_starts
            .partition_point(|s| *s <= offset)
            .saturating_sub(1);
        let start = self.line_starts[line_idx];
        let column = shown
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        (line_idx + 1, column)
    }

    fn line_text(&self, line: usize) -> &str {
        let shown = self.shown();
        let start = self.line_starts[line - 1];
        let end = self.line_starts.get(line).map_or(shown.len(), |e| *e);
        shown
            .get(start..end)
            .unwrap_or("")
            .trim_end_matches(['\n', '\r'])
    }
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// A position in a file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Location {
    /// File name as shown to the user.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Loading fails.
    Error,
    /// Shown, loading goes on.
    Warning,
}

/// One problem, located in a file when possible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// One sentence saying what is wrong.
    pub message: String,
    /// Where, when known.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Number of characters the caret underlines (at least 1).
    #[serde(skip)]
    pub width: usize,
    /// The source line, for rendering.
    #[serde(skip)]
    pub source_line: Option<String>,
    /// A hint such as "did you mean `deploy`?".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error with no location (e.g. a missing file).
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            message: message.into(),
            location: None,
            width: 1,
            source_line: None,
            help: None,
        }
    }

    /// An error at a span of `file`.
    pub fn at(file: &SourceFile, span: Range<usize>, message: impl Into<String>) -> Self {
        let (file, span) = file.whole(span);
        let shown = file.shown_span(span.clone());
        let (line, column) = file.line_col(shown.start);
        let line_text = file.line_text(line);
        let (end_line, end_col) = file.line_col(shown.end.max(shown.start));
        let width = if end_line == line {
            end_col.saturating_sub(column).max(1)
        } else {
            line_text.chars().count().saturating_sub(column - 1).max(1)
        };
        Self {
            severity: Severity::Error,
            message: message.into(),
            location: Some(Location {
                file: file.name.clone(),
                line,
                column,
            }),
            width,
            source_line: Some(line_text.to_owned()),
            help: None,
        }
    }

    /// Adds a hint.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Turns the diagnostic into a warning.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(f, "{sev}: {}", self.message)?;
        if let Some(loc) = &self.location {
            let num = loc.line.to_string();
            let pad = " ".repeat(num.len());
            writeln!(f, "{pad}--> {loc}")?;
            if let Some(src) = &self.source_line {
                writeln!(f, "{pad} |")?;
                writeln!(f, "{num} | {src}")?;
                // Keep tabs so the caret lines up under the same characters.
                let lead: String = src
                    .chars()
                    .take(loc.column - 1)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                writeln!(f, "{pad} | {lead}{}", "^".repeat(self.width.max(1)))?;
            }
        }
        if let Some(help) = &self.help {
            // Line the `=` up with the gutter's `|`.
            let pad = self
                .location
                .as_ref()
                .map_or(1, |l| l.line.to_string().len());
            writeln!(f, "{} = help: {help}", " ".repeat(pad))?;
        }
        Ok(())
    }
}

/// Every problem found in a file, in source order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// No problems yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one.
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    /// Adds all of another set.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// Number of diagnostics (errors and warnings).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// True when at least one is an error.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// The diagnostics, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    /// Machine-readable form for `wayline validate -json`:
    /// `{"valid": bool, "error_count": n, "diagnostics": [{severity, message, file, line, column, help}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let errors = self
            .items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        serde_json::json!({
            "valid": errors == 0,
            "error_count": errors,
            "diagnostics": self.items,
        })
    }

    /// Sorts by file position so that output reads top to bottom.
    pub(crate) fn sort(&mut self) {
        self.items.sort_by(|a, b| {
            // Located problems first, in file order; the others (flags, environment) keep the
            // order they were found in (the sort is stable).
            let key = |d: &Diagnostic| {
                d.location.as_ref().map_or((1, String::new(), 0, 0), |l| {
                    (0, l.file.clone(), l.line, l.column)
                })
            };
            key(a).cmp(&key(b))
        });
        self.items.dedup();
    }

    /// `Ok(v)` when there is no error, else these diagnostics.
    pub(crate) fn into_result<T>(mut self, v: T) -> Result<T, Diagnostics> {
        if self.has_errors() {
            self.sort();
            Err(self)
        } else {
            Ok(v)
        }
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Self { items: vec![d] }
    }
}

impl FromIterator<Diagnostic> for Diagnostics {
    fn from_iter<I: IntoIterator<Item = Diagnostic>>(iter: I) -> Self {
        Self {
            items: iter.into_iter().collect(),
        }
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest candidate to `name`, if any is close enough to be a plausible typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    // Close by edit distance (typos, transpositions) or by shared prefix (Jaro-Winkler).
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let dist = strsim::damerau_levenshtein(name, c);
        let near = dist <= (name.chars().count() / 4).max(1);
        let jw = strsim::jaro_winkler(name, c);
        if !(near || jw >= 0.85) {
            continue;
        }
        let score = jw - dist as f64;
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}

/// A shared handle on a source file (cheap to clone into every expression).
pub type Source = Arc<SourceFile>;
