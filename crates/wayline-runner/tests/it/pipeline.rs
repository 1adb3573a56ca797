//! Each stage, mapper insertion, hooks and `on_failure`, prune and rollback, cancellation.

use std::time::Duration;

use wayline_proto::v1::{self as pb, OperationKind, PhysicalState, job::State, status};

use crate::harness::{Harness, up};

const APPS: &str = r#"project = "p"

app "web" {
  build {
    use "null" {}
  }
  deploy {
    use "null" {}
  }
  release {
    use "null" {
      url = "http://web.example.test"
    }
  }
}

app "mapped" {
  build {
    use "text" {
      text = "hi"
    }
  }
  deploy {
    use "null" {}
  }
}

app "hooked" {
  build {
    use "null" {}
    hook {
      when       = "before"
      command    = ["sh", "-c", "echo before-build; exit 3"]
      on_failure = "continue"
    }
    hook {
      when    = "after"
      command = ["sh", "-c", "echo after-build"]
    }
  }
  deploy {
    use "null" {}
    hook {
      when    = "before"
      command = ["false"]
    }
  }
}

app "broken" {
  build {
    use "null" {}
  }
  deploy {
    use "null" {
      fail = "no capacity left"
    }
  }
}

app "slow" {
  build {
    use "null" {}
    hook {
      when    = "before"
      command = ["sh", "-c", "touch slow-started; sleep 30"]
    }
  }
  deploy {
    use "null" {}
  }
}
"#;

fn state(op: &pb::Operation) -> status::State {
    op.status
        .as_ref()
        .map_or(status::State::Unknown, |s| s.state())
}

#[tokio::test]
async fn up_records_every_stage_with_the_job_and_releases() {
    let h = Harness::start(APPS).await;
    let job = h.ok("web", up(1)).await;
    let result = job.result.unwrap();
    assert_eq!(result.release_url, "http://web.example.test");
    for kind in [
        OperationKind::Build,
        OperationKind::PushedArtifact,
        OperationKind::Deployment,
        OperationKind::Release,
    ] {
        let records = h.records("web", kind).await;
        assert_eq!(records.len(), 1, "{kind:?}: {records:?}");
        assert_eq!(records[0].job_id, job.id, "{kind:?}");
        assert_eq!(state(&records[0]), status::State::Success, "{kind:?}");
    }
    let deployment = &h.records("web", OperationKind::Deployment).await[0];
    assert_eq!(deployment.physical_state(), PhysicalState::Created);
    assert!(h.records("web", OperationKind::Release).await[0].live);
}

#[tokio::test]
async fn a_mapper_is_inserted_between_mismatched_types() {
    let h = Harness::start(APPS).await;
    let job = h.ok("mapped", up(1)).await;
    let out = h.output(&job.id).await;
    assert!(
        out.contains("Mapping wayline.test.Text with text-to-null"),
        "{out}"
    );
    let deployment = &h.records("mapped", OperationKind::Deployment).await[0];
    assert_eq!(state(deployment), status::State::Success);
}

#[tokio::test]
async fn hooks_run_around_stages_and_on_failure_decides() {
    let h = Harness::start(APPS).await;
    let job = h.run("hooked", up(1)).await;
    assert_eq!(job.state(), State::Error);
    assert_eq!(
        job.error.unwrap().message,
        "hook `false` exited with exit status: 1"
    );
    let out = h.output(&job.id).await;
    // The failing before-build hook is allowed to fail; the after-build hook runs.
    assert!(out.contains("before-build"), "{out}");
    assert!(
        out.contains(
            "hook `sh -c echo before-build; exit 3` exited with exit status: 3 (continuing)"
        ),
        "{out}"
    );
    assert!(out.contains("after-build"), "{out}");
    // The deploy's before hook failed: the platform was never called, and the deployment the
    // job declared is finished as an error that left nothing behind.
    let deployment = &h.records("hooked", OperationKind::Deployment).await[0];
    assert_eq!(state(deployment), status::State::Error, "{deployment:?}");
    assert_eq!(deployment.physical_state(), PhysicalState::Destroyed);
}

#[tokio::test]
async fn a_failing_platform_fails_the_job_and_its_deployment() {
    let h = Harness::start(APPS).await;
    let job = h.run("broken", up(1)).await;
    assert_eq!(job.state(), State::Error);
    assert_eq!(
        job.error.unwrap().message,
        "deploy failed: no capacity left"
    );
    let deployment = &h.records("broken", OperationKind::Deployment).await[0];
    assert_eq!(state(deployment), status::State::Error);
    assert_eq!(deployment.physical_state(), PhysicalState::Destroyed);
    assert!(h.records("broken", OperationKind::Release).await.is_empty());
}

#[tokio::test]
async fn prune_keeps_the_retained_deployments_and_rollback_goes_back_one() {
    let h = Harness::start(APPS).await;
    for _ in 0..3 {
        h.ok("web", up(1)).await;
    }
    let deployments = h.records("web", OperationKind::Deployment).await;
    let physical: Vec<(u64, PhysicalState)> = deployments
        .iter()
        .map(|d| (d.sequence, d.physical_state()))
        .collect();
    assert_eq!(
        physical,
        vec![
            (3, PhysicalState::Created),
            (2, PhysicalState::Created),
            (1, PhysicalState::Destroyed),
        ]
    );
    h.ok(
        "web",
        pb::job::Operation::Release(pb::ReleaseOp {
            rollback: true,
            ..Default::default()
        }),
    )
    .await;
    let releases = h.records("web", OperationKind::Release).await;
    let live = releases.iter().find(|r| r.live).expect("a live release");
    assert_eq!(live.deployment_id, deployments[1].id, "v2 is live again");
}

#[tokio::test]
async fn a_job_cancelled_mid_stage_stops_and_leaves_nothing_running() {
    let h = Harness::start(APPS).await;
    let id = h.queue(h.job("slow", up(1))).await;
    let marker = h.project.join("slow-started");
    let started = std::time::Instant::now();
    while !marker.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the hook never started: {:?}",
            h.get_job(&id).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.client
        .clone()
        .cancel_job(pb::CancelJobRequest {
            job_id: id.clone(),
            force: false,
        })
        .await
        .expect("cancel");
    let job = h
        .wait_for(&id, "ended", |j| wayline_core::jobs::is_terminal(j.state()))
        .await;
    assert_ne!(job.state(), State::Success, "{job:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the 30 s hook was not stopped"
    );
    assert!(
        h.records("slow", OperationKind::Deployment)
            .await
            .is_empty()
    );
}
