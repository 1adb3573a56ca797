//! Projects, workspaces and hostnames.

use std::process::ExitCode;

use anyhow::{Result, bail};
use wayline_core::pb::{self, data_source};

use super::{Env, describe_status};
use crate::cli::{HostnameCmd, ProjectCmd, WorkspaceCmd};
use crate::render;
use crate::render::{note, say};
use crate::session;

fn err(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(describe_status(&s))
}

/// The project named by the argument, `-project`, or the config file.
fn project_name(env: &Env, given: Option<String>) -> Result<String> {
    if let Some(n) = given.or_else(|| env.global.project.clone()) {
        return Ok(n);
    }
    Ok(super::ops::target(env)?.project)
}

/// Credentials for a git data source: an SSH key file, or a user name and password.
fn git_auth(
    private_key_path: Option<std::path::PathBuf>,
    username: Option<String>,
    password: Option<String>,
) -> Result<Option<data_source::git::Auth>> {
    Ok(if let Some(key) = private_key_path {
        Some(data_source::git::Auth::Ssh(data_source::Ssh {
            private_key_pem: fs_err::read(key)?,
            ..Default::default()
        }))
    } else {
        username.map(|username| {
            data_source::git::Auth::Basic(data_source::Basic {
                username,
                password: password.unwrap_or_default(),
            })
        })
    })
}

/// The `-config-file` to store with the project (checked to parse first), and its format.
fn config_file_of(path: Option<std::path::PathBuf>) -> Result<(Vec<u8>, i32)> {
    Ok(match path {
        Some(p) => {
            let text = fs_err::read(&p)?;
            let format = wayline_config::Format::from_path(&p);
            let src = String::from_utf8_lossy(&text).into_owned();
            if let Err(d) = wayline_config::parse_str(&src, &p.display().to_string(), format) {
                bail!("{d}");
            }
            let f = if format == wayline_config::Format::Json {
                pb::ConfigFormat::Json
            } else {
                pb::ConfigFormat::Hcl
            };
            (text, f as i32)
        }
        None => (Vec::new(), 0),
    })
}

/// `project list`: each project and its apps.
fn print_projects(env: &Env, projects: &[pb::Project]) {
    if env.global.json {
        let v: Vec<_> = projects
            .iter()
            .map(|p| serde_json::json!({"name": p.name, "apps": p.applications.iter().map(|a| a.name.clone()).collect::<Vec<_>>()}))
            .collect();
        render::json(&serde_json::Value::Array(v));
    } else if projects.is_empty() {
        say!("No projects yet; `wayline init` in a project folder registers one.");
    } else {
        let rows: Vec<Vec<String>> = projects
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    p.applications
                        .iter()
                        .map(|a| a.name.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect();
        render::table(&["PROJECT", "APPS"], &rows);
    }
}

/// `project inspect`: the project, its apps, data source and whether a config file is stored.
fn print_project(env: &Env, p: &pb::Project) {
    let source = match p.data_source.as_ref().and_then(|d| d.source.as_ref()) {
        Some(data_source::Source::Git(g)) => format!("git {} (ref {})", g.url, g.r#ref),
        _ => "local".to_owned(),
    };
    if env.global.json {
        render::json(&serde_json::json!({
            "name": p.name, "apps": p.applications.iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
            "data_source": source, "has_config_file": !p.config_file.is_empty(),
        }));
    } else {
        let apps: Vec<&str> = p.applications.iter().map(|a| a.name.as_str()).collect();
        render::fields(&[
            ("Project", p.name.clone()),
            ("Apps", apps.join(", ")),
            ("Data source", source),
            (
                "Config file",
                if p.config_file.is_empty() {
                    "not stored"
                } else {
                    "stored on the server"
                }
                .to_owned(),
            ),
        ]);
    }
}

/// `project destroy`: asks first (unless `-auto-approve`), destroys the project's deployments
/// (unless `-skip-destroy-resources`), then deletes the project.
async fn destroy(
    env: &Env,
    session: &mut session::Session,
    name: Option<String>,
    skip_destroy_resources: bool,
    auto_approve: bool,
) -> Result<ExitCode> {
    let name = project_name(env, name)?;
    if !auto_approve
        && !render::confirm(
            &format!(
                "Delete project `{}` and everything the server knows of it?",
                render::safe(&name)
            ),
            "-auto-approve",
        )?
    {
        note!("Nothing was deleted.");
        return Ok(ExitCode::FAILURE);
    }
    if !skip_destroy_resources {
        let code =
            super::ops::destroy(env, crate::cli::OpFlags::default(), true, Vec::new()).await?;
        if code != ExitCode::SUCCESS {
            bail!(
                "destroying the deployments of `{name}` failed; the project was kept (use -skip-destroy-resources to delete it anyway)"
            );
        }
    }
    session
        .client
        .destroy_project(pb::DestroyProjectRequest {
            project: name.clone(),
            skip_destroy_resources,
        })
        .await
        .map_err(err)?;
    say!("Project `{name}` deleted.");
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn project(env: &Env, cmd: ProjectCmd) -> Result<ExitCode> {
    let mut session = session::connect().await?;
    match cmd {
        ProjectCmd::Apply {
            name,
            data_source,
            git_url,
            git_ref,
            git_path,
            git_username,
            git_password,
            git_private_key_path,
            config_file,
        } => {
            let source = match data_source.as_str() {
                "local" => None,
                "git" => {
                    let Some(url) = git_url else {
                        bail!("-data-source=git needs -git-url")
                    };
                    let auth = git_auth(git_private_key_path, git_username, git_password)?;
                    Some(pb::DataSource {
                        source: Some(data_source::Source::Git(data_source::Git {
                            url,
                            r#ref: git_ref,
                            path: git_path.unwrap_or_default(),
                            auth,
                            recurse_submodules: false,
                        })),
                    })
                }
                other => bail!("-data-source takes `local` or `git`, not `{other}`"),
            };
            let (config_file, config_format) = config_file_of(config_file)?;
            let project = pb::Project {
                name: name.clone(),
                data_source: source,
                config_file,
                config_format,
                ..Default::default()
            };
            session
                .client
                .upsert_project(pb::UpsertProjectRequest {
                    project: Some(project),
                })
                .await
                .map_err(err)?;
            say!("Project `{name}` applied.");
        }
        ProjectCmd::List => {
            let projects = session
                .client
                .list_projects(())
                .await
                .map_err(err)?
                .into_inner()
                .projects;
            print_projects(env, &projects);
        }
        ProjectCmd::Inspect { name } => {
            let name = project_name(env, name)?;
            let p = session
                .client
                .get_project(pb::GetProjectRequest { project: name })
                .await
                .map_err(err)?
                .into_inner();
            print_project(env, &p);
        }
        ProjectCmd::Destroy {
            name,
            skip_destroy_resources,
            auto_approve,
        } => {
            return destroy(
                env,
                &mut session,
                name,
                skip_destroy_resources,
                auto_approve,
            )
            .await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn workspace(env: &Env, cmd: WorkspaceCmd) -> Result<ExitCode> {
    let mut session = session::connect().await?;
    match cmd {
        WorkspaceCmd::List => {
            let ws = session
                .client
                .list_workspaces(pb::ListWorkspacesRequest {})
                .await
                .map_err(err)?
                .into_inner()
                .workspaces;
            if env.global.json {
                let v: Vec<_> = ws.iter().map(|w| serde_json::json!({"name": w.name, "projects": w.projects.iter().map(|p| p.project.clone()).collect::<Vec<_>>()})).collect();
                render::json(&serde_json::Value::Array(v));
            } else {
                let current = super::ops::workspace(env);
                let rows: Vec<Vec<String>> = ws
                    .iter()
                    .map(|w| {
                        vec![
                            if w.name == current {
                                "*".into()
                            } else {
                                String::new()
                            },
                            w.name.clone(),
                            w.projects
                                .iter()
                                .map(|p| p.project.clone())
                                .collect::<Vec<_>>()
                                .join(", "),
                        ]
                    })
                    .collect();
                render::table(&["", "WORKSPACE", "PROJECTS"], &rows);
            }
        }
        WorkspaceCmd::Inspect { name } => {
            let name = name.unwrap_or_else(|| super::ops::workspace(env));
            let w = session
                .client
                .get_workspace(pb::GetWorkspaceRequest { name })
                .await
                .map_err(err)?
                .into_inner();
            let projects: Vec<String> = w.projects.iter().map(|p| p.project.clone()).collect();
            if env.global.json {
                render::json(&serde_json::json!({"name": w.name, "projects": projects}));
            } else {
                let mut rows = vec![
                    ("Workspace", w.name.clone()),
                    ("Projects", projects.join(", ")),
                ];
                if let Some(t) = &w.active_time {
                    rows.push(("Active", wayline_core::time::ago(t)));
                }
                render::fields(&rows);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn hostname(env: &Env, cmd: HostnameCmd) -> Result<ExitCode> {
    let mut session = session::connect().await?;
    match cmd {
        HostnameCmd::List => {
            let hs = session
                .client
                .list_hostnames(pb::ListHostnamesRequest { application: None })
                .await
                .map_err(err)?
                .into_inner()
                .hostnames;
            if env.global.json {
                let v: Vec<_> = hs.iter().map(|h| serde_json::json!({"hostname": h.hostname, "fqdn": h.fqdn, "app": h.application.as_ref().map(|a| a.application.clone())})).collect();
                render::json(&serde_json::Value::Array(v));
            } else {
                let rows: Vec<Vec<String>> = hs
                    .iter()
                    .map(|h| {
                        vec![
                            h.hostname.clone(),
                            h.fqdn.clone(),
                            h.application
                                .as_ref()
                                .map(|a| a.application.clone())
                                .unwrap_or_default(),
                        ]
                    })
                    .collect();
                render::table(&["HOSTNAME", "FQDN", "APP"], &rows);
            }
        }
        HostnameCmd::Register { hostname } => {
            let t = super::ops::target(env)?;
            let h = session
                .client
                .create_hostname(pb::CreateHostnameRequest {
                    hostname: hostname.unwrap_or_default(),
                    application: Some(pb::r#ref::Application {
                        project: t.project,
                        application: t.app,
                    }),
                    workspace: t.workspace,
                    deployment_id: String::new(),
                })
                .await
                .map_err(err)?
                .into_inner();
            say!("Registered hostname `{}` ({}).", h.hostname, h.fqdn);
        }
        HostnameCmd::Delete { hostname } => {
            session
                .client
                .delete_hostname(pb::DeleteHostnameRequest {
                    hostname: hostname.clone(),
                })
                .await
                .map_err(err)?;
            say!("Deleted hostname `{hostname}`.");
        }
    }
    Ok(ExitCode::SUCCESS)
}
