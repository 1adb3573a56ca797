//! The short pages the URL service answers itself: unknown host (404), nothing to serve (503),
//! the instance failed (502).

use std::fmt::Write as _;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML of a page with a title, a sentence and optional links to the app's hosts.
pub fn html(status: StatusCode, message: &str, hosts: &[String], port: u16) -> String {
    let title = status.canonical_reason().unwrap_or("Error");
    let mut html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{} {title}</title></head><body>\n<h1>{} {title}</h1>\n<p>{}</p>\n",
        status.as_u16(),
        status.as_u16(),
        escape(message)
    );
    if !hosts.is_empty() {
        html.push_str("<p>Hosts of this app:</p>\n<ul>\n");
        for h in hosts {
            let h = escape(h);
            let _ = writeln!(html, "<li><a href=\"http://{h}:{port}/\">{h}</a></li>");
        }
        html.push_str("</ul>\n");
    }
    html.push_str("<p><small>Wayline URL service</small></p>\n</body></html>\n");
    html
}

/// [`html`] as a response, with the reason in `x-wayline-reason` too.
pub fn page(
    status: StatusCode,
    message: &str,
    hosts: &[String],
    port: u16,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(html(status, message, hosts, port))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&message.replace(['\r', '\n'], " ")) {
        r.headers_mut().insert("x-wayline-reason", v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_and_list_hosts() {
        let hosts = ["web.localhost".to_owned(), "web--v1.localhost".to_owned()];
        let r = page(StatusCode::NOT_FOUND, "no deployment <v9>", &hosts, 9703);
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["x-wayline-reason"], "no deployment <v9>");
        let body = html(StatusCode::NOT_FOUND, "no deployment <v9>", &hosts, 9703);
        assert!(body.contains("no deployment &lt;v9&gt;"), "{body}");
        assert!(
            body.contains("<a href=\"http://web--v1.localhost:9703/\">"),
            "{body}"
        );
    }
}
