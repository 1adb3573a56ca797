//! The CLI's rendering layer: the only place that prints. Plain text that reads without
//! colour; colour only on a terminal, without `NO_COLOR` and without `-plain`.

use std::io::{IsTerminal, Write};

use wayline_proto::v1::TerminalEvent;
use wayline_proto::v1::terminal_event::Event;

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

/// Prints a table with aligned columns; `headers` in upper case like other deploy tools.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(format_table(headers, rows).as_bytes());
}

/// The text of [`table`].
pub(crate) fn format_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
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
                parts.push(format!("{c:<w$}", w = widths[i]));
            }
        }
        text.push_str(parts.join("  ").trim_end());
        text.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    text
}

/// Prints a JSON value.
pub(crate) fn json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// Renders terminal events of a job as they arrive.
pub(crate) struct EventRenderer {
    style: Style,
    /// On a terminal, a step's line is rewritten in place when it ends (`… msg` → `✓ msg`).
    rewrite: bool,
    /// The step whose line was printed last, if nothing came after it.
    open_step: Option<i32>,
}

impl EventRenderer {
    pub(crate) fn new(style: Style) -> Self {
        Self {
            style,
            rewrite: style.color,
            open_step: None,
        }
    }

    pub(crate) fn render(&mut self, ev: &TerminalEvent) {
        let text = self.format(ev);
        if !text.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
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
            Event::Line(l) => match l.style.as_str() {
                "header" => line(format!("\n{}", s.bold(&format!("» {}", l.msg)))),
                "error" | "error-bold" => line(s.red(&format!("! {}", l.msg))),
                "warning" | "warning-bold" => line(s.yellow(&format!("! {}", l.msg))),
                "success" | "success-bold" => line(s.green(&l.msg)),
                "info" => line(l.msg.clone()),
                _ => line(format!("  {}", l.msg)),
            },
            Event::NamedValues(nv) => {
                let w = nv.values.iter().map(|v| v.name.len()).max().unwrap_or(0);
                for v in &nv.values {
                    line(format!(
                        "  {:<w$}  {}",
                        format!("{}:", v.name),
                        v.value,
                        w = w + 1
                    ));
                }
            }
            Event::Status(st) => {
                if !st.msg.is_empty() {
                    line(format!("{} {}", status_mark(s, &st.status), st.msg));
                }
            }
            Event::Step(step) => {
                if step.close {
                    if !step.msg.is_empty() {
                        let done = format!("{} {}", status_mark(s, &step.status), step.msg);
                        if self.rewrite && self.open_step == Some(step.id) {
                            // Up one line, clear it, write the final state over the `…` line.
                            line(format!("\x1b[1A\r\x1b[2K{done}"));
                        } else {
                            line(done);
                        }
                    }
                } else if !step.msg.is_empty() {
                    line(format!("{} {}", s.dim("…"), step.msg));
                    opened = Some(step.id);
                }
                if !step.output.is_empty() {
                    opened = None;
                    for l in String::from_utf8_lossy(&step.output).lines() {
                        line(format!("    {l}"));
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
