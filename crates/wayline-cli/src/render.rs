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
}

impl EventRenderer {
    pub(crate) fn new(style: Style) -> Self {
        Self { style }
    }

    pub(crate) fn render(&mut self, ev: &TerminalEvent) {
        let s = self.style;
        let Some(event) = &ev.event else { return };
        match event {
            Event::Line(l) => match l.style.as_str() {
                "header" => println!("\n{}", s.bold(&format!("» {}", l.msg))),
                "error" | "error-bold" => println!("{}", s.red(&format!("! {}", l.msg))),
                "warning" | "warning-bold" => println!("{}", s.yellow(&format!("! {}", l.msg))),
                "success" | "success-bold" => println!("{}", s.green(&l.msg)),
                "info" => println!("{}", l.msg),
                _ => println!("  {}", l.msg),
            },
            Event::NamedValues(nv) => {
                let w = nv.values.iter().map(|v| v.name.len()).max().unwrap_or(0);
                for v in &nv.values {
                    println!("  {:<w$}  {}", format!("{}:", v.name), v.value, w = w + 1);
                }
            }
            Event::Status(st) => {
                let mark = status_mark(s, &st.status);
                if !st.msg.is_empty() {
                    println!("{mark} {}", st.msg);
                }
            }
            Event::Step(step) => {
                if step.close {
                    let mark = status_mark(s, &step.status);
                    if !step.msg.is_empty() {
                        println!("{mark} {}", step.msg);
                    }
                } else if !step.msg.is_empty() {
                    println!("{} {}", s.dim("…"), step.msg);
                }
                if !step.output.is_empty() {
                    for line in String::from_utf8_lossy(&step.output).lines() {
                        println!("    {line}");
                    }
                }
            }
            Event::StepGroup(_) => {}
            Event::Table(t) => {
                let headers: Vec<&str> = t.headers.iter().map(String::as_str).collect();
                let rows: Vec<Vec<String>> = t.rows.iter().map(|r| r.cells.clone()).collect();
                table(&headers, &rows);
            }
        }
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
