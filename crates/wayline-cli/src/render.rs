//! The CLI's rendering layer: the only place that prints. Plain text that reads without
//! colour; colour only on a terminal, without `NO_COLOR` and without `-plain`.
//!
//! Values that come from users or servers (names, labels, messages) go through [`safe`] or
//! [`cell`] before they reach a terminal, so an escape sequence in a project name cannot move
//! the cursor or recolour the screen, and a megabyte label cannot break a table. A closed
//! stdout (`wayline … | head`) ends the program quietly, as it does for other Unix tools.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

use wayline_proto::v1::TerminalEvent;
use wayline_proto::v1::terminal_event::Event;

/// The widest a table cell gets, in characters; longer values end in `…`.
pub(crate) const MAX_CELL: usize = 120;
/// The longest value a `Name: value` block shows, in characters.
pub(crate) const MAX_FIELD: usize = 4096;

/// How output looks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub(crate) color: bool,
}

impl Style {
    pub(crate) fn detect(plain: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            color: !plain && !no_color && std::io::stdout().is_terminal(),
        }
    }

    fn paint(self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    pub(crate) fn bold(self, s: &str) -> String {
        self.paint("1", s)
    }
    pub(crate) fn green(self, s: &str) -> String {
        self.paint("32", s)
    }
    pub(crate) fn red(self, s: &str) -> String {
        self.paint("31", s)
    }
    pub(crate) fn yellow(self, s: &str) -> String {
        self.paint("33", s)
    }
    pub(crate) fn dim(self, s: &str) -> String {
        self.paint("2", s)
    }
}

/// Prints a line to stdout, like `println!`, through [`out`].
macro_rules! say {
    () => { $crate::render::out("\n") };
    ($($arg:tt)*) => { $crate::render::out(&format!("{}\n", format_args!($($arg)*))) };
}
/// Prints a line to stderr, like `eprintln!`, through [`err`].
macro_rules! note {
    () => { $crate::render::err("\n") };
    ($($arg:tt)*) => { $crate::render::err(&format!("{}\n", format_args!($($arg)*))) };
}
pub(crate) use {note, say};

/// Writes text to stdout. When the reader has gone (a broken pipe), the program ends quietly
/// with status 0: there is nobody left to tell.
pub(crate) fn out(text: &str) {
    out_bytes(text.as_bytes());
}

/// Writes bytes to stdout as they are (an exec session's output), see [`out`].
pub(crate) fn out_bytes(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        quit_if_gone(&e);
    }
}

/// Writes text to stderr (progress, warnings and questions), see [`out`].
pub(crate) fn err(text: &str) {
    err_bytes(text.as_bytes());
}

/// Writes bytes to stderr as they are.
pub(crate) fn err_bytes(bytes: &[u8]) {
    let mut stderr = std::io::stderr().lock();
    if let Err(e) = stderr.write_all(bytes).and_then(|()| stderr.flush()) {
        quit_if_gone(&e);
    }
}

/// Asks a yes/no question on the terminal; only `yes` agrees. Without a terminal on stdin
/// nobody can answer, so the caller must have been told with `flag` (e.g. `-auto-approve`).
pub(crate) fn confirm(question: &str, flag: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "stdin is not a terminal, so wayline cannot ask \"{question}\"; pass `{flag}` to go ahead without asking"
        );
    }
    err(&format!("{question} Type `yes`: "));
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

fn quit_if_gone(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
}

/// True for characters that must not reach a terminal raw: C0/C1 controls (ESC starts every
/// escape sequence) and the Unicode bidirectional overrides that reorder what a line shows.
fn is_unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A value made safe to print: control characters are shown escaped (`\u{1b}`, `\n`).
pub(crate) fn safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut text = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe_char(c) {
            text.extend(c.escape_debug());
        } else {
            text.push(c);
        }
    }
    Cow::Owned(text)
}

/// Multi-line text made safe to print: like [`safe`], but newlines and tabs stay.
pub(crate) fn safe_text(s: &str) -> Cow<'_, str> {
    if !s
        .chars()
        .any(|c| is_unsafe_char(c) && c != '\n' && c != '\t')
    {
        return Cow::Borrowed(s);
    }
    let lines: Vec<String> = s
        .split('\n')
        .map(|l| {
            l.split('\t')
                .map(|part| safe(part).into_owned())
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect();
    Cow::Owned(lines.join("\n"))
}

/// A value cut to at most `max` characters (ending in `…` when cut) and made [`safe`].
pub(crate) fn cut(s: &str, max: usize) -> String {
    let safe = safe(s);
    if safe.chars().count() <= max {
        return safe.into_owned();
    }
    let mut text: String = safe.chars().take(max.saturating_sub(1)).collect();
    text.push('…');
    text
}

/// A table cell: [`cut`] to [`MAX_CELL`].
pub(crate) fn cell(s: &str) -> String {
    cut(s, MAX_CELL)
}

/// The shortest length, at least 12 (a ULID's 10 timestamp characters and 2 random ones, so
/// records of the same millisecond still differ), at which every id in `ids` is told apart.
pub(crate) fn short_id_len(ids: &[&str]) -> usize {
    let mut sorted: Vec<&str> = ids.to_vec();
    sorted.sort_unstable();
    let common = |a: &str, b: &str| a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    sorted
        .windows(2)
        .map(|w| common(w[0], w[1]) + 1)
        .fold(12, usize::max)
}

/// `id` cut to `len` characters (all of it with `-long-ids`).
pub(crate) fn short_id(id: &str, len: usize) -> String {
    id.chars().take(len).collect()
}

/// `text` followed by spaces up to `width` characters (no formatter width: those are limited
/// to 65,535 and panic beyond).
fn pad(text: &str, width: usize) -> String {
    let n = text.chars().count();
    let mut s = String::with_capacity(text.len() + width.saturating_sub(n));
    s.push_str(text);
    s.extend(std::iter::repeat_n(' ', width.saturating_sub(n)));
    s
}

/// Prints `Name:  value` lines with the values aligned; values are made safe and cut.
pub(crate) fn fields(rows: &[(&str, String)]) {
    out(&format_fields("", rows));
}

/// The text of [`fields`], each line starting with `indent`.
pub(crate) fn format_fields(indent: &str, rows: &[(&str, String)]) -> String {
    let width = rows
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0)
        + 3;
    let mut text = String::new();
    for (name, value) in rows {
        text.push_str(indent);
        text.push_str(&pad(&format!("{}:", safe(name)), width));
        text.push_str(&cut(value, MAX_FIELD));
        text.push('\n');
    }
    text
}

/// Prints a table with aligned columns; `headers` in upper case like other deploy tools.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) {
    out(&format_table(headers, rows));
}

/// The text of [`table`]; every cell is made safe and cut to [`MAX_CELL`].
pub(crate) fn format_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cell(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut text = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut parts = Vec::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                parts.push((*c).to_owned());
            } else {
                parts.push(pad(c, widths.get(i).copied().unwrap_or(0)));
            }
        }
        text.push_str(parts.join("  ").trim_end());
        text.push('\n');
    };
    line(headers.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    text
}

/// Prints a JSON value (JSON escapes control characters itself).
pub(crate) fn json(value: &serde_json::Value) {
    out(&format!(
        "{}\n",
        serde_json::to_string_pretty(value).unwrap_or_default()
    ));
}

/// Prints a JSON value on one line (JSON lines: one event or record per line).
pub(crate) fn json_line(value: &serde_json::Value) {
    out(&format!("{value}\n"));
}

/// Frames of the spinner on the running step's line.
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// Renders terminal events of a job as they arrive.
pub(crate) struct EventRenderer {
    style: Style,
    /// On a terminal, a step's line is rewritten in place when it ends (`… msg` → `✓ msg`),
    /// and while it runs it shows a spinner and the seconds it has taken.
    rewrite: bool,
    /// The step whose line was printed last, if nothing came after it.
    open_step: Option<i32>,
    /// That step's message and when it started.
    open_msg: String,
    open_since: std::time::Instant,
    frame: usize,
}

impl EventRenderer {
    pub(crate) fn new(style: Style) -> Self {
        Self {
            style,
            rewrite: style.color,
            open_step: None,
            open_msg: String::new(),
            open_since: std::time::Instant::now(),
            frame: 0,
        }
    }

    pub(crate) fn render(&mut self, ev: &TerminalEvent) {
        let text = self.format(ev);
        if !text.is_empty() {
            out(&text);
        }
    }

    /// True while a step runs on a terminal: [`Self::tick`] then animates its line.
    pub(crate) fn animates(&self) -> bool {
        self.rewrite && self.open_step.is_some()
    }

    /// Redraws the running step's line with the next spinner frame and its elapsed seconds.
    pub(crate) fn tick(&mut self) {
        if let Some(text) = self.format_tick() {
            out(&text);
        }
    }

    fn format_tick(&mut self) -> Option<String> {
        if !self.animates() {
            return None;
        }
        self.frame = (self.frame + 1) % SPINNER.len();
        let secs = self.open_since.elapsed().as_secs();
        Some(format!(
            "\x1b[1A\r\x1b[2K{} {} {}\n",
            self.style.dim(&SPINNER[self.frame].to_string()),
            self.open_msg,
            self.style.dim(&format!("({secs}s)"))
        ))
    }

    /// The text for one event (with the escape codes that rewrite a step line on a terminal).
    pub(crate) fn format(&mut self, ev: &TerminalEvent) -> String {
        let s = self.style;
        let Some(event) = &ev.event else {
            return String::new();
        };
        let mut text = String::new();
        let mut line = |t: String| {
            text.push_str(&t);
            text.push('\n');
        };
        let mut opened = None;
        match event {
            Event::Line(l) => {
                let msg = safe_text(&l.msg);
                match l.style.as_str() {
                    "header" => line(format!("\n{}", s.bold(&format!("» {msg}")))),
                    "error" | "error-bold" => line(s.red(&format!("! {msg}"))),
                    "warning" | "warning-bold" => line(s.yellow(&format!("! {msg}"))),
                    "success" | "success-bold" => line(s.green(&msg)),
                    "info" => line(msg.into_owned()),
                    _ => line(format!("  {msg}")),
                }
            }
            Event::NamedValues(nv) => {
                let rows: Vec<(&str, String)> = nv
                    .values
                    .iter()
                    .map(|v| (v.name.as_str(), v.value.clone()))
                    .collect();
                text.push_str(&format_fields("  ", &rows));
            }
            Event::Status(st) => {
                if !st.msg.is_empty() {
                    line(format!("{} {}", status_mark(s, &st.status), safe(&st.msg)));
                }
            }
            Event::Step(step) => {
                let msg = safe(&step.msg);
                if step.close {
                    if !msg.is_empty() {
                        let done = format!("{} {msg}", status_mark(s, &step.status));
                        if self.rewrite && self.open_step == Some(step.id) {
                            // Up one line, clear it, write the final state over the `…` line.
                            line(format!("\x1b[1A\r\x1b[2K{done}"));
                        } else {
                            line(done);
                        }
                    }
                } else if !msg.is_empty() {
                    line(format!("{} {msg}", s.dim("…")));
                    opened = Some(step.id);
                    self.open_msg = msg.into_owned();
                    self.open_since = std::time::Instant::now();
                }
                if !step.output.is_empty() {
                    opened = None;
                    for l in String::from_utf8_lossy(&step.output).lines() {
                        line(format!("    {}", safe_text(l)));
                    }
                }
            }
            Event::StepGroup(_) => {}
            Event::Table(t) => {
                let headers: Vec<&str> = t.headers.iter().map(String::as_str).collect();
                let rows: Vec<Vec<String>> = t.rows.iter().map(|r| r.cells.clone()).collect();
                text.push_str(&format_table(&headers, &rows));
            }
        }
        if !text.is_empty() {
            self.open_step = opened;
        }
        text
    }
}

/// One terminal event as a JSON object, for `-json` (one per line).
pub(crate) fn event_json(ev: &TerminalEvent) -> Option<serde_json::Value> {
    let value = match ev.event.as_ref()? {
        Event::Line(l) => serde_json::json!({"event": "line", "style": l.style, "msg": l.msg}),
        Event::NamedValues(nv) => serde_json::json!({
            "event": "values",
            "values": nv.values.iter().map(|v| serde_json::json!({"name": v.name, "value": v.value})).collect::<Vec<_>>(),
        }),
        Event::Status(st) => {
            serde_json::json!({"event": "status", "status": st.status, "msg": st.msg, "step": st.step})
        }
        Event::Step(step) => serde_json::json!({
            "event": "step", "id": step.id, "close": step.close, "status": step.status,
            "msg": step.msg, "output": String::from_utf8_lossy(&step.output),
        }),
        Event::StepGroup(g) => serde_json::json!({"event": "step_group", "close": g.close}),
        Event::Table(t) => serde_json::json!({
            "event": "table", "headers": t.headers,
            "rows": t.rows.iter().map(|r| r.cells.clone()).collect::<Vec<_>>(),
        }),
    };
    Some(value)
}

fn status_mark(s: Style, status: &str) -> String {
    match status {
        "ok" | "success" => s.green("✓"),
        "error" => s.red("✗"),
        "warn" | "warning" | "timeout" | "abort" => s.yellow("!"),
        _ => s.dim("…"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: i32, close: bool, msg: &str) -> TerminalEvent {
        let step = wayline_proto::v1::terminal_event::Step {
            id,
            close,
            msg: msg.into(),
            status: if close { "ok".into() } else { String::new() },
            output: Vec::new(),
        };
        TerminalEvent {
            timestamp: None,
            event: Some(Event::Step(step)),
        }
    }

    #[test]
    fn steps_are_rewritten_in_place_only_on_a_terminal() {
        let mut plain = EventRenderer::new(Style { color: false });
        assert_eq!(plain.format(&step(1, false, "Building")), "… Building\n");
        assert_eq!(plain.format(&step(1, true, "Built")), "✓ Built\n");

        let mut tty = EventRenderer::new(Style { color: true });
        tty.format(&step(1, false, "Building"));
        assert!(
            tty.format(&step(1, true, "Built"))
                .starts_with("\x1b[1A\r\x1b[2K")
        );
        // Something printed in between: the final line is appended, not rewritten.
        tty.format(&step(2, false, "Pushing"));
        tty.format(&step(3, false, "Tagging"));
        assert!(!tty.format(&step(2, true, "Pushed")).contains("\x1b[1A"));
    }

    #[test]
    fn huge_cells_are_cut_instead_of_panicking() {
        // A 65,536-character label and a 1 MiB name once overflowed the formatter's width.
        let label = format!("team={}", "x".repeat(70_000));
        let name = "p".repeat(1 << 20);
        let text = format_table(&["NAME", "LABELS"], &[vec![name, label]]);
        let line = text.lines().nth(1).unwrap();
        assert_eq!(line.chars().count(), MAX_CELL * 2 + 2);
        assert!(line.ends_with('…'), "{line}");
        let fields = format_fields("", &[("Labels", "y".repeat(100_000))]);
        assert_eq!(fields.chars().count(), "Labels:  ".len() + MAX_FIELD + 1);
    }

    #[test]
    fn control_characters_are_escaped() {
        let evil = "web\x1b[2J\x1b]0;pwned\x07\u{202e}txt.exe";
        let text = format_table(&["PROJECT"], &[vec![evil.to_owned()]]);
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
        assert_eq!(
            text.lines().nth(1).unwrap(),
            r"web\u{1b}[2J\u{1b}]0;pwned\u{7}\u{202e}txt.exe"
        );
        assert_eq!(safe("a\nb"), r"a\nb");
        assert_eq!(safe_text("a\n\tb\x1b"), "a\n\tb\\u{1b}");
        assert!(matches!(safe("plain"), Cow::Borrowed(_)));
        let mut r = EventRenderer::new(Style { color: false });
        assert_eq!(
            r.format(&step(1, false, "Build \x1b[31mred")),
            "… Build \\u{1b}[31mred\n"
        );
    }

    #[test]
    fn the_running_step_spins_with_its_seconds_only_on_a_terminal() {
        let mut plain = EventRenderer::new(Style { color: false });
        plain.format(&step(1, false, "Building"));
        assert!(!plain.animates());
        assert_eq!(plain.format_tick(), None);

        let mut tty = EventRenderer::new(Style { color: true });
        tty.format(&step(1, false, "Building"));
        assert!(tty.animates());
        let frame = tty.format_tick().unwrap();
        assert!(frame.starts_with("\x1b[1A\r\x1b[2K"), "{frame:?}");
        assert!(
            frame.contains("Building") && frame.contains("(0s)"),
            "{frame:?}"
        );
        // The step ends: its line is rewritten once more, and the spinner stops.
        let done = tty.format(&step(1, true, "Built"));
        assert!(
            done.starts_with("\x1b[1A\r\x1b[2K") && done.contains("Built"),
            "{done:?}"
        );
        assert!(!tty.animates());
    }

    #[test]
    fn events_become_json_objects() {
        let v = event_json(&step(4, true, "Built")).unwrap();
        assert_eq!(v["event"], "step");
        assert_eq!(v["id"], 4);
        assert_eq!(v["msg"], "Built");
        assert_eq!(v["status"], "ok");
    }

    #[test]
    fn short_ids_are_long_enough_to_tell_apart() {
        // Two jobs of the same millisecond share their first 10 (timestamp) characters.
        let a = "01M8SDWNN3ABCDEFGHJKMNPQRS";
        let b = "01M8SDWNN3ABCXYZGHJKMNPQRS";
        assert_eq!(short_id_len(&[a]), 12);
        assert_eq!(short_id_len(&[a, b, "01M8SDYV8E0000000000000000"]), 14);
        assert_eq!(short_id(a, 14), "01M8SDWNN3ABCD");
    }

    #[test]
    fn tables_align() {
        let text = format_table(
            &["ID", "STATE"],
            &[
                vec!["v1".into(), "created".into()],
                vec!["v10".into(), "x".into()],
            ],
        );
        assert_eq!(text, "ID   STATE\nv1   created\nv10  x\n");
    }
}
