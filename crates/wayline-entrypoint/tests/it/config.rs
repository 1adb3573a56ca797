//! Config from the server: env restarts, files and their change signal, dynamic values.

use futures::StreamExt;
use wayline_proto::v1::{
    ConfigVar, DynamicValue, GetLogStreamRequest, ListInstancesRequest, config_var,
};

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

/// Waits until the deployment's one instance reports exactly `want` as its config errors, as
/// `ListInstances` shows them.
async fn wait_config_errors(server: &Server, want: &[String]) {
    let client = server.client().await;
    wait_for_async(PATIENCE, || {
        let mut client = client.clone();
        async move {
            let instances = client
                .list_instances(ListInstancesRequest {
                    deployment_id: DEPLOYMENT.into(),
                    ..ListInstancesRequest::default()
                })
                .await
                .unwrap()
                .into_inner()
                .instances;
            match &instances[..] {
                [one] if one.config_errors == want => Ok(()),
                _ => Err(instances),
            }
        }
    })
    .await
    .unwrap_or_else(|last| panic!("wanted config errors {want:?}; last instances: {last:?}"));
}

/// The status lists the values that cannot be resolved until they can; the log says so once
/// when it starts and once when it ends, not at every refresh.
#[tokio::test]
async fn unresolvable_values_show_on_the_instance_until_fixed() {
    let server = Server::start();
    let later = server.dir.path().join("later");
    let other = server.dir.path().join("other");
    std::fs::write(&other, "1").unwrap();
    let path = later.display().to_string();
    server.set_vars(vec![
        static_var("PLAIN", "p"),
        dynamic("LATER", "file", &[("path", &path)]),
        dynamic("OTHER", "file", &[("path", &other.display().to_string())]),
    ]);
    let mut cmd = entrypoint(
        Some(&server.socket),
        &[
            "sh",
            "-c",
            "echo \"later=${LATER-unset} other=$OTHER\"; exec sleep 60",
        ],
    );
    cmd.env("WAYLINE_ENTRYPOINT_CONFIG_REFRESH", "200ms");
    let mut child = cmd.spawn().unwrap();
    server.wait_text("later=unset other=1").await;
    wait_config_errors(
        &server,
        &[format!(
            "LATER: cannot read {path}: No such file or directory (os error 2)"
        )],
    )
    .await;
    // A later refresh pass, still failing for LATER.
    std::fs::write(&other, "2").unwrap();
    server.wait_text("later=unset other=2").await;
    std::fs::write(&later, "here").unwrap();
    server.wait_text("later=here other=2").await;
    wait_config_errors(&server, &[]).await;
    server
        .wait_line(|l| {
            l.line
                .ends_with("config variable \"LATER\" from \"file\" resolves again")
        })
        .await;
    let logs: Vec<String> = server
        .hub
        .log_stream(vec![DEPLOYMENT.into()], GetLogStreamRequest::default())
        .flat_map(|b| futures::stream::iter(b.unwrap().lines))
        .map(|l| l.line)
        .collect()
        .await;
    let failures = logs
        .iter()
        .filter(|l| l.contains("config variable \"LATER\" from \"file\" cannot be resolved"))
        .count();
    assert_eq!(failures, 1, "{logs:#?}");
    drop(child.kill().await);
}

/// An etcd started by a test (Debian's `etcd-server`) on loopback ports of its own.
struct Etcd {
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    endpoint: String,
    peer: String,
    process: tokio::process::Child,
}

impl Etcd {
    /// Starts etcd and waits until it answers; `None` (having said why) when it is not installed,
    /// unless `WAYLINE_REQUIRE_ETCD=1`.
    async fn start(test: &str, dir: &std::path::Path) -> Option<Etcd> {
        let bin = tool(
            test,
            Need::Etcd,
            &["etcd"],
            "etcd not installed (apt-get install etcd-server)",
        )?;
        let data = dir.join("etcd");
        let endpoint = format!("http://127.0.0.1:{}", free_port());
        let peer = format!("http://127.0.0.1:{}", free_port());
        let process = Self::spawn(&bin, &data, &endpoint, &peer);
        let etcd = Etcd {
            bin,
            data,
            endpoint,
            peer,
            process,
        };
        etcd.ready().await;
        Some(etcd)
    }

    fn spawn(
        bin: &std::path::Path,
        data: &std::path::Path,
        endpoint: &str,
        peer: &str,
    ) -> tokio::process::Child {
        tokio::process::Command::new(bin)
            .args(["--data-dir", &data.display().to_string()])
            .args(["--listen-client-urls", endpoint])
            .args(["--advertise-client-urls", endpoint])
            .args(["--listen-peer-urls", peer])
            .args(["--initial-advertise-peer-urls", peer])
            .args(["--initial-cluster", &format!("default={peer}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    async fn ready(&self) {
        let body = format!("{{\"key\":\"{}\"}}", b64("ready"));
        wait_for_async(PATIENCE, || {
            http_post(&self.endpoint, "/v3/kv/range", &body)
        })
        .await
        .unwrap_or_else(|last| panic!("etcd never came up: {last}"));
    }

    /// Kills etcd (every watch on it drops) and starts it again on the same data and ports.
    async fn restart(&mut self) {
        self.process.kill().await.unwrap();
        self.process = Self::spawn(&self.bin, &self.data, &self.endpoint, &self.peer);
        self.ready().await;
    }

    async fn put(&self, key: &str, value: &str) {
        let body = format!("{{\"key\":\"{}\",\"value\":\"{}\"}}", b64(key), b64(value));
        http_post(&self.endpoint, "/v3/kv/put", &body)
            .await
            .unwrap();
    }

    async fn delete(&self, key: &str) {
        let body = format!("{{\"key\":\"{}\"}}", b64(key));
        http_post(&self.endpoint, "/v3/kv/deleterange", &body)
            .await
            .unwrap();
    }
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// With the refresh interval at an hour, every change below reaches the app through the etcd
/// watch alone: puts restart the app, a delete keeps the last value and shows on the status,
/// and a watch dropped by an etcd restart comes back.
#[tokio::test]
async fn etcd_values_follow_the_key_through_its_watch() {
    let server = Server::start();
    let Some(mut etcd) = Etcd::start(
        "etcd_values_follow_the_key_through_its_watch",
        server.dir.path(),
    )
    .await
    else {
        return;
    };
    etcd.put("/app/db", "db-1").await;
    server.set_vars(vec![dynamic(
        "DB",
        "etcd",
        &[("key", "/app/db"), ("endpoints", &etcd.endpoint)],
    )]);
    let mut cmd = entrypoint(
        Some(&server.socket),
        &["sh", "-c", "echo \"db=$DB\"; exec sleep 60"],
    );
    cmd.env("WAYLINE_ENTRYPOINT_CONFIG_REFRESH", "1h");
    let mut child = cmd.spawn().unwrap();
    server.wait_text("db=db-1").await;
    etcd.put("/app/db", "db-2").await;
    server.wait_text("db=db-2").await;

    etcd.delete("/app/db").await;
    let missing = format!(
        "DB: key \"/app/db\" not found in etcd at {} (using its last value)",
        etcd.endpoint
    );
    wait_config_errors(&server, &[missing]).await;
    etcd.put("/app/db", "db-3").await;
    server.wait_text("db=db-3").await;
    wait_config_errors(&server, &[]).await;

    etcd.restart().await;
    let watch = format!("etcd watch of \"/app/db\" at {}", etcd.endpoint);
    server
        .wait_line(|l| l.line.contains(&watch) && l.line.ends_with(" restored"))
        .await;
    etcd.put("/app/db", "db-4").await;
    server.wait_text("db=db-4").await;
    drop(child.kill().await);
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
