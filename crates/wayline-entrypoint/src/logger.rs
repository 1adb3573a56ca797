//! The entrypoint's own log lines: a minimal `tracing` subscriber (no tracing-subscriber, to stay
//! small) that prints to stderr and ships each line marked ENTRYPOINT, so `wayline logs` shows
//! why an app restarted or why a config value is missing.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use wayline_proto::v1::log_line;

use crate::logs::{LogRing, line};

/// Prints and ships entrypoint events at or above a level.
#[derive(Debug)]
pub struct Logger {
    max: Level,
    ring: OnceLock<Arc<LogRing>>,
}

impl Logger {
    /// A logger for events up to `max` verbosity.
    pub fn new(max: Level) -> Self {
        Logger {
            max,
            ring: OnceLock::new(),
        }
    }

    /// From now on, lines also go to `ring`.
    pub fn ship_to(&self, ring: Arc<LogRing>) {
        let _ = self.ring.set(ring);
    }
}

/// Renders an event as `message k=v …`.
pub fn format_event(event: &Event<'_>) -> String {
    struct V(String, String);
    impl Visit for V {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "message" {
                self.0.push_str(value);
            } else {
                let _ = write!(self.1, " {}={value:?}", field.name());
            }
        }
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                let _ = write!(self.0, "{value:?}");
            } else {
                let _ = write!(self.1, " {}={value:?}", field.name());
            }
        }
    }
    let mut v = V(String::new(), String::new());
    event.record(&mut v);
    v.0 + &v.1
}

impl Subscriber for &'static Logger {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        // Library internals (h2, hyper, tonic) only when something is wrong.
        let ours = meta.target().starts_with("wayline_entrypoint");
        *meta.level() <= self.max && (ours || *meta.level() <= Level::WARN)
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let text = format_event(event);
        let level = event.metadata().level();
        let _ = writeln!(
            std::io::stderr().lock(),
            "wayline-entrypoint: {level} {text}"
        );
        if let Some(ring) = self.ring.get() {
            let stream = if *level <= Level::WARN {
                log_line::Stream::Stderr
            } else {
                log_line::Stream::Stdout
            };
            ring.push(line(
                format!("{level} {text}"),
                log_line::Source::Entrypoint,
                stream,
            ));
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
