//! Terminal output of a job: what the runner and plugins show the user, as `TerminalEvent`s
//! that travel on the job stream and are stored with the job.

use tokio::sync::mpsc;
use wayline_core::time;
use wayline_proto::v1::TerminalEvent;
use wayline_proto::v1::terminal_event::{
    Event, Line, NamedValue, NamedValues, Status, Step, Table, TableRow,
};

/// Where a job's terminal events go. Cheap to clone; sending never blocks the job.
#[derive(Clone, Debug)]
pub struct EventSink {
    tx: mpsc::UnboundedSender<TerminalEvent>,
}

impl EventSink {
    /// A sink and the receiver the job stream drains.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<TerminalEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, rx)
    }

    /// Sends a raw event.
    pub fn send(&self, event: Event) {
        // The receiver only goes away when the job is over; late output has nowhere to go.
        let _ = self.tx.send(TerminalEvent {
            timestamp: Some(time::now()),
            event: Some(event),
        });
    }

    /// An output line; `style` is "", "header", "info", "success", "warning", "error".
    pub fn line(&self, msg: impl Into<String>, style: &str) {
        self.send(Event::Line(Line {
            msg: msg.into(),
            style: style.to_owned(),
        }));
    }

    /// A header line such as "Building web...".
    pub fn header(&self, msg: impl Into<String>) {
        self.line(msg, "header");
    }

    /// A step that starts now; close it with [`EventSink::step_done`].
    pub fn step(&self, id: i32, msg: impl Into<String>) {
        self.send(Event::Step(Step {
            id,
            close: false,
            msg: msg.into(),
            status: String::new(),
            output: Vec::new(),
        }));
    }

    /// Ends a step with a status: "ok", "error", "warn".
    pub fn step_done(&self, id: i32, status: &str, msg: impl Into<String>) {
        self.send(Event::Step(Step {
            id,
            close: true,
            msg: msg.into(),
            status: status.to_owned(),
            output: Vec::new(),
        }));
    }

    /// A status line with a final state.
    pub fn status(&self, status: &str, msg: impl Into<String>) {
        self.send(Event::Status(Status {
            status: status.to_owned(),
            msg: msg.into(),
            step: true,
        }));
    }

    /// Name/value pairs shown aligned.
    pub fn named_values(&self, values: &[(&str, String)]) {
        self.send(Event::NamedValues(NamedValues {
            values: values
                .iter()
                .map(|(n, v)| NamedValue {
                    name: (*n).to_owned(),
                    value: v.clone(),
                })
                .collect(),
        }));
    }

    /// A table.
    pub fn table(&self, headers: &[&str], rows: Vec<Vec<String>>) {
        self.send(Event::Table(Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: rows.into_iter().map(|cells| TableRow { cells }).collect(),
        }));
    }
}
