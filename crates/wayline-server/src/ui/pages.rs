//! The pages as pure functions of what the handlers read from the store.

use std::fmt::Write as _;

use wayline_proto::v1 as pb;

use super::html::{app_href, commit, esc, job_link, page, table, time, url_link};
use super::output::Line;

/// One application's row on the index page.
#[derive(Debug, Default)]
pub(crate) struct AppSummary {
    /// Application name.
    pub(crate) name: String,
    /// The newest deployment in the workspace.
    pub(crate) deployment: Option<pb::Operation>,
    /// The live release in the workspace.
    pub(crate) release: Option<pb::Operation>,
    /// The newest job in the workspace.
    pub(crate) job: Option<pb::Job>,
}

/// One project on the index page.
#[derive(Debug, Default)]
pub(crate) struct ProjectSummary {
    /// Project name.
    pub(crate) name: String,
    /// Its applications, by name.
    pub(crate) apps: Vec<AppSummary>,
}

/// Everything the application page shows.
#[derive(Debug, Default)]
pub(crate) struct AppDetail {
    /// Project name.
    pub(crate) project: String,
    /// Application name.
    pub(crate) app: String,
    /// Workspace shown.
    pub(crate) workspace: String,
    /// Releases, newest first.
    pub(crate) releases: Vec<pb::Operation>,
    /// Deployments, newest first.
    pub(crate) deployments: Vec<pb::Operation>,
    /// Builds, newest first.
    pub(crate) builds: Vec<pb::Operation>,
    /// Jobs, newest first.
    pub(crate) jobs: Vec<pb::Job>,
}

fn op_state(op: &pb::Operation) -> String {
    let state = op
        .status
        .as_ref()
        .and_then(|s| pb::status::State::try_from(s.state).ok())
        .unwrap_or(pb::status::State::Unknown);
    let (name, class) = match state {
        pb::status::State::Unknown => ("unknown", ""),
        pb::status::State::Running => ("running", ""),
        pb::status::State::Success => ("success", "success"),
        pb::status::State::Error => ("error", "error"),
    };
    format!("<span class=\"{class}\">{name}</span>")
}

fn physical(op: &pb::Operation) -> &'static str {
    match pb::PhysicalState::try_from(op.physical_state) {
        Ok(pb::PhysicalState::Pending) => "pending",
        Ok(pb::PhysicalState::Created) => "created",
        Ok(pb::PhysicalState::Destroyed) => "destroyed",
        Ok(pb::PhysicalState::Unspecified) | Err(_) => "",
    }
}

fn completed(op: &pb::Operation) -> String {
    time(op.status.as_ref().and_then(|s| s.complete_time.as_ref()))
}

fn job_state(job: &pb::Job) -> String {
    let state = pb::job::State::try_from(job.state).unwrap_or(pb::job::State::Unknown);
    let class = match state {
        pb::job::State::Success => "success",
        pb::job::State::Error => "error",
        _ => "",
    };
    format!(
        "<span class=\"{class}\">{}</span>",
        wayline_core::jobs::state_name(state)
    )
}

fn labels(labels: &std::collections::HashMap<String, String>) -> String {
    let mut pairs: Vec<_> = labels.iter().collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| esc(&format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `/`: every project with its applications' latest deployment, live release and last job.
pub(crate) fn index(workspace: &str, projects: &[ProjectSummary], more: usize) -> String {
    let mut body = format!(
        "<h1>Projects</h1>\n<p class=\"muted\">Workspace {}</p>\n",
        esc(workspace)
    );
    if projects.is_empty() {
        body.push_str(
            "<p>No projects yet. Run <code>wayline init</code> in a project directory.</p>\n",
        );
    }
    for p in projects {
        let _ = writeln!(body, "<h2>{}</h2>", esc(&p.name));
        let rows: Vec<Vec<String>> = p
            .apps
            .iter()
            .map(|a| {
                let d = a.deployment.as_ref();
                let r = a.release.as_ref();
                vec![
                    format!(
                        "<a href=\"{}\">{}</a>",
                        esc(&app_href(&p.name, &a.name, workspace)),
                        esc(&a.name)
                    ),
                    d.map(|d| {
                        format!(
                            "v{} {} {} {}",
                            d.sequence,
                            op_state(d),
                            physical(d),
                            commit(d.provenance.as_ref())
                        )
                    })
                    .unwrap_or_default(),
                    r.map(|r| format!("v{} {}", r.sequence, url_link(&r.url)))
                        .unwrap_or_default(),
                    a.job
                        .as_ref()
                        .map(|j| format!("{} {}", job_state(j), job_link(&j.id)))
                        .unwrap_or_default(),
                ]
            })
            .collect();
        body.push_str(&table(
            &[
                "Application",
                "Latest deployment",
                "Live release",
                "Last job",
            ],
            &rows,
            "No applications.",
        ));
    }
    if more > 0 {
        let _ = writeln!(body, "<p class=\"muted\">…and {more} more projects.</p>");
    }
    page("Projects", &body)
}

/// `/projects/{project}/apps/{app}`: releases, deployments, builds and recent jobs.
pub(crate) fn app(d: &AppDetail) -> String {
    let mut body = format!(
        "<h1>{} / {}</h1>\n<p class=\"muted\">Workspace {}</p>\n",
        esc(&d.project),
        esc(&d.app),
        esc(&d.workspace)
    );
    body.push_str("<h2>Releases</h2>\n");
    let rows: Vec<Vec<String>> = d
        .releases
        .iter()
        .map(|r| {
            vec![
                format!("v{}", r.sequence),
                if r.live {
                    "<span class=\"live\">● live</span>".to_owned()
                } else {
                    String::new()
                },
                op_state(r),
                url_link(&r.url),
                commit(r.provenance.as_ref()),
                labels(&r.labels),
                completed(r),
            ]
        })
        .collect();
    body.push_str(&table(
        &[
            "Version",
            "Live",
            "State",
            "URL",
            "Commit",
            "Labels",
            "Completed",
        ],
        &rows,
        "No releases.",
    ));
    body.push_str("<h2>Deployments</h2>\n");
    let rows: Vec<Vec<String>> = d
        .deployments
        .iter()
        .map(|o| {
            vec![
                format!("v{}", o.sequence),
                op_state(o),
                physical(o).to_owned(),
                commit(o.provenance.as_ref()),
                url_link(&o.url),
                labels(&o.labels),
                completed(o),
            ]
        })
        .collect();
    body.push_str(&table(
        &[
            "Version",
            "State",
            "Physical",
            "Commit",
            "URL",
            "Labels",
            "Completed",
        ],
        &rows,
        "No deployments.",
    ));
    body.push_str("<h2>Builds</h2>\n");
    let rows: Vec<Vec<String>> = d
        .builds
        .iter()
        .map(|o| {
            vec![
                format!("v{}", o.sequence),
                op_state(o),
                esc(o.component.as_ref().map_or("", |c| c.name.as_str())),
                commit(o.provenance.as_ref()),
                labels(&o.labels),
                completed(o),
            ]
        })
        .collect();
    body.push_str(&table(
        &[
            "Version",
            "State",
            "Builder",
            "Commit",
            "Labels",
            "Completed",
        ],
        &rows,
        "No builds.",
    ));
    body.push_str("<h2>Jobs</h2>\n");
    let rows: Vec<Vec<String>> = d
        .jobs
        .iter()
        .map(|j| {
            vec![
                job_link(&j.id),
                esc(wayline_core::jobs::operation_name(j.operation.as_ref())),
                job_state(j),
                job_note(j),
                time(j.queue_time.as_ref()),
            ]
        })
        .collect();
    body.push_str(&table(
        &[
            "Job",
            "Operation",
            "State",
            "Wait reason or error",
            "Queued",
        ],
        &rows,
        "No jobs.",
    ));
    page(&format!("{}/{}", d.project, d.app), &body)
}

fn job_note(j: &pb::Job) -> String {
    match &j.error {
        Some(e) if !e.message.is_empty() => {
            format!("<span class=\"error\">{}</span>", esc(&e.message))
        }
        _ => esc(&j.wait_reason),
    }
}

/// `/jobs/{id}`: the job's fields and its stored output.
pub(crate) fn job(j: &pb::Job, output: &[Line]) -> String {
    let app = j.application.clone().unwrap_or_default();
    let mut body = format!("<h1>Job {}</h1>\n", esc(&j.id));
    let app_cell = if app.project.is_empty() {
        String::new()
    } else {
        format!(
            "<a href=\"{}\">{} / {}</a>",
            esc(&app_href(&app.project, &app.application, &j.workspace)),
            esc(&app.project),
            esc(&app.application)
        )
    };
    let fields = [
        ("Application", app_cell),
        ("Workspace", esc(&j.workspace)),
        (
            "Operation",
            esc(wayline_core::jobs::operation_name(j.operation.as_ref())),
        ),
        ("State", job_state(j)),
        ("Wait reason or error", job_note(j)),
        ("Runner", esc(&j.assigned_runner_id)),
        ("Commit", commit(j.provenance.as_ref())),
        ("Labels", labels(&j.labels)),
        ("Queued", time(j.queue_time.as_ref())),
        ("Completed", time(j.complete_time.as_ref())),
    ];
    body.push_str("<table><tbody>\n");
    for (name, value) in fields {
        let _ = writeln!(body, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    body.push_str("</tbody></table>\n<h2>Output</h2>\n");
    if output.is_empty() {
        body.push_str("<p class=\"muted\">No output.</p>\n");
    } else {
        body.push_str("<pre>");
        for l in output {
            if l.class.is_empty() {
                let _ = writeln!(body, "{}", esc(&l.text));
            } else {
                let _ = writeln!(body, "<span class=\"{}\">{}</span>", l.class, esc(&l.text));
            }
        }
        body.push_str("</pre>\n");
    }
    page(&format!("Job {}", j.id), &body)
}

/// The page for a missing record or a failed read.
pub(crate) fn message(title: &str, text: &str) -> String {
    page(
        title,
        &format!("<h1>{}</h1>\n<p>{}</p>\n", esc(title), esc(text)),
    )
}

/// The 401 page.
pub(crate) fn unauthorized(reason: &str) -> String {
    page(
        "Sign in",
        &format!(
            "<h1>Sign in</h1>\n<p>{}</p>\n<p>Sign-in links are good for one hour. To get a new one, run \
             <code>wayline ui</code> in a terminal where <code>wayline</code> reaches this server: it opens \
             the UI in your browser, signed in (<code>wayline ui -no-browser</code> prints the link \
             instead).</p>\n",
            esc(reason)
        ),
    )
}
