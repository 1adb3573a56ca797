//! The web UI over real HTTP: login by token, cookie, and the pages' content and escaping.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wayline_proto::v1 as pb;
use wayline_proto::v1::job::State;

use crate::common::*;

/// A response read by [`get`].
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 GET over loopback, read until the server closes the connection.
pub(crate) async fn get(addr: SocketAddr, path: &str, cookie: Option<&str>) -> Reply {
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{cookie}\r\n"),
    )
    .await
}

/// One form POST (`application/x-www-form-urlencoded`) with the session cookie.
pub(crate) async fn post(addr: SocketAddr, path: &str, cookie: &str, form: &str) -> Reply {
    exchange(
        addr,
        format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    )
    .await
}

async fn exchange(addr: SocketAddr, req: String) -> Reply {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

pub(crate) fn http(h: &Harness) -> SocketAddr {
    h.server.as_ref().unwrap().http_addr()
}

/// What `wayline ui` does: a login token that expires in an hour.
pub(crate) async fn ui_token(c: &mut Client) -> String {
    c.generate_login_token(pb::GenerateLoginTokenRequest {
        expires_in: "1h".into(),
    })
    .await
    .unwrap()
    .into_inner()
    .token
}

pub(crate) fn cookie_for(token: &str) -> String {
    format!("wayline_token={token}")
}

const HINT: &str = "Run <code>wayline ui</code> in a terminal";

/// A browser without a session gets the 200 sign-in page (never a bare 401), with the reason
/// when its cookie was refused.
#[tokio::test]
async fn a_stranger_gets_the_sign_in_page() {
    let h = Harness::start().await;
    let addr = http(&h);
    for path in ["/", "/projects/p/apps/web", "/jobs/J1"] {
        let r = get(addr, path, None).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.body.contains("<h1>Sign in</h1>"), "{}", r.body);
        assert!(r.body.contains(HINT), "{}", r.body);
        assert!(!r.body.contains("role=\"alert\""), "{}", r.body);
    }
    let r = get(addr, "/", Some("wayline_token=wl1.e30.c2ln")).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains(
            "<p class=\"error\" role=\"alert\">The token was refused: the token was not issued by this server (bad signature).</p>"
        ),
        "{}",
        r.body
    );
    // Health and metrics stay open.
    assert_eq!(get(addr, "/healthz", None).await.status, 200);
    assert_eq!(get(addr, "/metrics", None).await.status, 200);
}

#[tokio::test]
async fn a_token_in_the_url_sets_the_cookie_and_redirects_without_it() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    c.upsert_application(pb::UpsertApplicationRequest {
        project: "p".into(),
        name: "web".into(),
    })
    .await
    .unwrap();
    let token = ui_token(&mut c).await;
    let addr = http(&h);
    let r = get(
        addr,
        &format!("/projects/p/apps/web?workspace=default&token={token}"),
        None,
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("/projects/p/apps/web?workspace=default")
    );
    let set = r.header("set-cookie").expect("a cookie");
    let prefix = format!("wayline_token={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=");
    let max_age: u64 = set
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{set}"))
        .parse()
        .unwrap();
    assert!((3500..=3600).contains(&max_age), "{max_age}");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));

    let r = get(addr, "/projects/p/apps/web", Some(&cookie_for(&token))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("<h1>web</h1>"), "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));

    // A revoked token no longer opens pages.
    let id = token_id(&token);
    c.revoke_token(pb::RevokeTokenRequest {
        token_id: id.clone(),
    })
    .await
    .unwrap();
    let r = get(addr, "/", Some(&cookie_for(&token))).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<h1>Sign in</h1>"), "{}", r.body);
    assert!(
        r.body.contains(&format!(
            "The token was refused: the login token {id} has been revoked."
        )),
        "{}",
        r.body
    );
}

/// The id inside a `wl1.<claims>.<sig>` token.
fn token_id(token: &str) -> String {
    use base64::Engine as _;
    let body = token.split('.').nth(1).unwrap();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&claims).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

// No `/` in it: names may not contain one (the API refuses it), markup is what is tested.
const HOSTILE: &str = "<script>alert(1)<script>";

async fn seed(c: &mut Client) -> (String, String) {
    let mut job = noop_job(None);
    job.labels.insert("note".into(), HOSTILE.into());
    let job_id = queue(c, job).await;
    let success = Some(pb::Status {
        state: pb::status::State::Success as i32,
        ..Default::default()
    });
    let d = c
        .upsert_deployment(pb::UpsertOperationRequest {
            operation: Some(pb::Operation {
                application: app("p", "web"),
                status: success.clone(),
                physical_state: pb::PhysicalState::Created as i32,
                url: "http://127.0.0.1:8080/".into(),
                provenance: Some(pb::Provenance {
                    commit: "0123456789abcdef0123".into(),
                    tag: "v1.0.0".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    c.upsert_release(pb::UpsertOperationRequest {
        operation: Some(pb::Operation {
            application: app("p", "web"),
            deployment_id: d.id.clone(),
            status: success,
            url: "https://web.example.test/".into(),
            labels: [("team".to_owned(), HOSTILE.to_owned())].into(),
            provenance: d.provenance.clone(),
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    c.upsert_application(pb::UpsertApplicationRequest {
        project: "p".into(),
        name: HOSTILE.into(),
    })
    .await
    .unwrap();
    (job_id, d.id)
}

#[tokio::test]
async fn the_pages_show_deployments_releases_and_jobs() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let (job_id, _) = seed(&mut c).await;
    let cookie = cookie_for(&ui_token(&mut c).await);
    let addr = http(&h);

    let index = get(addr, "/", Some(&cookie)).await;
    assert_eq!(index.status, 200, "{}", index.body);
    let body = &index.body;
    assert!(
        body.contains(
            "<td><a href=\"/projects/p\">p</a></td><td><a href=\"/projects/p/apps/web\">web</a></td><td>v1 <span class=\"badge success\">success</span></td><td>v1 <span class=\"live\">● live</span> <a href=\"https://web.example.test/\">https://web.example.test/</a></td><td class=\"hide-narrow\"><span class=\"commit\"><code title=\"0123456789abcdef0123\">0123456</code> <span class=\"tag\">v1.0.0</span></span></td>"
        ),
        "{body}"
    );
    assert!(
        body.contains(
            "<a href=\"/projects/p/apps/%3Cscript%3Ealert%281%29%3Cscript%3E\">&lt;script&gt;alert(1)&lt;script&gt;</a>"
        ),
        "{body}"
    );
    assert!(!body.contains("<script>"), "{body}");

    let page = get(addr, "/projects/p/apps/web", Some(&cookie)).await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    assert!(
        body.contains("<span class=\"live\">● live</span>"),
        "{body}"
    );
    assert!(
        body.contains(
            "<dt>Labels</dt><dd><span class=\"label\">team=&lt;script&gt;alert(1)&lt;script&gt;</span> </dd>"
        ),
        "{body}"
    );
    assert!(
        body.contains(
            "<dt>Commit</dt><dd><span class=\"commit\"><code title=\"0123456789abcdef0123\">0123456</code> <span class=\"tag\">v1.0.0</span></span></dd>"
        ),
        "{body}"
    );
    assert!(
        body.contains(
            "<dt>URL</dt><dd><a href=\"http://127.0.0.1:8080/\">http://127.0.0.1:8080/</a></dd>"
        ),
        "{body}"
    );
    assert!(
        body.contains("<section class=\"card\" aria-label=\"Latest Build\"><h2>Build</h2><p class=\"muted\">None yet.</p></section>"),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "<td><a href=\"/jobs/{job_id}\"><code>{}</code></a></td><td>noop</td><td>p/web</td><td><span class=\"badge warning\">queued</span></td>",
            &job_id[..10]
        )),
        "{body}"
    );
    assert!(!body.contains("<script>"), "{body}");

    let hostile = get(
        addr,
        "/projects/p/apps/%3Cscript%3Ealert%281%29%3Cscript%3E",
        Some(&cookie),
    )
    .await;
    assert_eq!(hostile.status, 200, "{}", hostile.body);
    assert!(
        hostile
            .body
            .contains("<h1>&lt;script&gt;alert(1)&lt;script&gt;</h1>"),
        "{}",
        hostile.body
    );
    assert!(!hostile.body.contains("<script>"), "{}", hostile.body);

    let missing = get(addr, "/projects/p/apps/api", Some(&cookie)).await;
    assert_eq!(missing.status, 404);
    assert!(
        missing
            .body
            .contains("Application api does not exist in project p."),
        "{}",
        missing.body
    );
}

/// After `destroy`, the page no longer calls the release live.
#[tokio::test]
async fn a_destroyed_deployment_is_not_shown_live() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let (_, deployment_id) = seed(&mut c).await;
    let cookie = cookie_for(&ui_token(&mut c).await);
    let addr = http(&h);
    let page = get(addr, "/projects/p/apps/web", Some(&cookie)).await;
    assert!(page.body.contains("● live"), "{}", page.body);

    let mut d = c
        .get_operation(pb::GetOperationRequest {
            kind: pb::OperationKind::Deployment as i32,
            target: Some(pb::get_operation_request::Target::Id(deployment_id)),
        })
        .await
        .unwrap()
        .into_inner();
    d.physical_state = pb::PhysicalState::Destroyed as i32;
    c.upsert_deployment(pb::UpsertOperationRequest { operation: Some(d) })
        .await
        .unwrap();
    let page = get(addr, "/projects/p/apps/web", Some(&cookie)).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("● live"), "{}", page.body);
    assert!(
        page.body
            .contains("<dt>Live</dt><dd><span class=\"badge\">destroyed</span></dd>"),
        "{}",
        page.body
    );
}

fn step(id: i32, msg: &str, status: &str, close: bool) -> pb::TerminalEvent {
    pb::TerminalEvent {
        timestamp: None,
        event: Some(pb::terminal_event::Event::Step(pb::terminal_event::Step {
            id,
            close,
            msg: msg.into(),
            status: status.into(),
            output: Vec::new(),
        })),
    }
}

#[tokio::test]
async fn the_job_page_shows_its_output_in_order() {
    let h = Harness::start().await;
    let mut c = h.client().await;
    let _runner = online(&mut c, "r1", &[], false).await;
    let id = queue(&mut c, noop_job(None)).await;
    let mut conn = job_conn(&mut c, "r1", "").await;
    conn.assignment().await;
    conn.ack().await;
    conn.line("Deploying <web>").await;
    conn.send(pb::runner_job_stream_request::Event::Terminal(
        pb::runner_job_stream_request::TerminalBatch {
            events: vec![
                step(1, "Starting container", "", false),
                step(2, "Checking health", "", false),
                step(1, "", "ok", true),
                step(2, "Health check failed", "error", true),
            ],
        },
    ))
    .await;
    conn.line("done").await;
    conn.complete().await;
    wait_state(&mut c, &id, State::Success).await;
    let cookie = cookie_for(&ui_token(&mut c).await);
    let addr = http(&h);

    let r = get(addr, &format!("/jobs/{id}"), Some(&cookie)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("<tr><th>State</th><td id=\"job-state\"><span class=\"badge success\">success</span></td></tr>"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("<tr><th>Runner</th><td><code>r1</code></td></tr>"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(
            "<pre id=\"output\" data-stream aria-live=\"polite\">Deploying &lt;web&gt;\n<span class=\"success\">✓ Starting container</span>\n<span class=\"error\">✗ Health check failed</span>\ndone\n</pre>"
        ),
        "{}",
        r.body
    );

    let r = get(addr, "/jobs/NOPE", Some(&cookie)).await;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("NOPE"), "{}", r.body);
}
