use wayline_proto::v1 as pb;

use crate::common::*;

fn op(app_name: &str, workspace: &str, commit: &str, state: pb::status::State) -> pb::Operation {
    pb::Operation {
        application: app("p", app_name),
        workspace: workspace.into(),
        status: Some(pb::Status {
            state: state as i32,
            ..Default::default()
        }),
        provenance: Some(pb::Provenance {
            commit: commit.into(),
            ..Default::default()
        }),
        physical_state: pb::PhysicalState::Created as i32,
        ..Default::default()
    }
}

async fn upsert_dep(c: &mut Client, o: pb::Operation) -> pb::Operation {
    c.upsert_deployment(pb::UpsertOperationRequest { operation: Some(o) })
        .await
        .unwrap()
        .into_inner()
}

async fn upsert_rel(c: &mut Client, o: pb::Operation) -> pb::Operation {
    c.upsert_release(pb::UpsertOperationRequest { operation: Some(o) })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn sequences_are_per_app_and_kind_and_stable_on_update() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let ok = pb::status::State::Success;
    let d1 = upsert_dep(&mut c, op("web", "", "abc123", ok)).await;
    let d2 = upsert_dep(&mut c, op("web", "", "abd456", ok)).await;
    let other = upsert_dep(&mut c, op("api", "", "abc123", ok)).await;
    assert_eq!((d1.sequence, d2.sequence, other.sequence), (1, 2, 1));
    assert_eq!(d1.workspace, "default");
    assert_eq!(d1.id.len(), 26);
    let build = c
        .upsert_build(pb::UpsertOperationRequest {
            operation: Some(op("web", "", "abc123", ok)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(build.sequence, 1);
    let mut again = d1.clone();
    again.physical_state = pb::PhysicalState::Destroyed as i32;
    let updated = upsert_dep(&mut c, again).await;
    assert_eq!((updated.id, updated.sequence), (d1.id.clone(), 1));

    let err = c
        .upsert_release(pb::UpsertOperationRequest {
            operation: Some(pb::Operation {
                id: d1.id.clone(),
                ..op("web", "", "", ok)
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        format!("operation {} is a deployment, not a release", d1.id)
    );
    let err = c
        .upsert_deployment(pb::UpsertOperationRequest {
            operation: Some(pb::Operation::default()),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "operation.application is required: set both project and application"
    );

    let list = |commit: &str| pb::ListOperationsRequest {
        application: app("p", "web"),
        commit: commit.into(),
        ..Default::default()
    };
    let all = c
        .list_deployments(list(""))
        .await
        .unwrap()
        .into_inner()
        .operations;
    assert_eq!(
        all.iter().map(|o| o.sequence).collect::<Vec<_>>(),
        vec![2, 1]
    );
    let abc = c
        .list_deployments(list("abc"))
        .await
        .unwrap()
        .into_inner()
        .operations;
    assert_eq!(abc.iter().map(|o| o.sequence).collect::<Vec<_>>(), vec![1]);
    let by_seq = c
        .get_operation(pb::GetOperationRequest {
            kind: pb::OperationKind::Deployment as i32,
            target: Some(pb::get_operation_request::Target::Sequence(
                pb::get_operation_request::BySequence {
                    application: app("p", "web"),
                    sequence: 2,
                },
            )),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_seq.id, d2.id);
    let err = c
        .get_operation(pb::GetOperationRequest {
            kind: pb::OperationKind::Deployment as i32,
            target: Some(pb::get_operation_request::Target::Sequence(
                pb::get_operation_request::BySequence {
                    application: app("p", "web"),
                    sequence: 9,
                },
            )),
        })
        .await
        .unwrap_err();
    assert_eq!(err.message(), "app web has no deployment v9");
}

#[tokio::test]
async fn exactly_one_release_is_live_per_app_and_workspace() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let ok = pb::status::State::Success;
    let r1 = upsert_rel(&mut c, op("web", "", "a1", ok)).await;
    assert!(r1.live);
    let staging = upsert_rel(&mut c, op("web", "staging", "a1", ok)).await;
    assert!(staging.live);
    let failed = upsert_rel(&mut c, op("web", "", "a2", pb::status::State::Error)).await;
    assert!(!failed.live);
    let running = upsert_rel(&mut c, op("web", "", "a3", pb::status::State::Running)).await;
    assert!(!running.live);
    let mut done = running.clone();
    done.status = Some(pb::Status {
        state: ok as i32,
        ..Default::default()
    });
    let done = upsert_rel(&mut c, done).await;
    assert!(done.live);
    let list = c
        .list_releases(pb::ListOperationsRequest {
            application: app("p", "web"),
            all_workspaces: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operations;
    let live: Vec<(u64, String)> = list
        .iter()
        .filter(|o| o.live)
        .map(|o| (o.sequence, o.workspace.clone()))
        .collect();
    assert_eq!(
        live,
        vec![(4, "default".to_owned()), (2, "staging".to_owned())]
    );
    let latest_ok = c
        .get_operation(pb::GetOperationRequest {
            kind: pb::OperationKind::Release as i32,
            target: Some(pb::get_operation_request::Target::Latest(
                pb::get_operation_request::Latest {
                    application: app("p", "web"),
                    workspace: String::new(),
                    success_only: true,
                },
            )),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(latest_ok.id, done.id);
    assert!(done.status.unwrap().complete_time.is_some());
    let ws = c
        .list_workspaces(pb::ListWorkspacesRequest {})
        .await
        .unwrap()
        .into_inner()
        .workspaces;
    assert_eq!(
        ws.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(),
        vec!["default", "staging"]
    );
}

fn var(
    scope: pb::config_var::Scope,
    app_name: &str,
    ws: &str,
    sel: &str,
    name: &str,
    val: &str,
) -> pb::ConfigVar {
    pb::ConfigVar {
        scope: scope as i32,
        project: if scope == pb::config_var::Scope::Global {
            String::new()
        } else {
            "p".into()
        },
        application: app_name.into(),
        workspace: ws.into(),
        label_selector: sel.into(),
        name: name.into(),
        value: Some(pb::config_var::Value::Static(val.into())),
        ..Default::default()
    }
}

#[tokio::test]
async fn config_resolves_by_scope_workspace_and_labels() {
    use pb::config_var::Scope;
    let h = Harness::start().await;
    let mut c = h.client().await;
    c.set_config(pb::SetConfigRequest {
        variables: vec![
            var(Scope::Global, "", "", "", "LOG", "info"),
            var(Scope::Project, "", "", "", "LOG", "debug"),
            var(Scope::App, "web", "", "", "PORT", "8080"),
            var(Scope::App, "web", "prod", "", "PORT", "80"),
            var(Scope::App, "web", "", "region == eu", "DB", "eu-db"),
        ],
    })
    .await
    .unwrap();
    let resolve = |ws: &str, labels: &[(&str, &str)]| pb::GetConfigRequest {
        scope: Scope::App as i32,
        project: "p".into(),
        application: "web".into(),
        workspace: ws.into(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        resolve: true,
        ..Default::default()
    };
    let show = |vars: Vec<pb::ConfigVar>| -> Vec<String> {
        vars.into_iter()
            .map(|v| match v.value {
                Some(pb::config_var::Value::Static(s)) => format!("{}={s}", v.name),
                _ => v.name,
            })
            .collect()
    };
    let got = c
        .get_config(resolve("prod", &[("region", "eu")]))
        .await
        .unwrap()
        .into_inner()
        .variables;
    assert_eq!(show(got), vec!["DB=eu-db", "LOG=debug", "PORT=80"]);
    let got = c
        .get_config(resolve("", &[]))
        .await
        .unwrap()
        .into_inner()
        .variables;
    assert_eq!(show(got), vec!["LOG=debug", "PORT=8080"]);

    let mut bad = var(Scope::App, "web", "", "region = eu", "X", "1");
    let err = c
        .set_config(pb::SetConfigRequest {
            variables: vec![bad.clone()],
        })
        .await
        .unwrap_err();
    assert!(
        err.message()
            .starts_with("config variable X: label selector `region = eu`: column 8:"),
        "{}",
        err.message()
    );
    bad.label_selector.clear();
    bad.value = Some(pb::config_var::Value::Unset(true));
    bad.name = "PORT".into();
    c.set_config(pb::SetConfigRequest {
        variables: vec![bad],
    })
    .await
    .unwrap();
    let got = c
        .get_config(resolve("", &[]))
        .await
        .unwrap()
        .into_inner()
        .variables;
    assert_eq!(show(got), vec!["LOG=debug"]);
}

#[allow(
    clippy::too_many_lines,
    reason = "one scenario in the order a user lives it; split, its steps would lose their order"
)]
#[tokio::test]
async fn projects_hostnames_and_triggers() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let p = c
        .upsert_project(pb::UpsertProjectRequest {
            project: Some(pb::Project {
                name: "shop".into(),
                applications: vec![pb::Application {
                    project: "shop".into(),
                    name: "web".into(),
                }],
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.applications.len(), 1);
    c.upsert_application(pb::UpsertApplicationRequest {
        project: "shop".into(),
        name: "api".into(),
    })
    .await
    .unwrap();
    let p = c
        .get_project(pb::GetProjectRequest {
            project: "shop".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        p.applications
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        vec!["api", "web"]
    );
    let err = c
        .get_project(pb::GetProjectRequest {
            project: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.message(), "project nope does not exist");

    c.upsert_deployment(pb::UpsertOperationRequest {
        operation: Some(pb::Operation {
            application: app("shop", "web"),
            physical_state: pb::PhysicalState::Created as i32,
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    let err = c
        .destroy_project(pb::DestroyProjectRequest {
            project: "shop".into(),
            skip_destroy_resources: false,
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "project shop still has 1 deployment(s) that are not destroyed; run `wayline destroy` first or skip destroying resources"
    );
    c.destroy_project(pb::DestroyProjectRequest {
        project: "shop".into(),
        skip_destroy_resources: true,
    })
    .await
    .unwrap();
    assert!(
        c.list_projects(())
            .await
            .unwrap()
            .into_inner()
            .projects
            .is_empty()
    );

    let host = c
        .create_hostname(pb::CreateHostnameRequest {
            hostname: "shop-web".into(),
            application: app("shop", "web"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(host.fqdn, "shop-web");
    let err = c
        .create_hostname(pb::CreateHostnameRequest {
            hostname: "shop-web".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
    assert_eq!(err.message(), "hostname shop-web is already registered");
    let err = c
        .create_hostname(pb::CreateHostnameRequest {
            hostname: "bad name".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "hostname `bad name` may only contain letters, digits and `-` (and may not start with `-`)"
    );
    c.delete_hostname(pb::DeleteHostnameRequest {
        hostname: "shop-web".into(),
    })
    .await
    .unwrap();
    let err = c
        .delete_hostname(pb::DeleteHostnameRequest {
            hostname: "shop-web".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.message(), "hostname shop-web is not registered");

    let t = c
        .upsert_trigger(pb::UpsertTriggerRequest {
            trigger: Some(pb::Trigger {
                name: "deploy-web".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.id.len(), 26);
    assert_eq!(
        c.list_triggers(()).await.unwrap().into_inner().triggers,
        vec![t]
    );
    let err = c
        .run_pipeline(pb::RunPipelineRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    assert_eq!(
        err.message(),
        "RunPipeline (pipelines) is not available in this version"
    );
}

/// A destroyed deployment is released nowhere: its live release stops being live; the
/// release of another deployment stays live.
#[tokio::test]
async fn destroying_the_released_deployment_ends_its_live_release() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let ok = pb::status::State::Success;
    let d1 = upsert_dep(&mut c, op("web", "", "a1", ok)).await;
    let d2 = upsert_dep(&mut c, op("web", "", "a2", ok)).await;
    let mut rel = op("web", "", "a2", ok);
    rel.deployment_id.clone_from(&d2.id);
    assert!(upsert_rel(&mut c, rel).await.live);

    let mut gone = d1.clone();
    gone.physical_state = pb::PhysicalState::Destroyed as i32;
    upsert_dep(&mut c, gone).await;
    let live = |c: &mut Client| {
        let mut c = c.clone();
        async move {
            c.list_releases(pb::ListOperationsRequest {
                application: app("p", "web"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .operations
            .iter()
            .filter(|r| r.live)
            .count()
        }
    };
    assert_eq!(
        live(&mut c).await,
        1,
        "pruning another deployment keeps the release"
    );

    let mut gone = d2.clone();
    gone.physical_state = pb::PhysicalState::Destroyed as i32;
    upsert_dep(&mut c, gone).await;
    assert_eq!(
        live(&mut c).await,
        0,
        "the released deployment was destroyed"
    );
}

/// Ids are taken by any unique prefix; an ambiguous one names its candidates.
#[tokio::test]
async fn operations_are_found_by_a_unique_id_prefix() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let ok = pb::status::State::Success;
    let d1 = upsert_dep(&mut c, op("web", "", "a1", ok)).await;
    let d2 = upsert_dep(&mut c, op("web", "", "a2", ok)).await;
    let by_id = |id: &str| pb::GetOperationRequest {
        kind: pb::OperationKind::Deployment as i32,
        target: Some(pb::get_operation_request::Target::Id(id.to_owned())),
    };
    let common = d1
        .id
        .chars()
        .zip(d2.id.chars())
        .take_while(|(a, b)| a == b)
        .count();
    let found = c
        .get_operation(by_id(&d2.id[..=common]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.id, d2.id);
    let err = c.get_operation(by_id(&d2.id[..common])).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message()
            .contains("is the start of several deployment ids")
            && err.message().contains(&d1.id),
        "{}",
        err.message()
    );
    // Not a prefix of a release id: kinds do not mix.
    let err = c
        .get_operation(pb::GetOperationRequest {
            kind: pb::OperationKind::Release as i32,
            ..by_id(&d2.id)
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}
