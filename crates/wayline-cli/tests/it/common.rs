//! The test harness: a temporary home, a project folder, and the real binary.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use wayline_testkit::{
    Need, TempHome, docker_engine, docker_ready, eventually, free_port, git, skip, tool, wait_for,
};

/// The `wayline` binary under test.
pub fn wayline_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wayline"))
}

/// A user with an empty home (the shared [`TempHome`]) and a project folder.
pub struct TestEnv {
    pub home: TempHome,
    pub project: PathBuf,
    /// Whether the embedded server runs its URL service (off unless a test asks, so outputs
    /// do not carry its per-test port).
    pub urls: bool,
}

impl TestEnv {
    pub fn new() -> Self {
        let home = TempHome::new("wl-e2e-");
        let project = home.project().to_owned();
        Self {
            home,
            project,
            urls: false,
        }
    }

    /// A user whose embedded server runs the URL service.
    pub fn with_urls() -> Self {
        let mut env = Self::new();
        env.urls = true;
        env
    }

    /// Writes a file in the project folder.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        self.home.write(name, text)
    }

    /// A `wayline` command run in the project folder with this user's home.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.home.command(wayline_bin());
        c.args(args).env(
            "WAYLINE_URL_SERVICE",
            if self.urls { "true" } else { "false" },
        );
        c
    }

    /// Runs to completion (at most `limit`), returning the output.
    pub fn run_for(&self, args: &[&str], limit: Duration) -> Run {
        let child = self
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wayline");
        Run::wait(child, limit, args)
    }

    /// Runs with a two-minute limit.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_for(args, Duration::from_mins(2))
    }

    /// Runs and asserts success.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert!(
            r.success(),
            "`wayline {}` failed:\n{}",
            args.join(" "),
            r.all()
        );
        r
    }

    /// Runs, asserts success and parses stdout as one JSON value (`-json` output).
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let r = self.ok(args);
        serde_json::from_str(&r.stdout())
            .unwrap_or_else(|e| panic!("`{}` gave no JSON ({e}):\n{}", args.join(" "), r.all()))
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Stop the embedded server this test may have started; leave nothing running.
        let _ = self
            .cmd(&["server", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A finished command.
pub struct Run {
    pub output: Output,
}

impl Run {
    pub fn wait(mut child: Child, limit: Duration, args: &[&str]) -> Self {
        let deadline = Instant::now() + limit;
        loop {
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "`wayline {}` did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            output: child.wait_with_output().unwrap(),
        }
    }

    pub fn success(&self) -> bool {
        self.output.status.success()
    }
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    pub fn all(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout(), self.stderr())
    }
}

/// `GET url` over plain HTTP on loopback, returning the body (bounded in time).
pub fn http_get(url: &str) -> Option<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (hostport, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let addr: std::net::SocketAddr = hostport.parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200")
        .then(|| body.to_owned())
        .or_else(|| head.starts_with("HTTP/1.1 200").then(|| body.to_owned()))
}
