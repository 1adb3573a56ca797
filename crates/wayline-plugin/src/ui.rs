//! The terminal UI a component talks to the user through.
//!
//! Everything a component shows is a stream of [`TerminalEvent`]s: in process the runner forwards
//! them to the job stream (and the CLI renders them); across processes the external-plugin protocol
//! carries them. A component holds a cloneable [`Ui`] and calls `output`, `named_values`, `table`,
//! `status` (a spinner with steps) and `step_group` (steps with their own output).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::mpsc;
use wayline_proto::v1::TerminalEvent;
use wayline_proto::v1::terminal_event as te;

/// Where terminal events go. Implement this to render or forward them.
pub trait TerminalUi: Send + Sync {
    /// Takes one event.
    fn emit(&self, event: TerminalEvent);

    /// A step id unique in this output stream. The default is unique in the process.
    fn next_step_id(&self) -> i32 {
        static NEXT: AtomicI32 = AtomicI32::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }
}

/// How a line is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    /// Plain text.
    #[default]
    Plain,
    /// A section header.
    Header,
    /// An error.
    Error,
    /// An error, bold.
    ErrorBold,
    /// A warning.
    Warning,
    /// A warning, bold.
    WarningBold,
    /// Informational.
    Info,
    /// Success.
    Success,
    /// Success, bold.
    SuccessBold,
}

impl Style {
    /// The wire name used in `TerminalEvent.Line.style`.
    pub fn as_str(self) -> &'static str {
        match self {
            Style::Plain => "",
            Style::Header => "header",
            Style::Error => "error",
            Style::ErrorBold => "error-bold",
            Style::Warning => "warning",
            Style::WarningBold => "warning-bold",
            Style::Info => "info",
            Style::Success => "success",
            Style::SuccessBold => "success-bold",
        }
    }
}

/// The outcome shown on a status step or a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    /// Still running.
    Running,
    /// Done, fine.
    Ok,
    /// Failed.
    Error,
    /// Done with a warning.
    Warn,
    /// Timed out.
    Timeout,
    /// Aborted.
    Abort,
}

impl StatusKind {
    /// The wire name (`""` while running).
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Running => "",
            StatusKind::Ok => "ok",
            StatusKind::Error => "error",
            StatusKind::Warn => "warn",
            StatusKind::Timeout => "timeout",
            StatusKind::Abort => "abort",
        }
    }
}

/// A cloneable handle on a [`TerminalUi`] with the convenience methods components use.
#[derive(Clone)]
pub struct Ui(Arc<dyn TerminalUi>);

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ui")
    }
}

fn event(ev: te::Event) -> TerminalEvent {
    TerminalEvent {
        timestamp: Some(prost_types::Timestamp::from(SystemTime::now())),
        event: Some(ev),
    }
}

impl Ui {
    /// Wraps a sink.
    pub fn new(sink: Arc<dyn TerminalUi>) -> Self {
        Self(sink)
    }

    /// A UI that sends every event into `tx` (what the runner uses to feed the job stream).
    pub fn channel(tx: mpsc::UnboundedSender<TerminalEvent>) -> Self {
        Self::new(Arc::new(ChannelUi(tx)))
    }

    /// A UI that calls `f` for every event.
    pub fn callback(f: impl Fn(TerminalEvent) + Send + Sync + 'static) -> Self {
        Self::new(Arc::new(CallbackUi(Box::new(f))))
    }

    /// A UI that drops everything.
    pub fn discard() -> Self {
        Self::callback(|_| {})
    }

    /// A UI that keeps every event, for tests; read them back from the returned collector.
    pub fn collecting() -> (Self, Arc<CollectingUi>) {
        let c = Arc::new(CollectingUi::default());
        (Self::new(c.clone()), c)
    }

    /// Sends a raw event.
    pub fn emit(&self, ev: TerminalEvent) {
        self.0.emit(ev);
    }

    /// A step id unique in this output stream.
    pub fn next_step_id(&self) -> i32 {
        self.0.next_step_id()
    }

    /// Prints one line.
    pub fn output(&self, msg: impl Into<String>, style: Style) {
        self.emit(event(te::Event::Line(te::Line {
            msg: msg.into(),
            style: style.as_str().to_owned(),
        })));
    }

    /// Prints `name: value` pairs aligned.
    pub fn named_values<K: AsRef<str>, V: AsRef<str>>(&self, values: &[(K, V)]) {
        self.emit(event(te::Event::NamedValues(te::NamedValues {
            values: values
                .iter()
                .map(|(k, v)| te::NamedValue {
                    name: k.as_ref().to_owned(),
                    value: v.as_ref().to_owned(),
                })
                .collect(),
        })));
    }

    /// Prints a table.
    pub fn table(&self, headers: &[&str], rows: Vec<Vec<String>>) {
        self.emit(event(te::Event::Table(te::Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: rows
                .into_iter()
                .map(|cells| te::TableRow { cells })
                .collect(),
        })));
    }

    /// Starts a status spinner line.
    pub fn status(&self) -> StatusSpinner {
        StatusSpinner { ui: self.clone() }
    }

    /// Starts a group of steps, each with its own output.
    pub fn step_group(&self) -> StepGroup {
        self.emit(event(te::Event::StepGroup(te::StepGroup { close: false })));
        StepGroup {
            ui: self.clone(),
            closed: false,
        }
    }
}

/// A spinner line with an updatable message and finished steps.
#[derive(Debug)]
pub struct StatusSpinner {
    ui: Ui,
}

impl StatusSpinner {
    /// Changes the spinner's message.
    pub fn update(&self, msg: impl Into<String>) {
        self.ui.emit(event(te::Event::Status(te::Status {
            status: String::new(),
            msg: msg.into(),
            step: false,
        })));
    }

    /// Prints a finished step with its outcome.
    pub fn step(&self, status: StatusKind, msg: impl Into<String>) {
        self.ui.emit(event(te::Event::Status(te::Status {
            status: status.as_str().to_owned(),
            msg: msg.into(),
            step: true,
        })));
    }
}

/// A group of steps; closed on [`StepGroup::wait`] or drop.
#[derive(Debug)]
pub struct StepGroup {
    ui: Ui,
    closed: bool,
}

impl StepGroup {
    /// Adds a running step.
    pub fn add(&self, msg: impl Into<String>) -> Step {
        let id = self.ui.next_step_id();
        let step = Step {
            ui: self.ui.clone(),
            id,
            done: false,
        };
        step.send(msg.into(), StatusKind::Running, Vec::new(), false);
        step
    }

    /// Closes the group.
    pub fn wait(mut self) {
        self.close();
    }

    fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.ui
                .emit(event(te::Event::StepGroup(te::StepGroup { close: true })));
        }
    }
}

impl Drop for StepGroup {
    fn drop(&mut self) {
        self.close();
    }
}

/// One step of a [`StepGroup`]; aborted if dropped before [`Step::done`].
#[derive(Debug)]
pub struct Step {
    ui: Ui,
    id: i32,
    done: bool,
}

impl Step {
    fn send(&self, msg: String, status: StatusKind, output: Vec<u8>, close: bool) {
        self.ui.emit(event(te::Event::Step(te::Step {
            id: self.id,
            close,
            msg,
            status: status.as_str().to_owned(),
            output,
        })));
    }

    /// The step's id in the stream.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// Changes the step's message.
    pub fn update(&self, msg: impl Into<String>) {
        self.send(msg.into(), StatusKind::Running, Vec::new(), false);
    }

    /// Sets the step's status without closing it.
    pub fn status(&self, status: StatusKind) {
        self.send(String::new(), status, Vec::new(), false);
    }

    /// Appends bytes to the step's output body (e.g. a command's output).
    pub fn output(&self, bytes: &[u8]) {
        self.send(String::new(), StatusKind::Running, bytes.to_vec(), false);
    }

    /// Finishes the step successfully.
    pub fn done(mut self) {
        self.done = true;
        self.send(String::new(), StatusKind::Ok, Vec::new(), true);
    }

    /// Finishes the step as failed.
    pub fn abort(mut self) {
        self.finish_aborted();
    }

    fn finish_aborted(&mut self) {
        self.done = true;
        self.send(String::new(), StatusKind::Error, Vec::new(), true);
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if !self.done {
            self.finish_aborted();
        }
    }
}

struct ChannelUi(mpsc::UnboundedSender<TerminalEvent>);

impl TerminalUi for ChannelUi {
    fn emit(&self, event: TerminalEvent) {
        // A closed receiver means nobody watches the job any more; output is not an error.
        let _ = self.0.send(event);
    }
}

type EventFn = Box<dyn Fn(TerminalEvent) + Send + Sync>;

struct CallbackUi(EventFn);

impl TerminalUi for CallbackUi {
    fn emit(&self, event: TerminalEvent) {
        (self.0)(event);
    }
}

/// Keeps every event; for tests.
#[derive(Debug, Default)]
pub struct CollectingUi {
    events: Mutex<Vec<TerminalEvent>>,
}

impl CollectingUi {
    /// All events so far.
    pub fn events(&self) -> Vec<TerminalEvent> {
        self.events.lock().expect("ui lock").clone()
    }

    /// The `msg` of every `Line` event so far.
    pub fn lines(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e.event {
                Some(te::Event::Line(l)) => Some(l.msg),
                _ => None,
            })
            .collect()
    }
}

impl TerminalUi for CollectingUi {
    fn emit(&self, event: TerminalEvent) {
        self.events.lock().expect("ui lock").push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(events: &[TerminalEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e.event.as_ref().unwrap() {
                te::Event::Line(l) => format!("line {} {}", l.style, l.msg),
                te::Event::NamedValues(v) => format!("values {}", v.values.len()),
                te::Event::Status(s) => format!("status {} {} {}", s.status, s.msg, s.step),
                te::Event::Step(s) => format!(
                    "step {} {} {} {}",
                    s.close,
                    s.msg,
                    s.status,
                    String::from_utf8_lossy(&s.output)
                ),
                te::Event::StepGroup(g) => format!("group {}", g.close),
                te::Event::Table(t) => format!("table {} {}", t.headers.len(), t.rows.len()),
            })
            .collect()
    }

    #[test]
    fn events_are_emitted_in_order_and_steps_close_on_drop() {
        let (ui, c) = Ui::collecting();
        ui.output("hello", Style::Header);
        ui.named_values(&[("a", "1"), ("b", "2")]);
        ui.table(&["x"], vec![vec!["1".into()]]);
        let s = ui.status();
        s.update("working");
        s.step(StatusKind::Ok, "did it");
        {
            let g = ui.step_group();
            let step = g.add("one");
            step.output(b"out");
            step.done();
            let _dropped = g.add("two");
        }
        let k = kinds(&c.events());
        assert_eq!(
            k,
            [
                "line header hello",
                "values 2",
                "table 1 1",
                "status  working false",
                "status ok did it true",
                "group false",
                "step false one  ",
                "step false   out",
                "step true  ok ",
                "step false two  ",
                "step true  error ",
                "group true",
            ]
        );
        assert_eq!(c.lines(), ["hello"]);
    }

    #[test]
    fn channel_ui_forwards_events() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let ui = Ui::channel(tx);
        ui.output("x", Style::Plain);
        assert!(matches!(
            rx.try_recv().unwrap().event,
            Some(te::Event::Line(_))
        ));
    }
}
