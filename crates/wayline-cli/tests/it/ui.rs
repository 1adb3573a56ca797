//! `wayline ui`: sign-in (page, one-time link, pasted token), the session cookie, CSRF, and the
//! pages over plain HTTP. The browser tests are in `ui_browser`.

use std::io::{Read, Write};
use std::time::Duration;

use crate::common::{TestEnv, git};

/// A response: status code, head (lower-cased header names) and body.
pub struct Resp {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Resp {
    /// The value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The `name=value` part of the `Set-Cookie` header.
    pub fn cookie(&self) -> String {
        self.header("set-cookie")
            .expect("a cookie")
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }
}

/// One plain HTTP/1.0 request on loopback (a form body when `form` is given).
pub fn request(url: &str, cookie: Option<&str>, form: Option<&str>) -> Resp {
    let rest = url.strip_prefix("http://").unwrap();
    let (hostport, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut s = std::net::TcpStream::connect(hostport).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    match form {
        None => write!(s, "GET {path} HTTP/1.0\r\nHost: {hostport}\r\n{cookie}\r\n").unwrap(),
        Some(f) => write!(
            s,
            "POST {path} HTTP/1.0\r\nHost: {hostport}\r\n{cookie}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{f}",
            f.len()
        )
        .unwrap(),
    }
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Resp {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// The sign-in link `wayline ui -print-url` prints.
pub fn sign_in_link(env: &TestEnv) -> String {
    let r = env.ok(&["ui", "-print-url"]);
    r.stdout()
        .lines()
        .find(|l| l.contains("?token="))
        .expect("a sign-in link")
        .trim()
        .to_owned()
}

/// The CSRF token in a page's forms.
pub fn csrf(body: &str) -> String {
    let at = body
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    body[at..at + 32].to_owned()
}

/// A project in a git repository (so provenance has a commit), deployed with `up`.
pub fn deployed(env: &TestEnv, project: &str, app: &str) {
    env.write(
        "wayline.hcl",
        &format!(
            "project = \"{project}\"\n\napp \"{app}\" {{\n  build {{\n    use \"null\" {{}}\n  }}\n  deploy {{\n    use \"null\" {{}}\n  }}\n}}\n"
        ),
    );
    git(&env.project, &["init", "-q"]);
    git(&env.project, &["add", "."]);
    git(&env.project, &["commit", "-q", "-m", "first <commit>"]);
    env.ok(&["up"]);
}

#[allow(
    clippy::too_many_lines,
    reason = "one scenario in the order a user lives it; split, its steps would lose their order"
)]
#[test]
fn signing_in_csrf_and_the_pages_over_http() {
    let env = TestEnv::new();
    deployed(&env, "uidemo", "shop");
    let url = sign_in_link(&env);
    let base = url.split('?').next().unwrap().to_owned();

    // A stranger gets the sign-in page, not a bare 401.
    let r = request(&base, None, None);
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(
        r.body.contains("<h1>Sign in</h1>") && r.body.contains("name=\"token\""),
        "{}",
        r.body
    );
    let r = request(&format!("{base}?token=not-a-token"), None, None);
    assert!(r.body.contains("The token was refused"), "{}", r.body);

    // The link sets an HttpOnly, SameSite=Strict cookie, and works once.
    let r = request(&url, None, None);
    assert_eq!(r.status, 303, "{}", r.head);
    let set = r.header("set-cookie").unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = r.cookie();
    let again = request(&url, None, None);
    assert!(
        again.body.contains("This sign-in link was already used"),
        "{}",
        again.body
    );

    let r = request(&base, Some(&cookie), None);
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(
        r.body.contains("uidemo") && r.body.contains("shop"),
        "{}",
        r.body
    );
    let app = request(
        &format!("{base}projects/uidemo/apps/shop"),
        Some(&cookie),
        None,
    );
    assert_eq!(app.status, 200, "{}", app.head);
    assert!(
        app.body.contains("Deployment v1") && app.body.contains("first &lt;commit&gt;"),
        "{}",
        app.body
    );
    assert!(
        app.body.len() < 200 * 1024,
        "the app page is {} bytes",
        app.body.len()
    );
    let unknown = request(&format!("{base}?workspace=nope"), Some(&cookie), None);
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.body.contains("Workspace nope does not exist"),
        "{}",
        unknown.body
    );

    // Forms need the page's CSRF token: a forged one is refused before anything happens.
    let project = request(&format!("{base}projects/uidemo"), Some(&cookie), None);
    let token = csrf(&project.body);
    let forged = request(
        &format!("{base}projects/uidemo/variables"),
        Some(&cookie),
        Some("csrf=0000&name=color&value=blue"),
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    let missing = request(
        &format!("{base}projects/uidemo/variables"),
        Some(&cookie),
        Some("name=color&value=blue"),
    );
    assert_eq!(missing.status, 403);
    let set = request(
        &format!("{base}projects/uidemo/variables"),
        Some(&cookie),
        Some(&format!("csrf={token}&name=color&value=s3cret")),
    );
    assert_eq!(set.status, 303, "{}", set.body);
    let project = request(&format!("{base}projects/uidemo"), Some(&cookie), None);
    assert!(
        project.body.contains("<code>color</code>") && !project.body.contains("s3cret"),
        "masked: {}",
        project.body
    );
    let shown = request(
        &format!("{base}projects/uidemo?show=1"),
        Some(&cookie),
        None,
    );
    assert!(shown.body.contains("s3cret"), "{}", shown.body);
    let config = request(
        &format!("{base}projects/uidemo/config"),
        Some(&cookie),
        Some(&format!(
            "csrf={token}&name=PORT_NAME&value=web&app=shop&target_workspace="
        )),
    );
    assert_eq!(config.status, 303, "{}", config.body);
    assert!(env.ok(&["config", "get"]).stdout().contains("PORT_NAME"));

    // The data source and polling: a git source with a poll interval, stored for the CLI too.
    let source = format!("{base}projects/uidemo/source");
    let bad = request(
        &source,
        Some(&cookie),
        Some(&format!(
            "csrf={token}&kind=git&git_url=https%3A%2F%2Fgit.example.test%2Fshop.git&poll=1&poll_interval=often"
        )),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("`often`"), "{}", bad.body);
    let saved = request(
        &source,
        Some(&cookie),
        Some(&format!(
            "csrf={token}&kind=git&git_url=https%3A%2F%2Fgit.example.test%2Fshop.git&git_ref=main&poll=1&poll_interval=5m"
        )),
    );
    assert_eq!(saved.status, 303, "{}", saved.body);
    let project = request(&format!("{base}projects/uidemo"), Some(&cookie), None);
    assert!(
        project
            .body
            .contains("<code>https://git.example.test/shop.git</code>")
            && project.body.contains("every 5m"),
        "{}",
        project.body
    );
    let inspected = env.json(&["project", "inspect", "uidemo", "-json"]);
    assert_eq!(
        inspected["data_source"], "git https://git.example.test/shop.git (ref main)",
        "{inspected}"
    );
    let back = request(&source, Some(&cookie), Some(&format!("csrf={token}&kind=")));
    assert_eq!(back.status, 303, "{}", back.body);

    // Lists, details and jobs.
    for page in ["builds", "deployments", "releases", "artifacts"] {
        let r = request(
            &format!("{base}projects/uidemo/apps/shop/{page}"),
            Some(&cookie),
            None,
        );
        assert_eq!(r.status, 200, "{page}: {}", r.body);
        if page == "releases" {
            // Each release says which deployment it points at.
            assert!(
                r.body.contains("/projects/uidemo/apps/shop/deployments/")
                    && r.body.contains(">v1</a>"),
                "{}",
                r.body
            );
        }
    }
    let jobs = request(&format!("{base}jobs"), Some(&cookie), None);
    assert!(
        jobs.body.contains("Finished") && jobs.body.contains("up"),
        "{}",
        jobs.body
    );
    let at = jobs.body.find("href=\"/jobs/").unwrap() + 6;
    let job_path = &jobs.body[at..at + jobs.body[at..].find('"').unwrap()];
    let job = request(&format!("{base}{}", &job_path[1..]), Some(&cookie), None);
    assert!(
        job.body.contains("<h2>Output</h2>") && job.body.contains("success"),
        "{}",
        job.body
    );

    // A runner token may look but not act: the service refuses, the page says so.
    let runner_token = env
        .ok(&["runner", "token"])
        .stdout()
        .trim()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    let signin = request(&format!("{base}signin"), None, None);
    let pre = signin.cookie();
    let r = request(
        &format!("{base}signin"),
        Some(&pre),
        Some(&format!("csrf={}&token={runner_token}", csrf(&signin.body))),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let runner_cookie = r.cookie();
    let page = request(
        &format!("{base}projects/uidemo"),
        Some(&runner_cookie),
        None,
    );
    assert_eq!(page.status, 200, "{}", page.body);
    let refused = request(
        &format!("{base}projects/uidemo/variables"),
        Some(&runner_cookie),
        Some(&format!("csrf={}&name=x&value=y", csrf(&page.body))),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("runner token cannot call UpsertProject"),
        "{}",
        refused.body
    );

    // Signing out clears the cookie and revokes the link's token.
    let out = request(
        &format!("{base}signout"),
        Some(&cookie),
        Some(&format!("csrf={token}")),
    );
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    let after = request(&base, Some(&cookie), None);
    assert!(after.body.contains("<h1>Sign in</h1>"), "{}", after.body);
}
