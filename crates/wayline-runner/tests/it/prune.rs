//! The prune after a release as a job of its own: the releasing job ends without it, the prune
//! job waits for the runner it names, and a prune job run again finishes what it started.

use wayline_proto::v1::{self as pb, OperationKind, PhysicalState, job::State};

use crate::harness::Harness;

const APP: &str = r#"project = "p"

app "web" {
  build {
    use "null" {}
  }
  deploy {
    use "null" {}
  }
}
"#;

fn up_pruning_for(runner_id: &str) -> pb::job::Operation {
    pb::job::Operation::Up(pb::UpOp {
        release: true,
        prune: true,
        prune_retain: 0,
        prune_runner_id: runner_id.to_owned(),
    })
}

async fn physical(h: &Harness) -> Vec<(u64, PhysicalState)> {
    h.records("web", OperationKind::Deployment)
        .await
        .iter()
        .map(|d| (d.sequence, d.physical_state()))
        .collect()
}

#[tokio::test]
async fn up_ends_at_the_release_and_leaves_the_prune_to_a_job_for_the_named_runner() {
    let h = Harness::start(APP).await;
    h.ok("web", up_pruning_for("")).await;
    // Nobody runs this runner id: the prune job waits for it, the `up` is done regardless.
    let absent = wayline_core::id::new_id();
    let up = h.ok("web", up_pruning_for(&absent)).await;
    let prune_id = up.result.unwrap_or_default().prune_job_id;
    assert!(!prune_id.is_empty(), "the up names its prune job");
    assert!(
        h.output(&up.id).await.contains(&format!(
            "Pruning deployment v1 continues in the background in job {prune_id}"
        )),
        "{}",
        h.output(&up.id).await
    );
    let prune = h.get_job(&prune_id).await;
    assert!(!wayline_core::jobs::is_terminal(prune.state()), "{prune:?}");
    let Some(pb::job::Operation::Destroy(d)) = &prune.operation else {
        panic!("a destroy job: {prune:?}")
    };
    assert!(d.prune);
    assert_eq!(
        prune.target_runner.unwrap().target,
        Some(pb::target_runner::Target::Id(absent))
    );
    assert_eq!(
        physical(&h).await,
        vec![(2, PhysicalState::Created), (1, PhysicalState::Created)]
    );
    h.client
        .clone()
        .cancel_job(pb::CancelJobRequest {
            job_id: prune_id,
            force: true,
        })
        .await
        .expect("cancel");
}

#[tokio::test]
async fn the_prune_job_destroys_the_older_deployments_and_runs_again_harmlessly() {
    let h = Harness::start(APP).await;
    h.ok("web", up_pruning_for("")).await;
    // The harness's own runner takes the prune job once the up has ended.
    let up = h.ok("web", up_pruning_for(&h.runner_id.clone())).await;
    let prune_id = up.result.unwrap_or_default().prune_job_id;
    let prune = h
        .wait_for(&prune_id, "ended", |j| {
            wayline_core::jobs::is_terminal(j.state())
        })
        .await;
    assert_eq!(prune.state(), State::Success, "{:?}", prune.error);
    assert!(h.output(&prune_id).await.contains("Pruning deployment v1"));
    assert_eq!(
        physical(&h).await,
        vec![(2, PhysicalState::Created), (1, PhysicalState::Destroyed)]
    );
    // The same prune again (a job that ran twice after a crash): nothing left to do.
    let again = h.ok("web", prune.operation.clone().unwrap()).await;
    assert!(
        h.output(&again.id)
            .await
            .contains("Nothing to prune: those deployments are gone already."),
        "{}",
        h.output(&again.id).await
    );
    assert_eq!(
        physical(&h).await,
        vec![(2, PhysicalState::Created), (1, PhysicalState::Destroyed)]
    );
}
