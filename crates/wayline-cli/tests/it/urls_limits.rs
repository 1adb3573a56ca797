//! The app's `url { limits {} }` through the real binaries and real Docker: the rate reaches the
//! URL service (429 with `Retry-After`), the server's `/metrics` counts the host's answers, and
//! `wayline url-service status -json` lists the entrypoint's tunnel.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use crate::common::{TestEnv, docker_ready};
use crate::urls::{RemoveContainers, ingress, project, serves, unique_suffix};

/// `GET path` with `Host: host` (HTTP/1.0): the whole answer, head and body.
fn raw_get(addr: SocketAddr, host: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut out = Vec::new();
    s.take(1 << 20).read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn an_apps_rate_limit_gives_429_metrics_count_it_and_status_lists_the_tunnel() {
    if !docker_ready("an_apps_rate_limit_gives_429_metrics_count_it_and_status_lists_the_tunnel") {
        return;
    }
    let env = TestEnv::with_urls();
    let app = format!("lim{}", unique_suffix());
    let _cleanup = RemoveContainers(app.clone());
    project(&env, &app, true);
    let text = std::fs::read_to_string(env.project.join("wayline.hcl")).unwrap();
    let limited = text.replacen(
        &format!("app \"{app}\" {{\n"),
        &format!(
            "app \"{app}\" {{\n  url {{\n    limits {{\n      requests_per_second = 1\n      burst               = 1\n    }}\n  }}\n"
        ),
        1,
    );
    assert_ne!(text, limited);
    env.write("wayline.hcl", &limited);
    env.write("index.html", "<h1>limited</h1>\n");
    env.ok(&["up"]);
    let addr = ingress(&env);
    let host = format!("{app}.localhost");
    serves(addr, &format!("{app}--v1.localhost"), "limited");

    // One a second: of three at once, at least one is refused, with the limit named.
    let answers: Vec<String> = (0..3).map(|_| raw_get(addr, &host, "/")).collect();
    let refused = answers
        .iter()
        .find(|a| a.starts_with("HTTP/1.0 429") || a.starts_with("HTTP/1.1 429"))
        .unwrap_or_else(|| panic!("no 429 in {answers:#?}"));
    let head = refused
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .to_ascii_lowercase();
    assert!(head.contains("\r\nretry-after: 1\r\n"), "{refused}");
    assert!(
        refused.contains(&format!(
            "{host} is over its rate limit of 1 requests per second (burst 1); retry in 1 s"
        )),
        "{refused}"
    );

    let http =
        std::fs::read_to_string(env.home.path().join("data/wayline/server/http.addr")).unwrap();
    let metrics = raw_get(http.trim().parse().unwrap(), "localhost", "/metrics");
    let line = format!("wayline_url_requests_total{{host=\"{host}\",class=\"4xx\"}} ");
    assert!(metrics.contains(&line), "{metrics}");

    let status = env.ok(&["url-service", "status", "-json"]).stdout();
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["serving"], true, "{status}");
    let t = &v["tunnels"][0];
    assert_eq!(t["app"], app.as_str(), "{status}");
    assert_eq!(t["sequence"], 1, "{status}");
    assert_eq!(
        t["hosts"],
        serde_json::json!([host, format!("{app}--v1.localhost")]),
        "{status}"
    );
    env.ok(&["destroy", "-auto-approve"]);
}
