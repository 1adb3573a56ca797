//! Static files embedded in the binary: the stylesheet, the small UI script, and the vendored
//! npm packages (htmx 2.0.11, htmx-ext-sse 2.2.4; @xterm/xterm 6.0.0 for the exec page only)
//! with their licences. `scripts/vendor-ui.sh` fetches them again and checks them
//! against the registry's sha512 integrity; `assets/README.md` lists versions and licences.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// (name, content type, bytes).
const FILES: &[(&str, &str, &[u8])] = &[
    ("app.css", "text/css", include_bytes!("assets/app.css")),
    ("ui.js", "text/javascript", include_bytes!("assets/ui.js")),
    (
        "htmx-2.0.11.min.js",
        "text/javascript",
        include_bytes!("assets/htmx-2.0.11.min.js"),
    ),
    (
        "htmx-ext-sse-2.2.4.min.js",
        "text/javascript",
        include_bytes!("assets/htmx-ext-sse-2.2.4.min.js"),
    ),
    (
        "exec.js",
        "text/javascript",
        include_bytes!("assets/exec.js"),
    ),
    (
        "xterm-6.0.0.js",
        "text/javascript",
        include_bytes!("assets/xterm-6.0.0.js"),
    ),
    (
        "xterm-6.0.0.css",
        "text/css",
        include_bytes!("assets/xterm-6.0.0.css"),
    ),
    (
        "xterm.LICENSE",
        "text/plain",
        include_bytes!("assets/xterm.LICENSE"),
    ),
    (
        "htmx.LICENSE",
        "text/plain",
        include_bytes!("assets/htmx.LICENSE"),
    ),
    (
        "htmx-ext-sse.LICENSE",
        "text/plain",
        include_bytes!("assets/htmx-ext-sse.LICENSE"),
    ),
];

/// `GET /ui/assets/{name}`: versioned names, so they may be cached for a day.
pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, ty, body)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(ty)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=86400"),
                ),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::FILES;

    fn size(name: &str) -> usize {
        FILES
            .iter()
            .find(|(n, _, _)| *n == name)
            .map_or_else(|| panic!("no asset {name}"), |(_, _, b)| b.len())
    }

    /// A live page loads these; with its HTML it must stay under 200 KB.
    #[test]
    fn a_live_page_s_assets_leave_room_for_its_html() {
        let total: usize = [
            "app.css",
            "ui.js",
            "htmx-2.0.11.min.js",
            "htmx-ext-sse-2.2.4.min.js",
        ]
        .into_iter()
        .map(size)
        .sum();
        assert!(total < 120 * 1024, "{total} bytes");
    }

    /// Every vendored package ships its licence.
    #[test]
    fn vendored_packages_carry_their_licences() {
        for name in ["htmx", "htmx-ext-sse", "xterm"] {
            assert!(size(&format!("{name}.LICENSE")) > 100, "{name}");
        }
    }
}
