//! Config from the server: env restarts, files and their change signal, dynamic values.

use std::time::Duration;

use wayline_proto::v1::{ConfigVar, DynamicValue, config_var};

use crate::common::*;

fn dynamic(name: &str, from: &str, config: &[(&str, &str)]) -> ConfigVar {
    let config = config
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    ConfigVar {
        name: name.into(),
        value: Some(config_var::Value::Dynamic(DynamicValue {
            from: from.into(),
            config,
        })),
        ..ConfigVar::default()
    }
}

#[tokio::test]
async fn env_change_restarts_the_app_with_the_new_env() {
    let server = Server::start();
    server.set_vars(vec![static_var("GREETING", "hello")]);
    let mut child = entrypoint(
        Some(&server.socket),
        &["sh", "-c", "echo \"greeting=$GREETING\"; exec sleep 60"],
    )
    .spawn()
    .unwrap();
    server.wait_text("greeting=hello").await;
    server.set_vars(vec![static_var("GREETING", "bonjour")]);
    server.wait_text("greeting=bonjour").await;
    server
        .wait_line(|l| {
            l.line
                .contains("config changed (GREETING); restarting the app")
        })
        .await;
    drop(child.kill().await);
}

#[tokio::test]
async fn an_app_ignoring_sigterm_is_killed_after_the_grace_period() {
    let server = Server::start();
    server.set_vars(vec![static_var("V", "1")]);
    let script = "trap '' TERM; echo \"v=$V\"; while :; do sleep 0.05; done";
    let mut cmd = entrypoint(Some(&server.socket), &["sh", "-c", script]);
    cmd.env("WAYLINE_ENTRYPOINT_RESTART_GRACE", "300ms");
    let mut child = cmd.spawn().unwrap();
    server.wait_text("v=1").await;
    server.set_vars(vec![static_var("V", "2")]);
    server
        .wait_line(|l| {
            l.line
                .contains("did not exit after SIGTERM; sending SIGKILL")
        })
        .await;
    server.wait_text("v=2").await;
    drop(child.kill().await);
}

#[tokio::test]
async fn file_change_rewrites_the_file_and_signals_without_restart() {
    let server = Server::start();
    let path = server.dir.path().join("conf/app.conf");
    let file = |content: &str| ConfigVar {
        file: true,
        ..static_var(&path.display().to_string(), content)
    };
    *server.resolver.signal.lock().unwrap() = "SIGUSR1".into();
    server.set_vars(vec![file("v1")]);
    let script = format!(
        "trap 'echo \"reload $(cat {p})\"' USR1; echo \"start $(cat {p})\"; while :; do sleep 0.05; done",
        p = path.display()
    );
    let mut child = entrypoint(Some(&server.socket), &["sh", "-c", &script])
        .spawn()
        .unwrap();
    server.wait_text("start v1").await;
    server.set_vars(vec![file("v2")]);
    server.wait_text("reload v2").await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "v2");
    drop(child.kill().await);
}

#[tokio::test]
async fn dynamic_file_values_refresh_and_failures_are_reported() {
    let server = Server::start();
    let src = server.dir.path().join("secret");
    std::fs::write(&src, "s1\n").unwrap();
    let path = src.display().to_string();
    server.set_vars(vec![
        dynamic("SECRET", "file", &[("path", &path)]),
        dynamic("MISSING", "file", &[("path", "/nonexistent/x")]),
    ]);
    let mut cmd = entrypoint(
        Some(&server.socket),
        &[
            "sh",
            "-c",
            "echo \"secret=$SECRET missing=${MISSING-unset}\"; exec sleep 60",
        ],
    );
    cmd.env("WAYLINE_ENTRYPOINT_CONFIG_REFRESH", "200ms");
    let mut child = cmd.spawn().unwrap();
    server.wait_text("secret=s1 missing=unset").await;
    server
        .wait_line(|l| {
            l.line.contains("config variable \"MISSING\" from \"file\" cannot be resolved: cannot read /nonexistent/x")
        })
        .await;
    std::fs::write(&src, "s2\n").unwrap();
    server.wait_text("secret=s2 missing=unset").await;
    drop(child.kill().await);
}

/// etcd started by the test (Debian's `etcd-server`); skipped with a reason when not installed
/// unless `WAYLINE_REQUIRE_ETCD=1`.
#[tokio::test]
async fn dynamic_etcd_values() {
    let Some(etcd) = which("etcd") else {
        assert!(
            std::env::var("WAYLINE_REQUIRE_ETCD").as_deref() != Ok("1"),
            "etcd not installed (apt-get install etcd-server)"
        );
        eprintln!("skipping dynamic_etcd_values: etcd not installed (apt-get install etcd-server)");
        return;
    };
    let server = Server::start();
    let port = free_port();
    let peer = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut etcd = tokio::process::Command::new(etcd)
        .args([
            "--data-dir",
            &server.dir.path().join("etcd").display().to_string(),
        ])
        .args([
            "--listen-client-urls",
            &endpoint,
            "--advertise-client-urls",
            &endpoint,
        ])
        .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
        .args([
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
        ])
        .args([
            "--initial-cluster",
            &format!("default=http://127.0.0.1:{peer}"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let put = |v: &'static str| {
        let endpoint = endpoint.clone();
        async move {
            use base64::Engine;
            let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
            let body = format!(
                "{{\"key\":\"{}\",\"value\":\"{}\"}}",
                b64("/app/db"),
                b64(v)
            );
            http_post(&endpoint, "/v3/kv/put", &body).await
        }
    };
    tokio::time::timeout(PATIENCE, async {
        while put("db-1").await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("etcd never came up");
    server.set_vars(vec![dynamic(
        "DB",
        "etcd",
        &[("key", "/app/db"), ("endpoints", &endpoint)],
    )]);
    let mut cmd = entrypoint(
        Some(&server.socket),
        &["sh", "-c", "echo \"db=$DB\"; exec sleep 60"],
    );
    cmd.env("WAYLINE_ENTRYPOINT_CONFIG_REFRESH", "200ms");
    let mut child = cmd.spawn().unwrap();
    server.wait_text("db=db-1").await;
    put("db-2").await.unwrap();
    server.wait_text("db=db-2").await;
    drop(child.kill().await);
    drop(etcd.kill().await);
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var("PATH")
        .ok()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn http_post(endpoint: &str, path: &str, body: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = endpoint.trim_start_matches("http://");
    let mut c = tokio::net::TcpStream::connect(authority).await?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    c.write_all(req.as_bytes()).await?;
    let mut out = String::new();
    c.read_to_string(&mut out).await?;
    if out.starts_with("HTTP/1.1 200") {
        Ok(out)
    } else {
        Err(std::io::Error::other(out))
    }
}
