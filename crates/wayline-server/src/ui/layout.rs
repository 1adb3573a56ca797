//! The page layout and the small pieces every page uses: links, times, commits, states.
//!
//! Templates are `maud` markup, so every value from the store is escaped by construction; URL
//! path segments and query values go through [`seg`] (percent-encoding of everything but RFC
//! 3986 unreserved characters) before they become part of an `href`.

use maud::{DOCTYPE, Markup, html};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use wayline_proto::prost_types::Timestamp;
use wayline_proto::v1 as pb;

/// Everything but RFC 3986 unreserved characters is encoded in a path segment or query value.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one URL path segment or query value.
pub(crate) fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// What the layout needs from the request: who is signed in and which workspace is shown.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ctx {
    /// The CSRF token every form carries ("" on pages for strangers).
    pub(crate) csrf: String,
    /// The workspace shown.
    pub(crate) workspace: String,
    /// The workspaces the switcher offers.
    pub(crate) workspaces: Vec<String>,
    /// The path of the page (without query), for the switcher's links.
    pub(crate) path: String,
}

impl Ctx {
    /// `?workspace=…` for links, empty for the default workspace.
    pub(crate) fn ws_query(&self) -> String {
        if self.workspace == super::DEFAULT_WORKSPACE || self.workspace.is_empty() {
            String::new()
        } else {
            format!("?workspace={}", seg(&self.workspace))
        }
    }

    /// A path in this workspace.
    pub(crate) fn href(&self, path: &str) -> String {
        format!("{path}{}", self.ws_query())
    }

    /// The hidden CSRF field of a form.
    pub(crate) fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }
}

/// `/projects/{p}`.
pub(crate) fn project_path(project: &str) -> String {
    format!("/projects/{}", seg(project))
}

/// `/projects/{p}/apps/{a}`.
pub(crate) fn app_path(project: &str, app: &str) -> String {
    format!("/projects/{}/apps/{}", seg(project), seg(app))
}

/// A whole page; `live` adds htmx and its SSE extension for pages that update live.
pub(crate) fn page(ctx: &Ctx, title: &str, live: bool, body: Markup) -> Markup {
    let scripts: &[&str] = if live {
        &["htmx-2.0.11.min.js", "htmx-ext-sse-2.2.4.min.js", "ui.js"]
    } else {
        &[]
    };
    page_with(ctx, title, scripts, &[], body)
}

/// A whole page with these assets (`/ui/assets/…`) in its head.
pub(crate) fn page_with(
    ctx: &Ctx,
    title: &str,
    scripts: &[&str],
    styles: &[&str],
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                // htmx would otherwise add an inline <style>, which the CSP forbids.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false}"#;
                title { (title) " · Wayline" }
                @for s in styles { link rel="stylesheet" href={ "/ui/assets/" (s) }; }
                link rel="stylesheet" href="/ui/assets/app.css";
                @for s in scripts { script src={ "/ui/assets/" (s) } defer {} }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                (nav(ctx))
                main #main { (body) }
            }
        }
    }
}

fn nav(ctx: &Ctx) -> Markup {
    html! {
        header {
            nav aria-label="Main" {
                a.brand href=(ctx.href("/")) { "Wayline" }
                @if !ctx.csrf.is_empty() {
                    a href=(ctx.href("/")) { "Projects" }
                    a href=(ctx.href("/jobs")) { "Jobs" }
                    a href="/runners" { "Runners" }
                    @if !ctx.workspaces.is_empty() {
                        details.switcher {
                            summary { "Workspace: " strong { (ctx.workspace) } }
                            ul {
                                @for w in &ctx.workspaces {
                                    li {
                                        a href={ (ctx.path) "?workspace=" (seg(w)) }
                                            aria-current=[(w == &ctx.workspace).then_some("page")] { (w) }
                                    }
                                }
                            }
                        }
                    }
                    form.inline method="post" action="/signout" {
                        (ctx.csrf_field())
                        button type="submit" { "Sign out" }
                    }
                }
            }
        }
    }
}

/// `2026-11-25T15:04:05Z`, or "" when unset.
pub(crate) fn time(t: Option<&Timestamp>) -> String {
    t.map(|t| humantime::format_rfc3339_seconds(wayline_core::time::to_system(t)).to_string())
        .unwrap_or_default()
}

/// A `<time>` element.
pub(crate) fn when(t: Option<&Timestamp>) -> Markup {
    let s = time(t);
    html! { @if !s.is_empty() { time datetime=(s) { (s) } } }
}

/// Commit hash (short, full in the title), tag, dirty mark and the message's first line.
pub(crate) fn commit(p: Option<&pb::Provenance>) -> Markup {
    let Some(p) = p.filter(|p| !p.commit.is_empty() || !p.tag.is_empty()) else {
        return html! { span.muted { "no commit" } };
    };
    let short: String = p.commit.chars().take(7).collect();
    let first = p.message.lines().next().unwrap_or("");
    html! {
        span.commit {
            code title=(p.commit) { (short) }
            @if !p.tag.is_empty() { " " span.tag { (p.tag) } }
            @if p.dirty { " " span.badge.warning { "dirty" } }
            @if !first.is_empty() { " " span.msg { (first) } }
        }
    }
}

/// Labels as `k=v` chips.
pub(crate) fn labels(l: &std::collections::HashMap<String, String>) -> Markup {
    let mut pairs: Vec<_> = l.iter().collect();
    pairs.sort();
    html! { @for (k, v) in pairs { span.label { (k) "=" (v) } " " } }
}

/// A link to an external URL, only for `http(s)` so a stored `javascript:` URL stays text.
pub(crate) fn url_link(url: &str) -> Markup {
    html! {
        @if url.starts_with("http://") || url.starts_with("https://") {
            a href=(url) { (url) }
        } @else { (url) }
    }
}

/// A job id linked to its page.
pub(crate) fn job_link(id: &str) -> Markup {
    html! { @if !id.is_empty() { a href={ "/jobs/" (seg(id)) } { code { (short_id(id)) } } } }
}

/// The first 10 characters of a ULID (enough to tell jobs apart on one page).
pub(crate) fn short_id(id: &str) -> &str {
    id.get(..10).unwrap_or(id)
}

/// An operation's status as a badge.
pub(crate) fn op_state(op: &pb::Operation) -> Markup {
    let state = op
        .status
        .as_ref()
        .and_then(|s| pb::status::State::try_from(s.state).ok())
        .unwrap_or(pb::status::State::Unknown);
    let (name, class) = match state {
        pb::status::State::Unknown => ("unknown", ""),
        pb::status::State::Running => ("running", "running"),
        pb::status::State::Success => ("success", "success"),
        pb::status::State::Error => ("error", "error"),
    };
    html! { span class={ "badge " (class) } { (name) } }
}

/// Whether the platform has removed it.
pub(crate) fn destroyed(op: &pb::Operation) -> bool {
    op.physical_state == pb::PhysicalState::Destroyed as i32
}

/// Physical state as a word.
pub(crate) fn physical(op: &pb::Operation) -> &'static str {
    match pb::PhysicalState::try_from(op.physical_state) {
        Ok(pb::PhysicalState::Pending) => "pending",
        Ok(pb::PhysicalState::Created) => "created",
        Ok(pb::PhysicalState::Destroyed) => "destroyed",
        Ok(pb::PhysicalState::Unspecified) | Err(_) => "",
    }
}

/// Health as a badge with its message.
pub(crate) fn health(h: i32, message: &str) -> Markup {
    let (name, class) = match pb::Health::try_from(h) {
        Ok(pb::Health::Alive) => ("alive", "success"),
        Ok(pb::Health::Ready) => ("ready", "success"),
        Ok(pb::Health::Down) => ("down", "error"),
        Ok(pb::Health::Missing) => ("missing", "error"),
        Ok(pb::Health::Partial) => ("partial", "warning"),
        Ok(pb::Health::Unknown) | Err(_) => ("unknown", ""),
    };
    html! {
        span class={ "badge " (class) } { (name) }
        @if !message.is_empty() { " " span.muted { (message) } }
    }
}

/// A job's state as a badge.
pub(crate) fn job_state(job: &pb::Job) -> Markup {
    let state = pb::job::State::try_from(job.state).unwrap_or(pb::job::State::Unknown);
    let class = match state {
        pb::job::State::Success => "success",
        pb::job::State::Error => "error",
        pb::job::State::Running => "running",
        pb::job::State::Cancelled | pb::job::State::Waiting | pb::job::State::Queued => "warning",
        pb::job::State::Unknown => "",
    };
    html! { span class={ "badge " (class) } { (wayline_core::jobs::state_name(state)) } }
}

/// The page for a missing record, a refused call or a failed read.
pub(crate) fn message(ctx: &Ctx, title: &str, text: &str) -> Markup {
    page(ctx, title, false, html! { h1 { (title) } p { (text) } })
}

/// An empty-state line.
pub(crate) fn none(text: &str) -> Markup {
    html! { p.muted { (text) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_segments() {
        assert_eq!(seg("web-1_a.b~"), "web-1_a.b~");
        assert_eq!(seg("a/b c<é"), "a%2Fb%20c%3C%C3%A9");
        assert_eq!(app_path("p q", "w"), "/projects/p%20q/apps/w");
    }

    #[test]
    fn markup_is_escaped_and_urls_checked() {
        let p = pb::Provenance {
            commit: "0123456789abcdef".into(),
            tag: "<v1>".into(),
            message: "fix \"it\"\nmore".into(),
            dirty: true,
            ..Default::default()
        };
        let s = commit(Some(&p)).into_string();
        assert!(
            s.contains("<code title=\"0123456789abcdef\">0123456</code>"),
            "{s}"
        );
        assert!(
            s.contains("&lt;v1&gt;") && s.contains("dirty") && s.contains("fix &quot;it&quot;"),
            "{s}"
        );
        assert!(!s.contains("more"), "{s}");
        assert_eq!(
            url_link("javascript:alert(1)").into_string(),
            "javascript:alert(1)"
        );
        assert_eq!(
            url_link("https://x.test/?a=1&b=2").into_string(),
            "<a href=\"https://x.test/?a=1&amp;b=2\">https://x.test/?a=1&amp;b=2</a>"
        );
    }
}
