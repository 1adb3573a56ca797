//! The plan the runner carries out for a multi-app file, as the records it makes: one line per
//! record (kind, plugin, state, physical state, sequence), pinned by an insta snapshot.

use std::fmt::Write as _;

use wayline_proto::v1::{OperationKind, PhysicalState};

use crate::harness::{Harness, up};

const MONOREPO: &str = r#"project = "p"

app "api" {
  build {
    use "null" {}
  }
  deploy {
    use "null" {}
  }
}

app "site" {
  build {
    use "text" {
      text = "site"
    }
    registry {
      use "null" {}
    }
  }
  deploy {
    use "null" {}
  }
  release {
    use "null" {
      url = "http://site.example.test"
    }
  }
}
"#;

#[tokio::test]
async fn the_records_of_up_for_each_app_of_a_multi_app_file() {
    let h = Harness::start(MONOREPO).await;
    let mut plan = String::new();
    for app in ["api", "site"] {
        h.ok(app, up(1)).await;
        writeln!(plan, "app {app}").unwrap();
        for kind in [
            OperationKind::Build,
            OperationKind::PushedArtifact,
            OperationKind::Deployment,
            OperationKind::Release,
        ] {
            for r in h.records(app, kind).await {
                let component = r.component.clone().unwrap_or_default();
                writeln!(
                    plan,
                    "  {kind:?} v{} {:?} `{}` state={:?} physical={:?} live={}",
                    r.sequence,
                    component.r#type(),
                    component.name,
                    r.status.as_ref().map(|s| s.state()),
                    PhysicalState::try_from(r.physical_state).unwrap_or_default(),
                    r.live
                )
                .unwrap();
            }
        }
    }
    insta::assert_snapshot!(plan);
}
