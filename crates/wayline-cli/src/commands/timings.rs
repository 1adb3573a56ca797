//! `-timings` on `up` and `job inspect`: a trace of the job's steps from what the server
//! stored — the job's queue, assign, ack and complete times, then every line, status and step
//! the runner and plugins printed, each with its time since the runner took the job and how
//! long it lasted (until the next event, or its step's close).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use prost_types::Timestamp;
use wayline_core::pb::{
    self, Job, TerminalEvent, get_job_stream_response::Event as StreamEvent, terminal_event::Event,
};

use crate::render::{self, say};
use crate::session::Session;

/// One row of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// Since the job was queued.
    pub(crate) at: Duration,
    /// How long it took: to the next event, a step's close, or the job's end.
    pub(crate) took: Duration,
    /// A stage header (`Building web...`) rather than a line within one.
    pub(crate) header: bool,
    pub(crate) what: String,
}

fn between(from: &Timestamp, to: &Timestamp) -> Duration {
    let ns = |t: &Timestamp| i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
    u64::try_from(ns(to) - ns(from)).map_or(Duration::ZERO, Duration::from_nanos)
}

/// The trace of `job` from its stored terminal `events`. A header lasts until the next
/// header; other events until the next event; a step until its close.
pub(crate) fn trace(job: &Job, events: &[TerminalEvent]) -> Vec<Row> {
    let Some(queued) = job.queue_time.as_ref() else {
        return Vec::new();
    };
    let end = job.complete_time.as_ref();
    let mut rows = Vec::new();
    for (name, t) in [
        ("assigned to a runner", &job.assign_time),
        ("runner took it", &job.ack_time),
    ] {
        if let Some(t) = t {
            rows.push(Row {
                at: between(queued, t),
                took: Duration::ZERO,
                header: true,
                what: name.into(),
            });
        }
    }
    let next_after = |i: usize, pred: &dyn Fn(&TerminalEvent) -> bool| {
        events[i + 1..]
            .iter()
            .find(|e| pred(e))
            .and_then(|e| e.timestamp.as_ref())
            .or(end)
    };
    for (i, ev) in events.iter().enumerate() {
        let (Some(t), Some(event)) = (ev.timestamp.as_ref(), ev.event.as_ref()) else {
            continue;
        };
        let (what, header, until) = match event {
            Event::Line(l) if l.style == "header" => {
                let is_header = |e: &TerminalEvent| matches!(&e.event, Some(Event::Line(l)) if l.style == "header");
                (l.msg.clone(), true, next_after(i, &is_header))
            }
            Event::Line(l) => (l.msg.clone(), false, next_after(i, &|_| true)),
            Event::Status(s) if !s.msg.is_empty() => {
                (s.msg.clone(), false, next_after(i, &|_| true))
            }
            Event::Step(s) if !s.close && !s.msg.is_empty() => {
                let id = s.id;
                let closes = |e: &TerminalEvent| matches!(&e.event, Some(Event::Step(s)) if s.close && s.id == id);
                (s.msg.clone(), false, next_after(i, &closes))
            }
            _ => continue,
        };
        rows.push(Row {
            at: between(queued, t),
            took: until.map_or(Duration::ZERO, |u| between(t, u)),
            header,
            what,
        });
    }
    if let Some(end) = end {
        rows.push(Row {
            at: between(queued, end),
            took: Duration::ZERO,
            header: true,
            what: "job ended".into(),
        });
    }
    rows
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

/// Job `job_id` as the server has it now.
pub(crate) async fn fetch_job(session: &mut Session, job_id: &str) -> Result<Job> {
    Ok(session
        .client
        .get_job(pb::GetJobRequest {
            job_id: job_id.to_owned(),
        })
        .await
        .with_context(|| format!("job {job_id}"))?
        .into_inner())
}

/// Prints the trace of job `job_id`, fetched from the server.
pub(crate) async fn print(session: &mut Session, job_id: &str) -> Result<ExitCode> {
    let job = fetch_job(session, job_id).await?;
    let events = stored_events(session, job_id).await?;
    let rows: Vec<Vec<String>> = trace(&job, &events)
        .into_iter()
        .map(|r| {
            let what = if r.header {
                r.what
            } else {
                format!("  {}", r.what)
            };
            vec![
                ms(r.at),
                if r.took.is_zero() {
                    String::new()
                } else {
                    ms(r.took)
                },
                what,
            ]
        })
        .collect();
    say!("\nTimings of job {job_id} (milliseconds since it was queued):");
    render::table(&["AT", "TOOK", "STEP"], &rows);
    Ok(ExitCode::SUCCESS)
}

/// The job's terminal events as stored, read from its stream up to its end.
async fn stored_events(session: &mut Session, job_id: &str) -> Result<Vec<TerminalEvent>> {
    let mut stream = session
        .client
        .get_job_stream(pb::GetJobStreamRequest {
            job_id: job_id.to_owned(),
        })
        .await
        .with_context(|| format!("the stream of job {job_id}"))?
        .into_inner();
    let mut events = Vec::new();
    while let Some(msg) = stream.message().await? {
        match msg.event {
            Some(StreamEvent::Terminal(t)) => events.extend(t.events),
            Some(StreamEvent::Complete(_) | StreamEvent::Error(_)) => break,
            _ => {}
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wayline_core::pb::terminal_event::{Line, Step};

    fn at(ms: i64) -> Option<Timestamp> {
        Some(wayline_core::time::from_millis(1_000_000 + ms))
    }

    fn ev(ms: i64, event: Event) -> TerminalEvent {
        TerminalEvent {
            timestamp: at(ms),
            event: Some(event),
        }
    }

    fn line(msg: &str, style: &str) -> Event {
        Event::Line(Line {
            msg: msg.into(),
            style: style.into(),
        })
    }

    fn step(id: i32, close: bool, msg: &str) -> Event {
        Event::Step(Step {
            id,
            close,
            msg: msg.into(),
            ..Step::default()
        })
    }

    #[test]
    fn each_step_lasts_until_the_next_event_a_header_until_the_next_header() {
        let job = Job {
            queue_time: at(0),
            assign_time: at(2),
            ack_time: at(5),
            complete_time: at(400),
            ..Job::default()
        };
        let events = vec![
            ev(10, line("Building web...", "header")),
            ev(12, step(1, false, "Building image")),
            ev(20, line("Step 1/3", "")),
            ev(150, step(1, true, "Built image")),
            ev(160, line("Deploying web...", "header")),
            ev(170, line("Creating container", "")),
            ev(390, line("Release v2 is live", "success")),
        ];
        let trace = trace(&job, &events);
        let rows: Vec<(u128, u128, bool, &str)> = trace
            .iter()
            .map(|r| {
                (
                    r.at.as_millis(),
                    r.took.as_millis(),
                    r.header,
                    r.what.as_str(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (2, 0, true, "assigned to a runner"),
                (5, 0, true, "runner took it"),
                (10, 150, true, "Building web..."),
                (12, 138, false, "Building image"),
                (20, 130, false, "Step 1/3"),
                (160, 240, true, "Deploying web..."),
                (170, 220, false, "Creating container"),
                (390, 10, false, "Release v2 is live"),
                (400, 0, true, "job ended"),
            ]
        );
    }

    #[test]
    fn a_job_never_queued_has_no_trace() {
        assert!(trace(&Job::default(), &[ev(1, line("x", ""))]).is_empty());
    }
}
