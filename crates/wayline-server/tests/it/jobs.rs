use wayline_proto::v1 as pb;
use wayline_proto::v1::get_job_stream_response::Event as Ev;
use wayline_proto::v1::job::State;

use crate::common::*;

#[tokio::test]
async fn queue_run_complete_and_replay_output() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let _runner = online(&mut c, "r1", &[], false).await;
    let id = queue(&mut c, noop_job(None)).await;
    let mut conn = job_conn(&mut c, "r1", "").await;
    let job = conn.assignment().await;
    assert_eq!(job.id, id);
    assert_eq!(job.state, State::Waiting as i32);
    conn.ack().await;
    wait_state(&mut c, &id, State::Running).await;
    conn.line("hello from the runner").await;
    conn.complete().await;
    let done = wait_state(&mut c, &id, State::Success).await;
    assert_eq!(done.assigned_runner_id, "r1");

    let mut s = c
        .get_job_stream(pb::GetJobStreamRequest { job_id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Some(m) = s.message().await.unwrap() {
        events.push(m.event.unwrap());
    }
    assert!(matches!(events.first(), Some(Ev::Open(_))));
    let lines: Vec<(String, bool)> = events
        .iter()
        .filter_map(|e| match e {
            Ev::Terminal(t) => Some(t.events.iter().map(move |ev| match &ev.event {
                Some(pb::terminal_event::Event::Line(l)) => (l.msg.clone(), t.buffered),
                _ => (String::new(), t.buffered),
            })),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(lines, vec![("hello from the runner".to_owned(), true)]);
    assert!(matches!(events.last(), Some(Ev::Complete(_))));
}
