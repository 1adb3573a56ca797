//! One server per data dir, owner-only files, and what a lost or damaged database does.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{TestEnv, eventually, free_port};

fn embedded_dir(env: &TestEnv) -> PathBuf {
    env.home.path().join("data/wayline/server")
}

/// Pids of `wayline server run` processes whose command line names `data_dir`.
fn servers_on(data_dir: &Path) -> Vec<u32> {
    let needle = data_dir.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "run") && args.iter().any(|a| a == &needle) {
            out.push(pid);
        }
    }
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `server run` on `data_dir` with free ports (and extra flags), in the background.
fn server_run(env: &TestEnv, data_dir: &Path, extra: &[&str]) -> std::process::Child {
    let grpc = format!("127.0.0.1:{}", free_port());
    let http = format!("127.0.0.1:{}", free_port());
    let mut args = vec![
        "server",
        "run",
        "-data-dir",
        data_dir.to_str().unwrap(),
        "-listen-grpc",
        &grpc,
        "-listen-http",
        &http,
    ];
    args.extend_from_slice(extra);
    env.cmd(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a background server to exit (bounded) and returns its status and stderr.
fn exit_of(child: std::process::Child) -> (std::process::ExitStatus, String) {
    let mut child = child;
    let done = eventually(Duration::from_secs(20), || {
        child.try_wait().unwrap().is_some()
    });
    if !done {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        done,
        "the server did not exit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn socket_answers(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// A started `server run` that is killed when dropped.
struct Bg(std::process::Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Stops a server with SIGTERM (a clean shutdown checkpoints the WAL into the database).
fn stop(server: Bg) {
    let mut server = server;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(server.0.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(
        eventually(Duration::from_secs(20), || server
            .0
            .try_wait()
            .unwrap()
            .is_some()),
        "the server did not stop on SIGTERM"
    );
}

fn started(env: &TestEnv, data_dir: &Path, extra: &[&str]) -> Bg {
    let child = Bg(server_run(env, data_dir, extra));
    let sock = data_dir.join("socket/server.sock");
    assert!(
        eventually(Duration::from_secs(20), || socket_answers(&sock)),
        "the server did not start"
    );
    child
}

#[test]
fn a_deleted_socket_brings_back_the_running_server_not_a_second_one() {
    let env = TestEnv::new();
    env.ok(&["project", "list"]);
    let dir = embedded_dir(&env);
    // The context holding the embedded server's token is the user's alone.
    let contexts = env.home.path().join("config/wayline/contexts");
    assert_eq!(mode(&contexts), 0o700);
    assert_eq!(mode(&contexts.join("local.json")), 0o600);
    assert_eq!(mode(&dir), 0o700);
    let first = servers_on(&dir);
    assert_eq!(first.len(), 1, "one server after the first command");
    std::fs::remove_file(dir.join("socket/server.sock")).unwrap();

    let r = env.ok(&["project", "list"]);
    assert!(
        r.stderr().contains(&format!(
            "Your local Wayline server (pid {}) had lost its socket",
            first[0]
        )),
        "{}",
        r.all()
    );
    assert_eq!(servers_on(&dir), first, "still the one server");
    env.ok(&["project", "list"]);

    // `server stop` works without the socket: it finds the server through its lock.
    std::fs::remove_file(dir.join("socket/server.sock")).unwrap();
    let r = env.ok(&["server", "stop"]);
    assert_eq!(r.stdout().trim(), "Stopped your local server.");
    assert!(servers_on(&dir).is_empty(), "the server is gone");
    let r = env.ok(&["server", "stop"]);
    assert_eq!(r.stdout().trim(), "Your local server is not running.");
}

#[test]
fn a_second_server_on_one_data_dir_or_database_refuses_to_start() {
    let env = TestEnv::new();
    let dir = env.home.path().join("srv");
    let first = started(&env, &dir, &[]);
    let pid = first.0.id();
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("server.lock")).unwrap()).unwrap();
    let addrs = format!(
        "pid {pid}, gRPC {}, HTTP {}, socket {}",
        lock["grpc"].as_str().unwrap(),
        lock["http"].as_str().unwrap(),
        dir.join("socket/server.sock").display()
    );

    let (status, stderr) = exit_of(server_run(&env, &dir, &[]));
    assert!(!status.success());
    assert!(
        stderr.contains(&format!(
            "another Wayline server is already using the data dir `{}` ({addrs}); stop it first",
            dir.display()
        )),
        "{stderr}"
    );

    let db = dir.join("wayline.db");
    let other = env.home.path().join("other");
    let (status, stderr) = exit_of(server_run(&env, &other, &["-db", db.to_str().unwrap()]));
    assert!(!status.success());
    assert!(
        stderr.contains(&format!(
            "another Wayline server is already using the database `{}` ({addrs})",
            db.display()
        )),
        "{stderr}"
    );
    assert!(
        !other.join("server.pid").exists() && !other.join("socket/server.sock").exists(),
        "the refused server wrote nothing a client would follow"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("server.pid")).unwrap(),
        pid.to_string()
    );
    drop(first);
}

#[test]
fn the_data_dir_and_its_files_are_private_and_shared_ones_are_refused() {
    let env = TestEnv::new();
    let dir = env.home.path().join("srv");
    let server = started(&env, &dir, &[]);
    assert_eq!(mode(&dir), 0o700);
    for f in [
        "wayline.db",
        "wayline.db-wal",
        "wayline.db-shm",
        "signing.key",
        "server.lock",
        "tls/server.key",
        "tls/server.crt",
        "socket/server.sock",
    ] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    drop(server);

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (status, stderr) = exit_of(server_run(&env, &dir, &[]));
    assert!(!status.success());
    assert!(
        stderr.contains(&format!(
            "`{0}` is accessible by other users (mode 0755); make it private with `chmod 700 {0}`",
            dir.display()
        )),
        "{stderr}"
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let key = dir.join("signing.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (status, stderr) = exit_of(server_run(&env, &dir, &[]));
    assert!(!status.success());
    assert!(
        stderr.contains(&format!(
            "`{0}` is accessible by other users (mode 0644); make it private with `chmod 600 {0}`",
            key.display()
        )),
        "{stderr}"
    );
}

/// Runs `args` as the `nobody` user; `None` (with the reason printed) when that is impossible.
fn as_nobody(args: &[&str]) -> Option<std::process::Output> {
    use std::os::unix::fs::MetadataExt as _;
    // /proc/self belongs to the effective user.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let runuser = Command::new("runuser").arg("--help").output().is_ok();
    let python = Path::new("/usr/bin/python3").exists();
    if !root || !runuser || !python {
        eprintln!(
            "skipping the second-user check: it needs root, `runuser` and /usr/bin/python3 (root: {root}, runuser: {runuser}, python: {python})"
        );
        return None;
    }
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "nobody", "--"]).args(args);
    Some(cmd.output().unwrap())
}

#[test]
fn another_local_user_can_neither_read_the_key_nor_connect() {
    let env = TestEnv::new();
    // Open the way down to the data dir, so only the server's own modes keep `nobody` out.
    for d in [env.home.path().to_owned(), env.home.path().join("data")] {
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let dir = env.home.path().join("data/srv");
    let _server = started(&env, &dir, &[]);
    let key = dir.join("signing.key");
    let sock = dir.join("socket/server.sock");
    let probe = format!(
        "cat {} >/dev/null && echo READ; \
         /usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(\"CONNECTED\")' {} 2>&1",
        key.display(),
        sock.display()
    );
    let Some(out) = as_nobody(&["sh", "-c", &probe]) else {
        return;
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("READ") && !text.contains("CONNECTED"),
        "{text}"
    );
    assert!(text.contains("Permission denied"), "{text}");
    // Even with the data dir opened up by mistake after start, the files keep their own modes.
    for d in [dir.clone(), dir.join("socket")] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    let out = as_nobody(&["sh", "-c", &probe]).unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("READ") && !text.contains("CONNECTED"),
        "{text}"
    );
    assert_eq!(text.matches("Permission denied").count(), 2, "{text}");
}

#[test]
fn a_lost_database_is_refused_unless_reinitialize() {
    let env = TestEnv::new();
    let dir = env.home.path().join("srv");
    stop(started(&env, &dir, &[]));
    let db = dir.join("wayline.db");
    for p in ["wayline.db-wal", "wayline.db-shm"] {
        let _ = std::fs::remove_file(dir.join(p));
    }
    std::fs::write(&db, b"").unwrap();
    let (status, stderr) = exit_of(server_run(&env, &dir, &[]));
    assert!(!status.success());
    assert!(
        stderr.contains(&format!(
            "the database `{}` is missing or empty, but this data dir was used before",
            db.display()
        )),
        "{stderr}"
    );
    let old_key = std::fs::read(dir.join("signing.key")).unwrap();
    stop(started(&env, &dir, &["-reinitialize"]));
    assert_ne!(
        std::fs::read(dir.join("signing.key")).unwrap(),
        old_key,
        "a new life gets a new signing key"
    );

    // A damaged file is refused, with the restore command.
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(
        bytes.len() > 8192,
        "a clean stop checkpoints everything into the database file ({} bytes)",
        bytes.len()
    );
    // Page 2, the root of the first table.
    bytes[4096..8192].fill(0xA5);
    std::fs::write(&db, &bytes).unwrap();
    for p in ["wayline.db-wal", "wayline.db-shm"] {
        let _ = std::fs::remove_file(dir.join(p));
    }
    let (status, stderr) = exit_of(server_run(&env, &dir, &[]));
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("the database `{}` is damaged (", db.display()))
            && stderr.contains(&format!(
                "Restore the last snapshot with `cp <snapshot> {}",
                db.display()
            )),
        "{stderr}"
    );
}

#[test]
fn an_older_server_without_the_lock_is_not_joined_by_a_second_one() {
    let env = TestEnv::new();
    let dir = embedded_dir(&env);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let sock = dir.join("server.sock");
    // Stands in for a server of a version before the lock: it listens on the old socket path
    // and wrote its pid to `server.pid`.
    let old = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import socket,sys,time\ns=socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\ns.listen()\nwhile True: s.accept()",
        ])
        .arg(&sock)
        .spawn();
    let Ok(old) = old else {
        eprintln!("skipping: /usr/bin/python3 is needed to stand in for an older server");
        return;
    };
    let old = Bg(old);
    assert!(eventually(Duration::from_secs(10), || socket_answers(
        &sock
    )));
    std::fs::write(dir.join("server.pid"), old.0.id().to_string()).unwrap();

    let r = env.run(&["project", "list"]);
    assert!(!r.success());
    assert!(
        r.stderr().contains(&format!(
            "an older local Wayline server is still running (socket `{}`); stop it with `wayline server stop`",
            sock.display()
        )),
        "{}",
        r.all()
    );
    assert!(servers_on(&dir).is_empty(), "no second server was started");
    let r = env.ok(&["server", "stop"]);
    assert_eq!(r.stdout().trim(), "Stopped your local server.");
    env.ok(&["project", "list"]);
    assert_eq!(servers_on(&dir).len(), 1);
}
