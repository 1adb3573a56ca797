//! Signing in and out, the session cookie and CSRF.
//!
//! The session cookie `wayline_token` holds the token the browser signed in with (HttpOnly,
//! SameSite=Strict, as long-lived as the token). A stranger gets the sign-in page (status 200)
//! on any page: paste a login token, or follow the one-time link `wayline ui` prints, whose
//! `?token=` the server turns into the cookie and drops from the address. A link works once:
//! a second visit (a leaked history entry) is refused.
//!
//! Every POST carries a CSRF token in its form: for a signed-in browser a digest of its session
//! token, for the sign-in form a random value double-submitted in the `wayline_csrf` cookie.
//! A POST whose form lacks it, or carries another, is refused with 403 before any handler runs.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maud::html;
use sha2::{Digest, Sha256};

use super::Ui;
use super::layout::{Ctx, page};
use crate::auth::{Claims, TokenKind};

/// The cookie holding the session's token.
const COOKIE: &str = "wayline_token";
/// The cookie holding the sign-in form's CSRF value.
const PRE_COOKIE: &str = "wayline_csrf";
/// Largest form body read (config values included).
pub(crate) const MAX_FORM: usize = 64 * 1024;
/// Used sign-in links remembered (each until its token expires).
const MAX_USED_LINKS: usize = 10_000;

/// The signed-in browser, put into each request's extensions by [`require_session`].
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The token every service call is made with.
    pub(crate) token: String,
    /// The CSRF token this session's forms carry.
    pub(crate) csrf: String,
}

/// Sign-in links already followed: token id → expiry (ms), so each link works once.
#[derive(Debug, Default)]
pub(crate) struct UsedLinks(std::sync::Mutex<HashMap<String, i64>>);

impl UsedLinks {
    /// Records the link's use; false when it was used before.
    fn first_use(&self, claims: &Claims) -> bool {
        let now = now_ms();
        let mut used = self.0.lock().expect("used links lock");
        used.retain(|_, exp| *exp > now);
        if used.contains_key(&claims.id) {
            return false;
        }
        if used.len() >= MAX_USED_LINKS {
            // Full of unexpired links: refuse rather than forget one (which would re-open it).
            return false;
        }
        // Tokens without expiry are remembered for a day; the server's restart forgets them.
        used.insert(claims.id.clone(), claims.exp.unwrap_or(now + 86_400_000));
        true
    }
}

fn now_ms() -> i64 {
    wayline_core::time::to_millis(&wayline_core::time::now())
}

/// The CSRF token of a session token: a digest, so it reveals nothing of the token.
pub(crate) fn csrf_of(token: &str) -> String {
    let d = Sha256::new()
        .chain_update(b"wayline-ui-csrf\0")
        .chain_update(token.as_bytes())
        .finalize();
    hex::encode(&d[..16])
}

/// A cookie's value.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(name)?.strip_prefix('='))
        .filter(|t| !t.is_empty())
}

/// Verifies a token for a browser session; returns its claims or the sentence saying why not.
/// Login tokens may do everything; runner tokens can look but the service refuses their actions.
fn check(ui: &Ui, token: &str) -> Result<Claims, String> {
    let claims = ui
        .shared
        .tokens
        .verify(token)
        .map_err(|s| format!("The token was refused: {}.", s.message()))?;
    match claims.kind {
        TokenKind::Login | TokenKind::Runner => Ok(claims),
        TokenKind::Invite => Err(
            "An invite token is exchanged for a login token with `wayline login`; sign in with that one."
                .to_owned(),
        ),
        other => Err(format!(
            "The UI needs a login token, not a {} token.",
            other.name()
        )),
    }
}

/// The middleware in front of every page: link → cookie, cookie → [`Session`], stranger →
/// sign-in page; and the CSRF check of every POST.
pub(crate) async fn require_session(
    State(ui): State<Arc<Ui>>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some((token, rest)) = split_token(req.uri().query()) {
        let path = req.uri().path().to_owned();
        return match check(&ui, token) {
            Ok(claims) if ui.used_links.first_use(&claims) => {
                signed_in(&path, &rest, token, claims.exp)
            }
            Ok(_) => signin_page(
                "This sign-in link was already used. Run `wayline ui` for a new one, or paste a token.",
            ),
            Err(reason) => signin_page(&reason),
        };
    }
    let session = match cookie(req.headers(), COOKIE).map(|t| (t, check(&ui, t))) {
        Some((token, Ok(_))) => Session {
            token: token.to_owned(),
            csrf: csrf_of(token),
        },
        Some((_, Err(reason))) => return signin_page(&reason),
        None => return signin_page(""),
    };
    if req.method() == Method::POST {
        req = match csrf_checked(req, &session.csrf).await {
            Ok(r) => r,
            Err(resp) => return resp,
        };
    }
    req.extensions_mut().insert(session);
    next.run(req).await
}

/// Reads the form (bounded), checks its `csrf` field and puts the body back.
async fn csrf_checked(req: Request, expected: &str) -> Result<Request, Response> {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
        return Err(refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form is larger than 64 KiB.",
        ));
    };
    let sent = form_field(&bytes, "csrf");
    if sent.as_deref() != Some(expected) || expected.is_empty() {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "The form's CSRF token is missing or wrong: reload the page and try again.",
        ));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded_pairs(body)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// `application/x-www-form-urlencoded` pairs.
pub(crate) fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    body.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = match p.iter().position(|b| *b == b'=') {
                Some(i) => (&p[..i], &p[i + 1..]),
                None => (p, &b""[..]),
            };
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &[u8]) -> String {
    let plus: Vec<u8> = s
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_encoding::percent_decode(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

fn refused(status: StatusCode, text: &str) -> Response {
    let ctx = Ctx::default();
    (status, super::layout::message(&ctx, "Refused", text)).into_response()
}

/// The token from the query and the rest of the query (raw, as it came).
fn split_token(query: Option<&str>) -> Option<(&str, String)> {
    let query = query?;
    let mut token = None;
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.strip_prefix("token=") {
            // Tokens are `wl1.` + base64url, so they never need percent-decoding.
            Some(t) => token = Some(t),
            None if pair == "token" || pair.is_empty() => {}
            None => rest.push(pair),
        }
    }
    token.map(|t| (t, rest.join("&")))
}

fn session_cookie(token: &str, exp: Option<i64>) -> String {
    let mut c = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(exp) = exp {
        let _ = write!(c, "; Max-Age={}", ((exp - now_ms()) / 1000).max(0));
    }
    c
}

/// Sets the cookie and sends the browser to `path?rest` (on this host).
fn signed_in(path: &str, rest: &str, token: &str, exp: Option<i64>) -> Response {
    // A path starting with `//` would be read as another host.
    let path = if path.starts_with("//") || !path.starts_with('/') || path == "/signin" {
        "/"
    } else {
        path
    };
    let location = if rest.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{rest}")
    };
    match (
        HeaderValue::from_str(&location),
        HeaderValue::from_str(&session_cookie(token, exp)),
    ) {
        (Ok(location), Ok(cookie)) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, location), (header::SET_COOKIE, cookie)],
        )
            .into_response(),
        _ => signin_page("The token is not valid in a cookie."),
    }
}

/// The sign-in page (200): why (if anything went wrong), a token field, how to get a link.
pub(crate) fn signin_page(reason: &str) -> Response {
    let csrf = hex::encode(rand::random::<[u8; 16]>());
    let body = html! {
        section.signin {
            h1 { "Sign in" }
            @if !reason.is_empty() { p.error role="alert" { (reason) } }
            p {
                "Run " code { "wayline ui" } " in a terminal where " code { "wayline" }
                " reaches this server: it opens this page signed in (" code { "wayline ui -print-url" }
                " prints the one-time link instead). Or paste a login token ("
                code { "wayline user token" } "):"
            }
            form method="post" action="/signin" {
                input type="hidden" name="csrf" value=(csrf);
                label { "Token" textarea name="token" required autocomplete="off" spellcheck="false" {} }
                p { button type="submit" { "Sign in" } }
            }
        }
    };
    let cookie = format!("{PRE_COOKIE}={csrf}; Path=/signin; HttpOnly; SameSite=Strict");
    let mut r = page(&Ctx::default(), "Sign in", false, body).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `GET /signin`.
pub(crate) async fn signin_form() -> Response {
    signin_page("")
}

/// `POST /signin`: the pasted token (double-submit CSRF with the pre-session cookie).
pub(crate) async fn signin_post(State(ui): State<Arc<Ui>>, req: Request) -> Response {
    let expected = cookie(req.headers(), PRE_COOKIE).unwrap_or("").to_owned();
    let req = match csrf_checked(req, &expected).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let Ok(bytes) = axum::body::to_bytes(req.into_body(), MAX_FORM).await else {
        return signin_page("The form could not be read.");
    };
    let token = form_field(&bytes, "token").unwrap_or_default();
    let token = token.trim();
    if token.is_empty() {
        return signin_page("Paste a token first.");
    }
    match check(&ui, token) {
        Ok(claims) => signed_in("/", "", token, claims.exp),
        Err(reason) => signin_page(&reason),
    }
}

/// `POST /signout`: clears the cookie; a link's token (minted only for this browser) is revoked.
pub(crate) async fn signout(State(ui): State<Arc<Ui>>, req: Request) -> Response {
    if let Some(token) = cookie(req.headers(), COOKIE)
        && let Ok(claims) = ui.shared.tokens.verify(token)
        && ui
            .used_links
            .0
            .lock()
            .expect("used links lock")
            .contains_key(&claims.id)
    {
        ui.shared.tokens.revoke(&claims.id);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, HeaderValue::from_static("/signin")),
            (
                header::SET_COOKIE,
                HeaderValue::from_static(
                    "wayline_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
                ),
            ),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_taken_out_of_the_query() {
        assert_eq!(
            split_token(Some("token=wl1.a.b&workspace=dev")),
            Some(("wl1.a.b", "workspace=dev".to_owned()))
        );
        assert_eq!(split_token(Some("workspace=dev")), None);
        assert_eq!(split_token(None), None);
    }

    #[test]
    fn cookies_and_forms_are_parsed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; wayline_token=wl1.x.y; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE), Some("wl1.x.y"));
        h.insert(header::COOKIE, HeaderValue::from_static("wayline_tokenx=1"));
        assert_eq!(cookie(&h, COOKIE), None);
        assert_eq!(
            serde_urlencoded_pairs(b"csrf=ab&value=a+b%26c&empty"),
            vec![
                ("csrf".into(), "ab".into()),
                ("value".into(), "a b&c".into()),
                ("empty".into(), String::new())
            ]
        );
    }

    #[test]
    fn the_redirect_stays_on_this_host() {
        let r = signed_in("//evil.test", "", "wl1.a.b", None);
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[header::LOCATION], "/");
        assert_eq!(
            r.headers()[header::SET_COOKIE],
            "wayline_token=wl1.a.b; Path=/; HttpOnly; SameSite=Strict"
        );
    }

    #[test]
    fn csrf_is_a_stable_digest() {
        assert_eq!(csrf_of("t"), csrf_of("t"));
        assert_ne!(csrf_of("t"), csrf_of("u"));
        assert_eq!(csrf_of("t").len(), 32);
    }
}
