//! `server run|bootstrap|snapshot|restore|stop|config-set` and `ui`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use wayline_core::pb::{self, snapshot_chunk};

use super::{Env, describe_status};
use crate::cli::{ServerCmd, ServerRunArgs};
use crate::context::{Contexts, ServerContext};
use crate::render::{note, say};
use crate::session::{self, EmbeddedPaths};

fn err(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(describe_status(&s))
}

pub(crate) async fn server(_env: &Env, cmd: ServerCmd) -> Result<ExitCode> {
    match cmd {
        ServerCmd::Run(args) => run(args).await,
        ServerCmd::Bootstrap {
            server_addr,
            tls_skip_verify,
            tls,
            context_create,
        } => bootstrap(server_addr, tls, tls_skip_verify, context_create).await,
        ServerCmd::Snapshot { file } => snapshot(&file).await,
        ServerCmd::Restore { file } => restore(&file).await,
        ServerCmd::Stop => stop().await,
        ServerCmd::ConfigSet {
            advertise_addr,
            advertise_tls,
            advertise_tls_skip_verify,
        } => config_set(advertise_addr, advertise_tls, advertise_tls_skip_verify).await,
    }
}

/// Takes the bootstrap token of a new server; with `context_create`, saves it as a context.
async fn bootstrap(
    server_addr: String,
    tls: bool,
    tls_skip_verify: bool,
    context_create: Option<String>,
) -> Result<ExitCode> {
    let parsed: wayline_runner::ServerAddr = server_addr.parse()?;
    let mut opts = wayline_runner::client::ConnectOptions::new(parsed);
    opts.tls = tls;
    opts.tls_skip_verify = tls_skip_verify;
    let mut client = wayline_runner::client::connect(&opts).await?;
    let token = client
        .bootstrap_token(())
        .await
        .map_err(err)?
        .into_inner()
        .token;
    if let Some(name) = context_create {
        let contexts = Contexts::open();
        let ctx = ServerContext {
            address: server_addr,
            token: token.clone(),
            tls,
            tls_skip_verify,
            embedded: false,
        };
        contexts.set(&name, &ctx)?;
        contexts.set_default(&name)?;
        note!("Context `{name}` created and set as the default.");
    }
    say!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// Streams a snapshot of the server's data to `file`, checking its sha256.
async fn snapshot(file: &std::path::Path) -> Result<ExitCode> {
    let mut s = session::connect().await?;
    let mut stream = s
        .client
        .create_snapshot(())
        .await
        .map_err(err)?
        .into_inner();
    let tmp = file.with_extension("partial");
    // A snapshot holds every config secret: readable by this user only.
    let mut out = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .await
        .with_context(|| format!("cannot write `{}`", tmp.display()))?;
    let mut hasher = Sha256::new();
    let mut size = 0usize;
    let mut expected = None;
    while let Some(chunk) = stream.next().await {
        match chunk.map_err(err)?.event {
            Some(snapshot_chunk::Event::Data(d)) => {
                hasher.update(&d);
                size += d.len();
                out.write_all(&d).await?;
            }
            Some(snapshot_chunk::Event::Sha256(h)) => expected = Some(h),
            None => {}
        }
    }
    out.flush().await?;
    let actual = hex::encode(hasher.finalize());
    match expected {
        Some(h) if h == actual => {}
        Some(h) => {
            bail!("the snapshot is corrupt: the server said sha256 {h}, received {actual}")
        }
        None => {
            bail!("the snapshot stream ended without its checksum; the file is incomplete")
        }
    }
    tokio::fs::rename(&tmp, &file).await?;
    say!(
        "Snapshot written to `{}` ({size} bytes, sha256 {actual}).",
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Sends `file` to the server to restore its data from.
async fn restore(file: &std::path::Path) -> Result<ExitCode> {
    let data = fs_err::read(file)?;
    let digest = hex::encode(Sha256::digest(&data));
    let mut chunks: Vec<pb::SnapshotChunk> = data
        .chunks(1 << 20)
        .map(|c| pb::SnapshotChunk {
            event: Some(snapshot_chunk::Event::Data(c.to_vec())),
        })
        .collect();
    chunks.push(pb::SnapshotChunk {
        event: Some(snapshot_chunk::Event::Sha256(digest)),
    });
    let mut s = session::connect().await?;
    let resp = s
        .client
        .restore_snapshot(tokio_stream::iter(chunks))
        .await
        .map_err(err)?;
    say!("Restored the server's data from `{}`.", file.display());
    if resp.metadata().get("wayline-restart-required").is_some() {
        if s.context.embedded {
            say!(
                "Restart your local server to use it: `wayline server stop` (the next command starts it again)."
            );
        } else {
            say!("Restart the server to use it; until then it serves its current data.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Changes what the server advertises to runners and entrypoints.
async fn config_set(
    advertise_addr: Option<String>,
    advertise_tls: Option<bool>,
    advertise_tls_skip_verify: Option<bool>,
) -> Result<ExitCode> {
    let mut s = session::connect().await?;
    let mut cfg = s
        .client
        .get_server_config(())
        .await
        .map_err(err)?
        .into_inner();
    if let Some(a) = advertise_addr {
        cfg.advertise_addr = a;
    }
    if let Some(t) = advertise_tls {
        cfg.advertise_tls = t;
    }
    if let Some(t) = advertise_tls_skip_verify {
        cfg.advertise_tls_skip_verify = t;
    }
    s.client.set_server_config(cfg).await.map_err(err)?;
    say!("Server config updated.");
    Ok(ExitCode::SUCCESS)
}

/// Runs the server in the foreground until SIGINT/SIGTERM.
async fn run(args: ServerRunArgs) -> Result<ExitCode> {
    // Everything the server creates is for this user only (database, WAL, keys, snapshots).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let data_dir = args.data_dir.clone().unwrap_or_else(|| {
        if args.embedded {
            EmbeddedPaths::new().dir
        } else {
            crate::context::data_dir().join("server")
        }
    });
    let mut opts = wayline_server::ServerOptions::new(&data_dir);
    if let Some(db) = args.db.clone() {
        opts.db_path = db;
    }
    opts.listen_grpc = args
        .listen_grpc
        .parse()
        .with_context(|| format!("-listen-grpc `{}`", args.listen_grpc))?;
    opts.listen_http = args
        .listen_http
        .parse()
        .with_context(|| format!("-listen-http `{}`", args.listen_http))?;
    let unix_socket = args
        .listen_unix
        .clone()
        .unwrap_or_else(|| EmbeddedPaths::socket_in(&data_dir));
    let url = super::url_service::prepare(&args, &unix_socket).await?;
    opts.url = url.as_ref().map(|(_, o)| o.clone());
    opts.unix_socket = Some(unix_socket);
    opts.socket_mode = args.socket_mode;
    opts.reinitialize = args.reinitialize;
    opts.tls_cert_file = args.tls_cert_file.clone();
    opts.tls_key_file = args.tls_key_file.clone();
    opts.advertise_addr = args.advertise_addr.clone();
    opts.ack_timeout = Duration::from_secs(args.ack_timeout);
    opts.heartbeat_timeout = Duration::from_secs(args.heartbeat_timeout);
    let signals = wayline_server::Signals::install()?;
    let started = Instant::now();
    let server = match wayline_server::start(opts.clone()).await {
        // The embedded server must come up even when another server (another user's, or
        // one started by hand) holds the default ports: it then takes free ones. Its clients
        // use the unix socket, and `http.addr` records where the HTTP side went.
        Err(wayline_server::Error::Listen { .. }) if args.embedded => {
            opts.listen_grpc.set_port(0);
            opts.listen_http.set_port(0);
            wayline_server::start(opts).await
        }
        other => other,
    }
    .context("the server could not start")?;
    let url_service = match url {
        Some((listener, o)) => Some(
            super::url_service::start(&server, listener, &o, &args, &data_dir)
                .context("the URL service could not start")?,
        ),
        None => None,
    };
    note!(
        "Wayline server ready in {} ms: gRPC {} (TLS), HTTP http://{}, socket {}{}",
        started.elapsed().as_millis(),
        server.grpc_addr(),
        server.http_addr(),
        server
            .unix_socket()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        url_service
            .as_ref()
            .map(|u| format!(
                ", URLs http://<app>.{}:{}/",
                args.url_domain,
                u.ingress_addr().port()
            ))
            .unwrap_or_default()
    );
    server.wait_on(signals).await;
    if let Some(u) = url_service {
        u.shutdown();
    }
    note!("Server stopped.");
    Ok(ExitCode::SUCCESS)
}

/// Stops the embedded default server: SIGTERM to the process holding its data dir's lock (so
/// it works without the socket), then waits until the lock is released.
async fn stop() -> Result<ExitCode> {
    let paths = EmbeddedPaths::new();
    let Some(holder) = paths.running() else {
        if session::is_listening(&paths.legacy_socket()).await {
            return stop_legacy(&paths).await;
        }
        say!("Your local server is not running.");
        return Ok(ExitCode::SUCCESS);
    };
    let pid = nix::unistd::Pid::from_raw(
        i32::try_from(holder.pid).context("the server's lock names no valid pid")?,
    );
    if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_err() {
        say!("Your local server is not running.");
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if paths.running().is_none() {
            say!("Stopped your local server.");
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("the local server (pid {pid}) did not stop within 20s")
}

/// Stops a local server started by a version before the data dir lock: it answers on the old
/// socket path and wrote its pid to `server.pid`.
async fn stop_legacy(paths: &EmbeddedPaths) -> Result<ExitCode> {
    let pid_file = paths.dir.join("server.pid");
    let text = fs_err::read_to_string(&pid_file)?;
    let pid: i32 = text
        .trim()
        .parse()
        .with_context(|| format!("`{}` does not hold a pid", pid_file.display()))?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .with_context(|| format!("cannot stop the older local server (pid {pid})"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if !session::is_listening(&paths.legacy_socket()).await {
            say!("Stopped your local server.");
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("the older local server (pid {pid}) did not stop within 20s")
}

/// `wayline ui`: mints a one-hour login token and opens the UI with it (the server turns it
/// into the session cookie and drops it from the address; the link works once).
pub(crate) async fn ui(http_addr: Option<String>, no_browser: bool) -> Result<ExitCode> {
    let mut s = session::connect().await?;
    let http = match http_addr {
        Some(a) => a,
        None if s.context.embedded => std::fs::read_to_string(EmbeddedPaths::new().dir.join("http.addr"))
            .context("the local server has not recorded its HTTP address; restart it with `wayline server stop`")?
            .trim()
            .to_owned(),
        None => {
            let host = s.context.address.rsplit_once(':').map_or(s.context.address.as_str(), |(h, _)| h);
            format!("{host}:9702")
        }
    };
    let token = s
        .client
        .generate_login_token(pb::GenerateLoginTokenRequest {
            expires_in: "1h".into(),
        })
        .await
        .map_err(err)?
        .into_inner()
        .token;
    let url = format!("http://{http}/?token={token}");
    say!("The web UI is at http://{http}/ (this link signs you in once, for an hour):\n{url}");
    if !no_browser {
        // Best effort: without a desktop there is simply no browser to start.
        let _ = std::process::Command::new("xdg-open")
            .arg(&url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
    Ok(ExitCode::SUCCESS)
}
