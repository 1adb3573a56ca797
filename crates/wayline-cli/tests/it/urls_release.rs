//! Releases through the URL service's router (no `release` stanza): the app host moves at once
//! and only to a deployment that passes its health check; `rollback` moves it back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::{TestEnv, docker_ready};
use crate::urls::{RemoveContainers, get_host, ingress, project, serves, unique_suffix};

/// One answer of the request loop: when the request started, its status and body.
type Seen = (Instant, Option<(u16, String)>);

/// GETs `host` one request after another until `stop` (at most 2,000 requests or 120 s).
fn request_loop(
    addr: std::net::SocketAddr,
    host: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Seen>> {
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_mins(2);
        let mut seen = Vec::new();
        while !stop.load(Ordering::Relaxed) && seen.len() < 2000 && Instant::now() < end {
            let at = Instant::now();
            seen.push((at, get_host(addr, &host, "/")));
            std::thread::sleep(Duration::from_millis(5));
        }
        seen
    })
}

#[test]
fn rollback_switches_the_app_host_with_no_error_and_an_unhealthy_release_keeps_traffic() {
    if !docker_ready(
        "rollback_switches_the_app_host_with_no_error_and_an_unhealthy_release_keeps_traffic",
    ) {
        return;
    }
    let env = TestEnv::with_urls();
    let app = format!("rb{}", unique_suffix());
    let _cleanup = RemoveContainers(app.clone());
    project(&env, &app, true);
    env.write("index.html", "<h1>version one</h1>\n");
    env.ok(&["up"]);
    env.write("index.html", "<h1>version two</h1>\n");
    let r = env.ok(&["up"]);
    assert!(
        r.stdout()
            .contains("Health check passed: GET / answered 200 OK"),
        "{}",
        r.all()
    );
    let addr = ingress(&env);
    let host = format!("{app}.localhost");
    serves(addr, &host, "version two");

    let stop = Arc::new(AtomicBool::new(false));
    let lp = request_loop(addr, host.clone(), Arc::clone(&stop));
    std::thread::sleep(Duration::from_millis(300));
    env.ok(&["rollback"]);
    let switched = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let seen = lp.join().unwrap();
    let errors: Vec<_> = seen
        .iter()
        .filter(|(_, a)| a.as_ref().is_none_or(|(s, _)| *s != 200))
        .collect();
    assert!(
        errors.is_empty(),
        "{} of {} requests failed: {:?}",
        errors.len(),
        seen.len(),
        errors.first()
    );
    let after: Vec<_> = seen.iter().filter(|(at, _)| *at > switched).collect();
    assert!(
        after.len() >= 10,
        "the loop kept going after the switch: {}",
        after.len()
    );
    let wrong = after
        .iter()
        .filter(|(_, a)| !a.as_ref().unwrap().1.contains("version one"))
        .count();
    assert_eq!(wrong, 0, "answers after the rollback came from v2");

    // v3 has a health path it does not serve: its release fails and v1 keeps the host.
    let hcl = std::fs::read_to_string(env.project.join("wayline.hcl")).unwrap();
    env.write(
        "wayline.hcl",
        &hcl.replace(
            &format!("app \"{app}\" {{\n"),
            &format!("app \"{app}\" {{\n  url {{\n    health_path = \"/up\"\n  }}\n"),
        ),
    );
    env.write("index.html", "<h1>version three</h1>\n");
    let r = env.run_for(&["up"], Duration::from_mins(3));
    assert!(!r.success(), "{}", r.all());
    assert!(
        r.all().contains(&format!(
            "{app} v3 was not released, traffic stays where it was: it did not pass its health check (GET /up) within 60s: GET /up answered 404 Not Found"
        )),
        "{}",
        r.all()
    );
    let (status, body) = get_host(addr, &host, "/").unwrap();
    assert_eq!(
        (status, body.contains("version one")),
        (200, true),
        "{body}"
    );
    serves(addr, &format!("{app}--v3.localhost"), "version three");
    env.ok(&["destroy", "-auto-approve"]);
}
