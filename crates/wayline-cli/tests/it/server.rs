//! A separately started server with a separate runner: remote jobs from git, provenance,
//! a server killed with SIGKILL mid-job, bad tokens, a server that is down.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{Need, TestEnv, eventually, free_port, git, tool, wait_for};

/// A background process killed when the guard drops.
struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Server {
    data: std::path::PathBuf,
    grpc: u16,
    http: u16,
}

impl Server {
    fn new(env: &TestEnv) -> Self {
        Self {
            data: env.home.path().join("srv"),
            grpc: free_port(),
            http: free_port(),
        }
    }

    fn start(&self, env: &TestEnv) -> Bg {
        let child = env
            .cmd(&[
                "server",
                "run",
                "-data-dir",
                self.data.to_str().unwrap(),
                "-listen-grpc",
                &format!("127.0.0.1:{}", self.grpc),
                "-listen-http",
                &format!("127.0.0.1:{}", self.http),
                "-heartbeat-timeout",
                "10",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let sock = self.data.join("socket/server.sock");
        assert!(
            eventually(Duration::from_secs(20), || {
                std::os::unix::net::UnixStream::connect(&sock).is_ok()
            }),
            "server did not start"
        );
        Bg(child)
    }

    /// A started server, bootstrapped into a new default context named `context`.
    fn started(env: &TestEnv, context: &str) -> (Self, Bg) {
        let srv = Self::new(env);
        let running = srv.start(env);
        env.ok(&[
            "server",
            "bootstrap",
            "-server-addr",
            &srv.addr(),
            "-server-tls-skip-verify",
            "-context-create",
            context,
        ]);
        (srv, running)
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.grpc)
    }
}

/// Commits the project folder to a new git repository and makes it the `remote` project's
/// data source; returns the commit.
fn git_project(env: &TestEnv) -> String {
    git(&env.project, &["init", "-q", "-b", "main"]);
    git(&env.project, &["add", "."]);
    git(&env.project, &["commit", "-q", "-m", "first"]);
    let url = format!("file://{}", env.project.display());
    env.ok(&[
        "project",
        "apply",
        "remote",
        "-data-source",
        "git",
        "-git-url",
        &url,
        "-git-ref",
        "main",
    ]);
    git(&env.project, &["rev-parse", "HEAD"])
}

const NULL_APP: &str = r#"project = "remote"

app "api" {
  build {
    use "null" {}
    hook {
      when    = "before"
      command = ["sleep", "0"]
    }
  }
  deploy {
    use "null" {}
  }
  release {
    use "null" {
      url = "http://api.example.test"
    }
  }
}
"#;

#[test]
fn remote_runner_builds_from_git_and_records_the_commit() {
    let env = TestEnv::new();
    let (_srv, _server) = Server::started(&env, "remote");
    let _runner = Bg(env
        .cmd(&["runner", "agent", "-label", "pool=e2e"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());

    env.write("wayline.hcl", NULL_APP);
    let head = git_project(&env);

    let r = env.ok(&["up", "-local=false"]);
    assert!(
        r.stdout().contains("http://api.example.test"),
        "{}",
        r.all()
    );

    let r = env.ok(&["deployment", "list", "-json", "-commit", &head[..8]]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 1, "{v}");
    assert_eq!(list[0]["commit"], head);

    let r = env.ok(&["release", "list", "-json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(v[0]["live"], true, "{v}");
    assert_eq!(v[0]["commit"], head);

    let r = env.ok(&["runner", "list"]);
    assert!(r.stdout().contains("pool=e2e"), "{}", r.all());
}

#[test]
fn a_job_survives_the_server_being_killed() {
    let env = TestEnv::new();
    let (srv, mut server) = Server::started(&env, "remote");
    env.write(
        "wayline.hcl",
        &NULL_APP.replace("[\"sleep\", \"0\"]", "[\"sleep\", \"3\"]"),
    );

    let up = env
        .cmd(&["up"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the job runs (its build hook sleeps 3 s), kill the server hard and restart it.
    wait_for(Duration::from_secs(30), || {
        let r = env.run(&["job", "list", "-json"]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout()).map_err(|_| r.all())?;
        let running = v.as_array().is_some_and(|jobs| {
            jobs.iter()
                .any(|j| j["operation"] == "up" && j["state"] == "running")
        });
        if running { Ok(()) } else { Err(v.to_string()) }
    })
    .unwrap_or_else(|last| panic!("the up job never ran; last `job list`: {last}"));
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    let _server2 = srv.start(&env);

    let out = up.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The CLI lost its stream when the server died, reconnected, and saw the job through.
    assert!(
        stderr.contains("reconnecting"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("Release URL: http://api.example.test"),
        "stdout:\n{stdout}"
    );
    assert_eq!(
        stdout.matches("Build v1 complete").count(),
        1,
        "nothing printed twice:\n{stdout}"
    );
    let done = eventually(Duration::from_secs(40), || {
        let r = env.run(&["job", "list", "-json"]);
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.stdout()) else {
            return false;
        };
        v.as_array().is_some_and(|jobs| {
            jobs.iter().any(|j| {
                j["operation"] == "up" && (j["state"] == "success" || j["state"] == "error")
            })
        })
    });
    assert!(done, "the job never finished after the restart");
    let r = env.ok(&["job", "list", "-json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    let job = v
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["operation"] == "up")
        .unwrap()
        .clone();
    // Either the runner re-attached and finished it, or the server says exactly why it failed.
    if job["state"] == "error" {
        let msg = job["error"].as_str().unwrap_or_default();
        assert!(msg.contains("runner"), "unexplained failure: {job}");
    }
    // Nothing acknowledged before the kill was lost: the project and its build records survive.
    let r = env.ok(&["artifact", "list-builds", "-json"]);
    let builds: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert!(!builds.as_array().unwrap().is_empty(), "{builds}");
}

#[test]
fn bad_token_and_server_down_get_clear_errors() {
    let env = TestEnv::new();
    let (_srv, server) = Server::started(&env, "remote");

    let r = env
        .cmd(&["job", "list"])
        .env("WAYLINE_SERVER_TOKEN", "not-a-token")
        .output()
        .unwrap();
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.starts_with("error: the server did not accept the token:"),
        "{err}"
    );
    // Waypoint's variable names work too.
    let r = env
        .cmd(&["job", "list"])
        .env("WAYPOINT_SERVER_TOKEN", "not-a-token")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&r.stderr)
            .starts_with("error: the server did not accept the token:")
    );

    drop(server);
    let r = env.run(&["job", "list"]);
    assert!(!r.success());
    assert!(
        r.stderr()
            .contains("could not connect to the Wayline server at 127.0.0.1:"),
        "{}",
        r.all()
    );
}

#[test]
fn cancel_a_running_job() {
    let env = TestEnv::new();
    env.write(
        "wayline.hcl",
        &NULL_APP.replace("[\"sleep\", \"0\"]", "[\"sleep\", \"30\"]"),
    );
    let up = env
        .cmd(&["up"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut job_id = String::new();
    assert!(
        eventually(Duration::from_secs(20), || {
            let r = env.run(&["job", "list", "-json", "-state", "running"]);
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.stdout()) else {
                return false;
            };
            match v.as_array().and_then(|a| a.first()) {
                Some(j) => {
                    job_id = j["id"].as_str().unwrap().to_owned();
                    true
                }
                None => false,
            }
        }),
        "the job never ran"
    );
    env.ok(&["job", "cancel", &job_id]);
    let out = up.wait_with_output().unwrap();
    assert!(!out.status.success(), "the cancelled `up` must fail");
    let r = env.ok(&["job", "inspect", &job_id, "-json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(v["state"], "cancelled", "{v}");
}

#[test]
fn a_runner_waits_for_adoption_then_takes_jobs() {
    let env = TestEnv::new();
    let (_srv, _server) = Server::started(&env, "remote");
    let state = env.home.path().join("runner-state");
    let _runner = Bg(env
        .cmd(&[
            "runner",
            "agent",
            "-request-adoption",
            "-label",
            "pool=adopt",
            "-state-dir",
            state.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let id_file = state.join("id");
    assert!(eventually(Duration::from_secs(20), || id_file.exists()));
    let id = std::fs::read_to_string(&id_file).unwrap().trim().to_owned();
    assert!(
        eventually(Duration::from_secs(20), || env
            .run(&["runner", "list", "-pending"])
            .stdout()
            .contains(&id)),
        "the runner never showed up as pending"
    );

    env.write("wayline.hcl", NULL_APP);
    git_project(&env);
    let up = env
        .cmd(&["up", "-local=false"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nothing can take the job yet, and the job says so.
    assert!(eventually(Duration::from_secs(20), || {
        let r = env.run(&["job", "list", "-json"]);
        r.stdout().contains("\"state\": \"queued\"")
            || r.stdout().contains("\"state\": \"waiting\"")
    }));
    env.ok(&["runner", "adopt", &id]);
    let out = up.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r = env.ok(&["runner", "inspect", &id, "-json"]);
    assert!(
        r.stdout().contains("\"adoption\": \"adopted\""),
        "{}",
        r.all()
    );
}

#[test]
fn tokens_invites_and_contexts() {
    let env = TestEnv::new();
    let (srv, _server) = Server::started(&env, "admin");
    let invite = env.ok(&["user", "invite"]).stdout().trim().to_owned();
    env.ok(&[
        "login",
        &srv.addr(),
        "-token",
        &invite,
        "-server-tls-skip-verify",
        "-context",
        "teammate",
    ]);
    let r = env.ok(&["context", "list", "-json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    let default: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["default"] == true)
        .collect();
    assert_eq!(default[0]["name"], "teammate", "{v}");
    let r = env.ok(&["context", "verify"]);
    assert!(r.stdout().contains("the token is accepted"), "{}", r.all());
    env.ok(&["context", "use", "admin"]);
    env.ok(&["context", "delete", "teammate"]);
    let r = env.run(&["context", "use", "teammate"]);
    assert!(
        r.stderr().contains("there is no context named `teammate`"),
        "{}",
        r.all()
    );
}

#[test]
fn snapshot_and_restore() {
    let env = TestEnv::new();
    env.write("wayline.hcl", NULL_APP);
    env.ok(&["up"]);
    let snap = env.home.path().join("backup.db");
    let r = env.ok(&["server", "snapshot", snap.to_str().unwrap()]);
    assert!(r.stdout().contains("sha256"), "{}", r.all());
    env.ok(&["up"]);
    let r = env.ok(&["server", "restore", snap.to_str().unwrap()]);
    assert!(r.stdout().contains("Restored"), "{}", r.all());
    assert!(
        r.stdout().contains("Restart your local server to use it"),
        "{}",
        r.all()
    );
    env.ok(&["server", "stop"]);
    // After the restart the server holds the snapshot: one build, not two.
    let r = env.ok(&["artifact", "list-builds", "-json"]);
    let builds: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(builds.as_array().unwrap().len(), 1, "{builds}");
    // A corrupt snapshot is refused and nothing changes.
    let bad = env.home.path().join("bad.db");
    std::fs::write(&bad, b"not a database").unwrap();
    let r = env.run(&["server", "restore", bad.to_str().unwrap()]);
    assert!(!r.success(), "{}", r.all());
}

#[test]
fn a_runner_killed_mid_job_fails_the_job_with_the_reason() {
    let env = TestEnv::new();
    let (_srv, _server) = Server::started(&env, "remote");
    let mut runner = Bg(env
        .cmd(&["runner", "agent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());

    env.write(
        "wayline.hcl",
        &NULL_APP.replace("[\"sleep\", \"0\"]", "[\"sleep\", \"60\"]"),
    );
    git_project(&env);
    let up = env
        .cmd(&["up", "-local=false"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(eventually(Duration::from_secs(20), || env
        .run(&["job", "list", "-state", "running"])
        .stdout()
        .contains("up")));
    runner.0.kill().unwrap();
    runner.0.wait().unwrap();
    // The server's heartbeat timeout (10 s here) fails the job and says why.
    let out = up.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("runner"),
        "the failure names the runner: {stderr}"
    );
    let r = env.ok(&["job", "list", "-json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(v[0]["state"], "error", "{v}");
}

/// A real sshd on loopback serving a bare repository: the runner clones over SSH with the
/// project's private key. Skipped with a reason when sshd is not installed, unless
/// `WAYLINE_REQUIRE_SSHD=1`.
#[test]
fn a_remote_runner_clones_over_ssh_with_a_key() {
    let Some(sshd) = tool(
        "a_remote_runner_clones_over_ssh_with_a_key",
        Need::Sshd,
        &["/usr/sbin/sshd", "/usr/bin/sshd"],
        "sshd is not installed (apt-get install openssh-server)",
    ) else {
        return;
    };
    let env = TestEnv::new();
    let ssh = env.home.path().join("ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    let keygen = |name: &str| {
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(ssh.join(name))
            .status()
            .unwrap();
        assert!(st.success());
    };
    keygen("host_key");
    keygen("client_key");
    std::fs::copy(ssh.join("client_key.pub"), ssh.join("authorized_keys")).unwrap();
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = free_port();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {k}\nPidFile {pid}\nAuthorizedKeysFile {ak}\nStrictModes no\nUsePAM no\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nAllowUsers {user}\n",
        k = ssh.join("host_key").display(),
        pid = ssh.join("sshd.pid").display(),
        ak = ssh.join("authorized_keys").display(),
    );
    std::fs::write(ssh.join("sshd_config"), config).unwrap();
    let _sshd = Bg(Command::new(&sshd)
        .args(["-D", "-e", "-f"])
        .arg(ssh.join("sshd_config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    assert!(
        eventually(Duration::from_secs(10), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "sshd did not start"
    );

    let (_srv, _server) = Server::started(&env, "remote");
    let _runner = Bg(env
        .cmd(&["runner", "agent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());

    env.write("wayline.hcl", NULL_APP);
    git(&env.project, &["init", "-q", "-b", "main"]);
    git(&env.project, &["add", "."]);
    git(&env.project, &["commit", "-q", "-m", "over ssh"]);
    let head = git(&env.project, &["rev-parse", "HEAD"]);
    let bare = env.home.path().join("repo.git");
    git(
        env.home.path(),
        &[
            "clone",
            "-q",
            "--bare",
            env.project.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    let url = format!("ssh://{user}@127.0.0.1:{port}{}", bare.display());
    let key = ssh.join("client_key");
    env.ok(&[
        "project",
        "apply",
        "remote",
        "-data-source",
        "git",
        "-git-url",
        &url,
        "-git-private-key-path",
        key.to_str().unwrap(),
    ]);

    env.ok(&["up", "-local=false"]);
    let r = env.ok(&["deployment", "list", "-json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(v[0]["commit"], head, "{v}");
}

#[test]
fn a_forgotten_runner_exits_with_the_reason() {
    let env = TestEnv::new();
    let (_srv, _server) = Server::started(&env, "remote");
    let state = env.home.path().join("runner-state");
    let runner = env
        .cmd(&["runner", "agent", "-state-dir", state.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id_file = state.join("id");
    assert!(eventually(Duration::from_secs(20), || id_file.exists()));
    let id = std::fs::read_to_string(&id_file).unwrap().trim().to_owned();
    assert!(eventually(Duration::from_secs(20), || env
        .run(&["runner", "list"])
        .stdout()
        .contains("online")));
    env.ok(&["runner", "forget", &id]);
    let out = runner.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "the server rejected this runner: runner {id} was forgotten by the server"
        )),
        "{err}"
    );
}
