//! A job's stored terminal events as plain text lines, the way a terminal would end up showing
//! them: a step that was opened, updated and closed is one line with its final mark.

use std::collections::HashMap;

use wayline_proto::v1::TerminalEvent;
use wayline_proto::v1::terminal_event::Event;

/// One rendered output line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// The text, unescaped.
    pub(crate) text: String,
    /// A CSS class (`error`, `success`, `warning`, or "").
    pub(crate) class: &'static str,
}

/// The mark and class for a step or status: `ok` ✓, `error` ✗, `warn` !, in progress •.
fn mark(status: &str) -> (&'static str, &'static str) {
    match status {
        "ok" | "success" | "complete" => ("✓", "success"),
        "error" | "abort" | "timeout" => ("✗", "error"),
        "warn" | "warning" => ("!", "warning"),
        _ => ("•", ""),
    }
}

fn style_class(style: &str) -> &'static str {
    match style {
        "error" | "error-bold" => "error",
        "success" | "success-bold" => "success",
        "warning" | "warning-bold" => "warning",
        _ => "",
    }
}

/// Renders events in order; a step's later events update its first line in place and its
/// output follows it, indented.
pub(crate) fn render(events: &[TerminalEvent]) -> Vec<Line> {
    // Each entry is a line plus the output collected under it (steps only).
    let mut entries: Vec<(Line, Vec<String>)> = Vec::new();
    // Step id → its entry and latest message.
    let mut steps: HashMap<i32, (usize, String)> = HashMap::new();
    let plain = |text: String, class| (Line { text, class }, Vec::new());
    for ev in events {
        match &ev.event {
            Some(Event::Line(l)) => {
                let class = style_class(&l.style);
                for text in l.msg.lines() {
                    entries.push(plain(text.to_owned(), class));
                }
            }
            Some(Event::NamedValues(nv)) => {
                for v in &nv.values {
                    entries.push(plain(format!("{}: {}", v.name, v.value), ""));
                }
            }
            Some(Event::Status(s)) => {
                if !s.msg.is_empty() {
                    let (m, class) = mark(&s.status);
                    entries.push(plain(format!("{m} {}", s.msg), class));
                }
            }
            Some(Event::Step(s)) => {
                let (idx, msg) = steps.entry(s.id).or_insert_with(|| {
                    entries.push(plain(String::new(), ""));
                    (entries.len() - 1, String::new())
                });
                if !s.msg.is_empty() {
                    msg.clone_from(&s.msg);
                }
                // Closing a step without a status means it finished normally.
                let status = if s.status.is_empty() && s.close {
                    "ok"
                } else {
                    s.status.as_str()
                };
                let (m, class) = mark(status);
                let entry = &mut entries[*idx];
                entry.0 = Line {
                    text: format!("{m} {msg}"),
                    class,
                };
                entry.1.extend(
                    String::from_utf8_lossy(&s.output)
                        .lines()
                        .map(str::to_owned),
                );
            }
            Some(Event::Table(t)) => {
                entries.push(plain(t.headers.join("  "), ""));
                for row in &t.rows {
                    entries.push(plain(row.cells.join("  "), ""));
                }
            }
            Some(Event::StepGroup(_)) | None => {}
        }
    }
    entries
        .into_iter()
        .flat_map(|(line, output)| {
            std::iter::once(line).chain(output.into_iter().map(|text| Line {
                text: format!("  {text}"),
                class: "",
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use wayline_proto::v1::terminal_event as te;

    use super::*;

    fn ev(e: Event) -> TerminalEvent {
        TerminalEvent {
            timestamp: None,
            event: Some(e),
        }
    }

    fn step(id: i32, msg: &str, status: &str, close: bool, output: &[u8]) -> TerminalEvent {
        ev(Event::Step(te::Step {
            id,
            close,
            msg: msg.into(),
            status: status.into(),
            output: output.to_vec(),
        }))
    }

    fn texts(lines: &[Line]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn steps_collapse_to_their_final_mark() {
        let events = vec![
            ev(Event::Line(te::Line {
                msg: "Building web".into(),
                style: "header".into(),
            })),
            step(1, "Building image", "", false, b"layer 1\n"),
            step(2, "Pushing", "", false, b""),
            step(1, "", "ok", true, b"layer 2\n"),
            step(2, "Push failed", "error", true, b""),
            ev(Event::Status(te::Status {
                status: "warn".into(),
                msg: "slow registry".into(),
                step: false,
            })),
            ev(Event::NamedValues(te::NamedValues {
                values: vec![te::NamedValue {
                    name: "Image".into(),
                    value: "web:1".into(),
                }],
            })),
        ];
        let lines = render(&events);
        assert_eq!(
            texts(&lines),
            vec![
                "Building web",
                "✓ Building image",
                "  layer 1",
                "  layer 2",
                "✗ Push failed",
                "! slow registry",
                "Image: web:1",
            ]
        );
        assert_eq!(lines[1].class, "success");
        assert_eq!(lines[4].class, "error");
    }

    #[test]
    fn a_closed_step_without_status_succeeded_and_tables_are_rows() {
        let events = vec![
            step(7, "Waiting", "", false, b""),
            step(7, "", "", true, b""),
            ev(Event::Table(te::Table {
                headers: vec!["NAME".into(), "URL".into()],
                rows: vec![te::TableRow {
                    cells: vec!["web".into(), "http://x".into()],
                }],
            })),
        ];
        assert_eq!(
            texts(&render(&events)),
            vec!["✓ Waiting", "NAME  URL", "web  http://x"]
        );
    }
}
