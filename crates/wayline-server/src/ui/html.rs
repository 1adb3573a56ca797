//! HTML building blocks: escaping, links, the page layout and tables.
//!
//! Every value from the store passes through [`esc`] (text and attributes) or [`segment`]
//! (URL path segments) before it reaches the page; nothing here emits raw user text.

use std::fmt::Write as _;

use wayline_proto::prost_types::Timestamp;

/// Escapes text for HTML content and double- or single-quoted attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes one URL path segment or query value (everything but RFC 3986 unreserved).
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The app page's path, with the workspace as a query parameter unless it is `default`.
pub(crate) fn app_href(project: &str, app: &str, workspace: &str) -> String {
    let mut href = format!("/projects/{}/apps/{}", segment(project), segment(app));
    if workspace != super::DEFAULT_WORKSPACE {
        let _ = write!(href, "?workspace={}", segment(workspace));
    }
    href
}

/// A link to a job page.
pub(crate) fn job_link(id: &str) -> String {
    format!("<a href=\"/jobs/{}\">{}</a>", segment(id), esc(id))
}

/// A link to an external URL, only for `http(s)` so a stored `javascript:` URL stays text.
pub(crate) fn url_link(url: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        format!("<a href=\"{0}\">{0}</a>", esc(url))
    } else {
        esc(url)
    }
}

/// `2026-11-25T15:04:05Z`, or "" when unset.
pub(crate) fn time(t: Option<&Timestamp>) -> String {
    t.map(|t| humantime::format_rfc3339_seconds(wayline_core::time::to_system(t)).to_string())
        .unwrap_or_default()
}

/// `abc1234` (first 7 characters of a commit) followed by the tag in parentheses.
pub(crate) fn commit(p: Option<&wayline_proto::v1::Provenance>) -> String {
    let Some(p) = p else {
        return String::new();
    };
    let short: String = p.commit.chars().take(7).collect();
    let mut out = format!("<code>{}</code>", esc(&short));
    if !p.tag.is_empty() {
        let _ = write!(out, " ({})", esc(&p.tag));
    }
    if p.dirty {
        out.push_str(" dirty");
    }
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
h1,h2{font-weight:600}h2{margin-top:1.5em}\
table{border-collapse:collapse;margin:.5em 0}\
th,td{border-bottom:1px solid #ddd;padding:.3em .8em;text-align:left;vertical-align:top}\
th{background:#f4f4f4}code,pre{font-family:ui-monospace,monospace}\
pre{background:#f7f7f7;padding:.8em;overflow:auto}\
.live{color:#060;font-weight:600}.error{color:#a00}.success{color:#060}\
.muted{color:#777}nav a{margin-right:1em}";

/// A whole page: title, the shared inline stylesheet and `body` (already HTML).
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{} · Wayline</title><style>{STYLE}</style></head>\
<body><nav><a href=\"/\">Wayline</a></nav>\n{body}\n</body></html>\n",
        esc(title)
    )
}

/// A table whose cells are already HTML.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"muted\">{}</p>\n", esc(empty));
    }
    let mut out = String::from("<table><thead><tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert(\"x\" & 'y')</script>"),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
    }

    #[test]
    fn encodes_path_segments() {
        assert_eq!(segment("web-1_a.b~"), "web-1_a.b~");
        assert_eq!(segment("a/b c<"), "a%2Fb%20c%3C");
        assert_eq!(app_href("p", "web", "default"), "/projects/p/apps/web");
        assert_eq!(
            app_href("p", "web", "stage 1"),
            "/projects/p/apps/web?workspace=stage%201"
        );
    }

    #[test]
    fn only_http_urls_become_links() {
        assert_eq!(
            url_link("https://x.test/?a=1&b=2"),
            "<a href=\"https://x.test/?a=1&amp;b=2\">https://x.test/?a=1&amp;b=2</a>"
        );
        assert_eq!(url_link("javascript:alert(1)"), "javascript:alert(1)");
    }

    #[test]
    fn short_commit_with_tag() {
        let p = wayline_proto::v1::Provenance {
            commit: "0123456789abcdef".into(),
            tag: "v1.2".into(),
            ..Default::default()
        };
        assert_eq!(commit(Some(&p)), "<code>0123456</code> (v1.2)");
        assert_eq!(commit(None), "");
    }
}
