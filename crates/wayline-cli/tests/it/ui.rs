//! `wayline ui` signs the browser in with a fresh token, and the pages show what ran.

use std::io::{Read, Write};
use std::time::Duration;

use crate::common::TestEnv;

/// One plain HTTP/1.0 request on loopback; returns the status line + headers, and the body.
fn request(url: &str, cookie: Option<&str>) -> (String, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (hostport, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut s = std::net::TcpStream::connect(hostport).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {hostport}\r\n{cookie}\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (head.to_owned(), body.to_owned())
}

#[test]
fn ui_opens_with_a_token_and_shows_the_app() {
    let env = TestEnv::new();
    env.write(
        "wayline.hcl",
        "project = \"uidemo\"\n\napp \"shop\" {\n  build {\n    use \"null\" {}\n  }\n  deploy {\n    use \"null\" {}\n  }\n}\n",
    );
    env.ok(&["up"]);
    let r = env.ok(&["ui", "-no-browser"]);
    let url = r
        .stdout()
        .lines()
        .find(|l| l.contains("?token="))
        .expect("a sign-in link")
        .trim()
        .to_owned();
    let base = url.split('?').next().unwrap().to_owned();

    let (head, _) = request(&base, None);
    assert!(
        head.starts_with("HTTP/1.1 401") || head.starts_with("HTTP/1.0 401"),
        "no token, no page: {head}"
    );

    let (head, _) = request(&url, None);
    assert!(head.contains(" 303 "), "{head}");
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .expect("a cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (head, body) = request(&base, Some(&cookie));
    assert!(head.contains(" 200 "), "{head}");
    assert!(body.contains("uidemo") && body.contains("shop"), "{body}");
    let (head, body) = request(&format!("{base}projects/uidemo/apps/shop"), Some(&cookie));
    assert!(head.contains(" 200 "), "{head}");
    assert!(body.contains("v1"), "{body}");
}
