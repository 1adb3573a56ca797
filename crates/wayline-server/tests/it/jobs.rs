use wayline_proto::v1 as pb;
use wayline_proto::v1::get_job_stream_response::Event as StreamEvent;
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
    assert!(matches!(events.first(), Some(StreamEvent::Open(_))));
    let lines: Vec<(String, bool)> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Terminal(t) => Some(t.events.iter().map(move |ev| match &ev.event {
                Some(pb::terminal_event::Event::Line(l)) => (l.msg.clone(), t.buffered),
                _ => (String::new(), t.buffered),
            })),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(lines, vec![("hello from the runner".to_owned(), true)]);
    assert!(matches!(events.last(), Some(StreamEvent::Complete(_))));
}

fn fast(o: &mut wayline_server::ServerOptions) {
    o.ack_timeout = std::time::Duration::from_secs(1);
    o.heartbeat_timeout = std::time::Duration::from_millis(1500);
}

#[tokio::test]
async fn unacknowledged_jobs_go_back_to_the_queue() {
    let h = Harness::start_with(fast).await;
    let mut c = h.client().await;
    let _r1 = online(&mut c, "r1", &[], false).await;
    let id = queue(&mut c, noop_job(None)).await;
    let mut slow = job_conn(&mut c, "r1", "").await;
    assert_eq!(slow.assignment().await.id, id);
    // No ack: the server gives up on this stream and requeues.
    let err = slow.rx.message().await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded);
    assert_eq!(
        err.message(),
        format!("job {id} was not acknowledged within 1s; it was given back to the queue")
    );
    let j = get_job(&mut c, &id).await;
    assert_eq!(j.state, State::Queued as i32);
    assert_eq!(j.assigned_runner_id, "");
    let mut conn = job_conn(&mut c, "r1", "").await;
    assert_eq!(conn.assignment().await.id, id);
    conn.ack().await;
    conn.complete().await;
    wait_state(&mut c, &id, State::Success).await;
}

#[tokio::test]
async fn a_silent_runner_fails_its_job() {
    let h = Harness::start_with(fast).await;
    let mut c = h.client().await;
    let _r1 = online(&mut c, "r1", &[], false).await;
    let id = queue(&mut c, noop_job(None)).await;
    let mut conn = job_conn(&mut c, "r1", "").await;
    conn.assignment().await;
    conn.ack().await;
    let j = wait_state(&mut c, &id, State::Error).await;
    assert_eq!(
        j.error.unwrap().message,
        "runner r1 sent no heartbeat for 1s 500ms; the job was marked failed"
    );
}

#[tokio::test]
async fn a_runner_reattaches_after_losing_its_stream() {
    let h = Harness::start_with(|o| {
        o.heartbeat_timeout = std::time::Duration::from_secs(30);
    })
    .await;
    let mut c = h.client().await;
    let _r1 = online(&mut c, "r1", &[], false).await;
    let id = queue(&mut c, noop_job(None)).await;
    let mut conn = job_conn(&mut c, "r1", "").await;
    conn.assignment().await;
    conn.ack().await;
    wait_state(&mut c, &id, State::Running).await;
    drop(conn);
    // Wait until the server noticed the break (the wait reason says so).
    for _ in 0..200 {
        if get_job(&mut c, &id)
            .await
            .wait_reason
            .contains("lost its connection")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        get_job(&mut c, &id).await.wait_reason,
        "runner r1 lost its connection; waiting for it to reattach"
    );
    let err = c
        .runner_job_stream(tokio_stream::iter(vec![ev(
            pb::runner_job_stream_request::Event::Request(pb::runner_job_stream_request::Request {
                runner_id: "r2".into(),
                reattach_job_id: id.clone(),
            }),
        )]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    let mut again = job_conn(&mut c, "r1", &id).await;
    assert_eq!(again.assignment().await.id, id);
    again.line("still here").await;
    again.complete().await;
    wait_state(&mut c, &id, State::Success).await;
}

#[tokio::test]
async fn a_lost_runner_that_never_returns_fails_the_job() {
    let h = Harness::start_with(fast).await;
    let mut c = h.client().await;
    let _r1 = online(&mut c, "r1", &[], false).await;
    let id = queue(&mut c, noop_job(None)).await;
    let mut conn = job_conn(&mut c, "r1", "").await;
    conn.assignment().await;
    conn.ack().await;
    wait_state(&mut c, &id, State::Running).await;
    drop(conn);
    let j = wait_state(&mut c, &id, State::Error).await;
    assert_eq!(
        j.error.unwrap().message,
        "runner r1 lost its connection and did not reattach within 1s 500ms"
    );
}

#[tokio::test]
async fn cancel_reaches_the_runner_and_force_ends_at_once() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let _r1 = online(&mut c, "r1", &[], false).await;
    let id = queue(&mut c, noop_job(None)).await;
    let mut conn = job_conn(&mut c, "r1", "").await;
    conn.assignment().await;
    conn.ack().await;
    wait_state(&mut c, &id, State::Running).await;
    c.cancel_job(pb::CancelJobRequest {
        job_id: id.clone(),
        force: false,
    })
    .await
    .unwrap();
    match conn.rx.message().await.unwrap().unwrap().event {
        Some(pb::runner_job_stream_response::Event::Cancel(cancel)) => assert!(!cancel.force),
        other => panic!("expected cancel, got {other:?}"),
    }
    conn.fail("cancelled by the user").await;
    let j = wait_state(&mut c, &id, State::Cancelled).await;
    assert!(j.cancel_time.is_some());

    // A queued job is cancelled right away; a force cancel of a running job too.
    let queued = queue(
        &mut c,
        noop_job(Some(pb::target_runner::Target::Id("nobody".into()))),
    )
    .await;
    c.cancel_job(pb::CancelJobRequest {
        job_id: queued.clone(),
        force: false,
    })
    .await
    .unwrap();
    assert_eq!(
        get_job(&mut c, &queued).await.state,
        State::Cancelled as i32
    );
    let err = c
        .cancel_job(pb::CancelJobRequest {
            job_id: queued.clone(),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        format!("job {queued} already ended (cancelled)")
    );

    let id2 = queue(&mut c, noop_job(None)).await;
    let mut conn2 = job_conn(&mut c, "r1", "").await;
    conn2.assignment().await;
    conn2.ack().await;
    wait_state(&mut c, &id2, State::Running).await;
    c.cancel_job(pb::CancelJobRequest {
        job_id: id2.clone(),
        force: true,
    })
    .await
    .unwrap();
    assert_eq!(get_job(&mut c, &id2).await.state, State::Cancelled as i32);
    match conn2.rx.message().await.unwrap().unwrap().event {
        Some(pb::runner_job_stream_response::Event::Cancel(cancel)) => assert!(cancel.force),
        other => panic!("expected cancel, got {other:?}"),
    }
}

#[tokio::test]
async fn deploys_of_one_app_are_serialised_and_waits_are_explained() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let first = queue(&mut c, op_job(deploy(), "r1")).await;
    let second = queue(&mut c, op_job(deploy(), "r1")).await;
    assert_eq!(
        get_job(&mut c, &first).await.wait_reason,
        "waiting for runner r1 to connect"
    );
    assert_eq!(
        get_job(&mut c, &second).await.wait_reason,
        format!("blocked by job {first} (deploy of app web in workspace default)")
    );
    // A build of the same app is not serialised.
    let build = queue(
        &mut c,
        op_job(pb::job::Operation::Build(pb::BuildOp::default()), "r1"),
    )
    .await;
    assert_eq!(
        get_job(&mut c, &build).await.wait_reason,
        "waiting for runner r1 to connect"
    );

    let _r1 = online(&mut c, "r1", &[], true).await;
    let mut a = job_conn(&mut c, "r1", "").await;
    assert_eq!(a.assignment().await.id, first);
    a.ack().await;
    let mut b = job_conn(&mut c, "r1", "").await;
    // The second deploy must wait: the build goes first.
    assert_eq!(b.assignment().await.id, build);
    b.ack().await;
    assert_eq!(
        get_job(&mut c, &second).await.wait_reason,
        format!("blocked by job {first} (deploy of app web in workspace default)")
    );
    a.complete().await;
    let mut d = job_conn(&mut c, "r1", "").await;
    assert_eq!(d.assignment().await.id, second);
}

/// Waits (at most 5 s) until job `id` waits for `want`: a runner's arrival reaches the
/// queue's reasons a moment after its `online` call returns.
async fn wait_reason_becomes(c: &mut Client, id: &str, want: &str) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let got = get_job(c, id).await.wait_reason;
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < end,
            "job {id} waits for {got:?}, not {want:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn wait_reasons_name_labels_and_local_runners() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let labels = pb::target_runner::Target::Labels(pb::target_runner::Labels {
        labels: [("os".to_owned(), "linux".to_owned())].into(),
    });
    let id = queue(&mut c, noop_job(Some(labels))).await;
    wait_reason_becomes(
        &mut c,
        &id,
        "waiting: no runner with labels {os=linux} is connected",
    )
    .await;
    let any = queue(&mut c, noop_job(None)).await;
    wait_reason_becomes(&mut c, &any, "waiting: no runner is connected").await;
    let _local = online(&mut c, "local1", &[("os", "linux")], true).await;
    wait_reason_becomes(&mut c, &any, "waiting: no runner that takes untargeted jobs is connected (local runners only take jobs targeted at them)").await;
    wait_reason_becomes(
        &mut c,
        &id,
        "waiting: no runner with labels {os=linux} is connected",
    )
    .await;
    let _r = online(&mut c, "r2", &[("os", "linux"), ("gpu", "yes")], false).await;
    wait_reason_becomes(
        &mut c,
        &id,
        "waiting: runner r2, the only one with labels {os=linux}, is busy",
    )
    .await;
    let v = c
        .validate_job(pb::ValidateJobRequest {
            job: Some(noop_job(None)),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(v.valid);
    assert!(!v.assignable);
    assert_eq!(
        v.wait_reason,
        "waiting: runner r2, the only one that takes untargeted jobs, is busy"
    );
    let mut conn = job_conn(&mut c, "r2", "").await;
    // The labelled job was queued first.
    assert_eq!(conn.assignment().await.id, id);
    let listed = c
        .list_jobs(pb::ListJobsRequest {
            states: vec![State::Queued as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .jobs;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, any);
    assert_eq!(
        listed[0].wait_reason,
        "waiting: runner r2, the only one that takes untargeted jobs, is busy"
    );
}

#[tokio::test]
async fn failed_dependencies_cascade() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let _r1 = online(&mut c, "r1", &[], false).await;
    let a = queue(&mut c, noop_job(None)).await;
    let mut b_job = noop_job(None);
    b_job.depends_on = vec![a.clone()];
    let b = queue(&mut c, b_job).await;
    let mut c_job = noop_job(None);
    c_job.depends_on = vec![b.clone()];
    let cc = queue(&mut c, c_job).await;
    let mut tolerant = noop_job(None);
    tolerant.depends_on = vec![a.clone()];
    tolerant.depends_on_allow_failure = vec![a.clone()];
    let t = queue(&mut c, tolerant).await;
    assert_eq!(
        get_job(&mut c, &b).await.wait_reason,
        format!("waiting for job {a} (noop of app web in workspace default) that it depends on")
    );
    let mut conn = job_conn(&mut c, "r1", "").await;
    assert_eq!(conn.assignment().await.id, a);
    conn.ack().await;
    conn.fail("boom").await;
    let jb = wait_state(&mut c, &b, State::Error).await;
    assert_eq!(
        jb.error.unwrap().message,
        format!(
            "job {a} (noop of app web in workspace default) that this job depends on ended in error"
        )
    );
    let jc = wait_state(&mut c, &cc, State::Error).await;
    assert!(jc.error.unwrap().message.starts_with(&format!("job {b} ")));
    let mut conn = job_conn(&mut c, "r1", "").await;
    assert_eq!(conn.assignment().await.id, t);

    let err = c
        .queue_job(pb::QueueJobRequest {
            job: Some(pb::Job {
                depends_on: vec!["missing".into()],
                ..noop_job(None)
            }),
            expires_in: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "the job depends on job missing, which does not exist"
    );
}

#[tokio::test]
async fn bad_jobs_are_rejected_with_clear_messages() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let err = c
        .queue_job(pb::QueueJobRequest {
            job: Some(pb::Job::default()),
            expires_in: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "job.operation is required (noop, build, push, deploy, release, up, destroy, …)"
    );
    let err = c
        .queue_job(pb::QueueJobRequest {
            job: Some(noop_job(None)),
            expires_in: "soon".into(),
        })
        .await
        .unwrap_err();
    assert!(
        err.message()
            .starts_with("`soon` is not a duration such as `720h` or `30m`"),
        "{}",
        err.message()
    );
    let err = c
        .get_job(pb::GetJobRequest {
            job_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.message(), "job nope does not exist");
}

#[tokio::test]
async fn singleton_jobs_replace_older_queued_ones_and_expired_jobs_end() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let poll = || pb::Job {
        singleton_id: "poll-web".into(),
        ..noop_job(None)
    };
    let old = queue(&mut c, poll()).await;
    let new = queue(&mut c, poll()).await;
    let j = get_job(&mut c, &old).await;
    assert_eq!(j.state, State::Cancelled as i32);
    assert_eq!(
        j.error.unwrap().message,
        format!("replaced by the newer job {new} with the same singleton id")
    );
    assert_eq!(get_job(&mut c, &new).await.state, State::Queued as i32);

    let id = c
        .queue_job(pb::QueueJobRequest {
            job: Some(noop_job(None)),
            expires_in: "100ms".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .job_id;
    let j = wait_state(&mut c, &id, State::Error).await;
    assert_eq!(
        j.error.unwrap().message,
        "the job expired before a runner took it"
    );
}

#[tokio::test]
async fn job_stream_follows_a_running_job_live() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let _r1 = online(&mut c, "r1", &[], false).await;
    let id = queue(&mut c, noop_job(None)).await;
    let mut conn = job_conn(&mut c, "r1", "").await;
    conn.assignment().await;
    conn.ack().await;
    conn.line("early").await;
    wait_state(&mut c, &id, State::Running).await;
    let mut s = c
        .get_job_stream(pb::GetJobStreamRequest { job_id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    // Replay: open, states, the early line (buffered).
    loop {
        let e = s.message().await.unwrap().unwrap().event.unwrap();
        let stop = matches!(&e, StreamEvent::Terminal(_));
        seen.push(e);
        if stop {
            break;
        }
    }
    conn.line("late").await;
    conn.complete().await;
    while let Some(m) = s.message().await.unwrap() {
        seen.push(m.event.unwrap());
    }
    let terminal: Vec<(String, bool)> = seen
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Terminal(t) => match &t.events[0].event {
                Some(pb::terminal_event::Event::Line(l)) => Some((l.msg.clone(), t.buffered)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(
        terminal,
        vec![("early".to_owned(), true), ("late".to_owned(), false)]
    );
    let states: Vec<(i32, i32)> = seen
        .iter()
        .filter_map(|e| match e {
            StreamEvent::State(s) => Some((s.previous, s.current)),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        vec![
            (State::Unknown as i32, State::Queued as i32),
            (State::Queued as i32, State::Waiting as i32),
            (State::Waiting as i32, State::Running as i32),
            (State::Running as i32, State::Success as i32),
        ]
    );
    assert!(matches!(seen.last(), Some(StreamEvent::Complete(_))));
}
