//! A project's data source settings: where remote runners get its files (the CLI's folder, a
//! local path on the runner, or a git repository at a ref) and whether the server polls it.
//! Shown on the project page and changed with one form (`UpsertProject`, like
//! `wayline project apply`); git credentials stay as they are and are never shown.

use axum::Form;
use axum::extract::Path;
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use serde::Deserialize;
use wayline_proto::v1 as pb;
use wayline_proto::v1::data_source::{self, Source};

use super::Viewer;
use super::api::{Page, UiError};
use super::layout::{Ctx, project_path};

/// Longest URL, ref or path accepted from the form.
const MAX_FIELD: usize = 2048;

/// The data source as a definition list, then the form that changes it.
pub(crate) fn section(ctx: &Ctx, p: &pb::Project) -> Markup {
    let source = p.data_source.as_ref().and_then(|d| d.source.as_ref());
    let git = match source {
        Some(Source::Git(g)) => Some(g),
        _ => None,
    };
    let local = match source {
        Some(Source::Local(l)) => l.path.as_str(),
        _ => "",
    };
    let kind = match source {
        Some(Source::Git(_)) => "git",
        Some(Source::Local(_)) => "local",
        None => "",
    };
    html! {
        dl {
            @match source {
                Some(Source::Git(g)) => {
                    dt { "Type" } dd { "git" }
                    dt { "URL" } dd { code { (g.url) } }
                    dt { "Ref" } dd { code { (if g.r#ref.is_empty() { "HEAD" } else { &g.r#ref }) } }
                    @if !g.path.is_empty() { dt { "Path" } dd { code { (g.path) } } }
                    dt { "Auth" } dd { (if g.auth.is_some() { "set (not shown)" } else { "none" }) }
                }
                Some(Source::Local(l)) => { dt { "Type" } dd { "local" } @if !l.path.is_empty() { dt { "Path" } dd { code { (l.path) } } } }
                None => { dt { "Type" } dd { "local (the CLI's folder)" } }
            }
            dt { "Poll" }
            dd { @if p.poll_enabled { "every " (if p.poll_interval.is_empty() { "default interval" } else { &p.poll_interval }) } @else { "off" } }
        }
        details {
            summary { "Change the data source" }
            form.row method="post" action={ (project_path(&p.name)) "/source" (ctx.ws_query()) } {
                (ctx.csrf_field())
                label { "Type" select name="kind" {
                    option value="" selected[kind.is_empty()] { "the CLI's folder" }
                    option value="local" selected[kind == "local"] { "local path on the runner" }
                    option value="git" selected[kind == "git"] { "git" }
                } }
                label { "Local path" input name="local_path" value=(local) maxlength=(MAX_FIELD); }
                label { "Git URL" input name="git_url" value=[git.map(|g| &g.url)] maxlength=(MAX_FIELD); }
                label { "Git ref" input name="git_ref" value=[git.map(|g| &g.r#ref)] placeholder="HEAD" maxlength=(MAX_FIELD); }
                label { "Path in the repository" input name="git_path" value=[git.map(|g| &g.path)] maxlength=(MAX_FIELD); }
                label.check { input type="checkbox" name="poll" value="1" checked[p.poll_enabled]; "Poll for changes" }
                label { "Poll interval" input name="poll_interval" value=(p.poll_interval) placeholder="30s" maxlength="32"; }
                button type="submit" { "Save data source" }
            }
        }
    }
}

/// The data source form.
#[derive(Debug, Deserialize)]
pub(crate) struct SourceForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    local_path: String,
    #[serde(default)]
    git_url: String,
    #[serde(default)]
    git_ref: String,
    #[serde(default)]
    git_path: String,
    #[serde(default)]
    poll: String,
    #[serde(default)]
    poll_interval: String,
}

impl SourceForm {
    /// The data source the form asks for; git auth carries over when the URL stays the same.
    fn source(&self, old: Option<&pb::DataSource>) -> Result<Option<pb::DataSource>, UiError> {
        for (name, v) in [
            ("local path", &self.local_path),
            ("git URL", &self.git_url),
            ("git ref", &self.git_ref),
            ("path", &self.git_path),
        ] {
            if v.len() > MAX_FIELD {
                return Err(UiError::invalid(format!(
                    "The {name} is longer than {MAX_FIELD} characters."
                )));
            }
        }
        let source = match self.kind.as_str() {
            "" => return Ok(None),
            "local" => {
                let path = self.local_path.trim();
                if !std::path::Path::new(path).is_absolute() {
                    return Err(UiError::invalid(
                        "A local data source needs an absolute path on the runner's machine.",
                    ));
                }
                Source::Local(data_source::Local {
                    path: path.to_owned(),
                })
            }
            "git" => {
                let url = self.git_url.trim();
                if url.is_empty() {
                    return Err(UiError::invalid("A git data source needs a URL."));
                }
                let auth = match old.and_then(|d| d.source.as_ref()) {
                    Some(Source::Git(g)) if g.url == url => g.auth.clone(),
                    _ => None,
                };
                Source::Git(data_source::Git {
                    url: url.to_owned(),
                    r#ref: self.git_ref.trim().to_owned(),
                    path: self.git_path.trim().to_owned(),
                    auth,
                    recurse_submodules: false,
                })
            }
            other => {
                return Err(UiError::invalid(format!(
                    "The data source is local or git, not `{other}`."
                )));
            }
        };
        Ok(Some(pb::DataSource {
            source: Some(source),
        }))
    }

    /// The poll interval, checked: empty (the server's default) or a duration such as `5m`.
    fn interval(&self) -> Result<String, UiError> {
        let s = self.poll_interval.trim();
        if s.is_empty() {
            return Ok(String::new());
        }
        match humantime::parse_duration(s) {
            Ok(d) if d.as_secs() >= 1 => Ok(s.to_owned()),
            _ => Err(UiError::invalid(format!(
                "The poll interval `{s}` is not a duration of at least 1s (such as 30s or 5m)."
            ))),
        }
    }
}

/// `POST /projects/{p}/source`: sets the data source and polling.
pub(crate) async fn save(v: Viewer, Path(name): Path<String>, Form(f): Form<SourceForm>) -> Page {
    let Viewer { api, ctx } = v;
    let mut p = api.project(&name).await?;
    let source = f.source(p.data_source.as_ref())?;
    let poll = f.poll == "1";
    if poll
        && source
            .as_ref()
            .is_none_or(|s| !matches!(s.source, Some(Source::Git(_))))
    {
        return Err(UiError::invalid(
            "Polling needs a git data source: there is nothing to poll in a folder.",
        ));
    }
    p.poll_interval = f.interval()?;
    p.data_source = source;
    p.poll_enabled = poll;
    api.upsert_project(p).await?;
    Ok(Redirect::to(&format!("{}#source", ctx.href(&project_path(&name)))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(kind: &str) -> SourceForm {
        SourceForm {
            kind: kind.into(),
            local_path: "/srv/app".into(),
            git_url: "https://git.example.test/a.git".into(),
            git_ref: "main".into(),
            git_path: String::new(),
            poll: String::new(),
            poll_interval: String::new(),
        }
    }

    #[test]
    fn git_auth_carries_over_only_for_the_same_url() {
        let old = pb::DataSource {
            source: Some(Source::Git(data_source::Git {
                url: "https://git.example.test/a.git".into(),
                auth: Some(data_source::git::Auth::Basic(data_source::Basic {
                    username: "u".into(),
                    password: "p".into(),
                })),
                ..Default::default()
            })),
        };
        let kept = form("git").source(Some(&old)).unwrap().unwrap();
        assert!(
            matches!(kept.source, Some(Source::Git(g)) if g.auth.is_some() && g.r#ref == "main")
        );
        let mut other = form("git");
        other.git_url = "https://git.example.test/b.git".into();
        let dropped = other.source(Some(&old)).unwrap().unwrap();
        assert!(matches!(dropped.source, Some(Source::Git(g)) if g.auth.is_none()));
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        assert!(form("").source(None).unwrap().is_none());
        let mut rel = form("local");
        rel.local_path = "relative".into();
        assert!(
            rel.source(None)
                .unwrap_err()
                .0
                .message()
                .contains("absolute")
        );
        assert!(
            form("svn")
                .source(None)
                .unwrap_err()
                .0
                .message()
                .contains("svn")
        );
        let mut f = form("git");
        f.poll_interval = "often".into();
        assert!(f.interval().unwrap_err().0.message().contains("often"));
        f.poll_interval = "5m".into();
        assert_eq!(f.interval().unwrap(), "5m");
    }
}
