//! Connecting the CLI to a server: the current context, or the user's embedded default server,
//! started in the background on first use.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use fs_err as fs;
use fs_err::os::unix::fs::OpenOptionsExt as _;
use wayline_runner::client::{self, Auth, Client, ConnectOptions, ServerAddr};

use crate::context::{Contexts, ServerContext, data_dir};
use crate::render::note;

/// The name of the context the CLI creates for the embedded default server.
pub(crate) const EMBEDDED_CONTEXT: &str = "local";

/// A connected client and what it is connected to.
pub(crate) struct Session {
    pub(crate) client: Client,
    pub(crate) auth: Auth,
    pub(crate) context: ServerContext,
}

/// Files of the embedded default server.
pub(crate) struct EmbeddedPaths {
    pub(crate) dir: PathBuf,
}

impl EmbeddedPaths {
    pub(crate) fn new() -> Self {
        Self {
            dir: data_dir().join("server"),
        }
    }
    pub(crate) fn socket(&self) -> PathBuf {
        Self::socket_in(&self.dir)
    }
    /// The default socket of a server with data dir `dir`: in its own directory, so that
    /// mounting the socket's directory into a container exposes nothing else.
    pub(crate) fn socket_in(dir: &Path) -> PathBuf {
        dir.join("socket").join("server.sock")
    }
    /// Where servers before the data dir lock put their socket.
    pub(crate) fn legacy_socket(&self) -> PathBuf {
        self.dir.join("server.sock")
    }
    /// The running server holding the data dir's lock, if any.
    pub(crate) fn running(&self) -> Option<wayline_server::lock::Holder> {
        wayline_server::lock::probe(&wayline_server::lock::data_dir_lock_path(&self.dir))
    }
    pub(crate) fn log_file(&self) -> PathBuf {
        self.dir.join("server.log")
    }
}

/// Connects using the current context, or the embedded default server when none is configured.
pub(crate) async fn connect() -> Result<Session> {
    let contexts = Contexts::open();
    match contexts.current()? {
        Some((_, ctx)) if ctx.embedded => connect_embedded(&contexts, Some(ctx)).await,
        Some((name, ctx)) => {
            let client_and_auth = dial(&ctx).await.with_context(|| {
                format!(
                    "context `{name}` points at {}; check it with `wayline context verify`",
                    ctx.address
                )
            })?;
            Ok(Session {
                client: client_and_auth.0,
                auth: client_and_auth.1,
                context: ctx,
            })
        }
        None => connect_embedded(&contexts, None).await,
    }
}

/// Connects to the current context's server without sending its token (a runner asking to be
/// adopted). The server must be running already.
pub(crate) async fn connect_without_token() -> Result<Session> {
    let contexts = Contexts::open();
    let ctx = match contexts.current()? {
        Some((_, ctx)) => ctx,
        None => ServerContext {
            address: format!("unix://{}", EmbeddedPaths::new().socket().display()),
            tls: false,
            ..Default::default()
        },
    };
    let ctx = ServerContext {
        token: String::new(),
        ..ctx
    };
    let (client, auth) = dial(&ctx).await?;
    Ok(Session {
        client,
        auth,
        context: ctx,
    })
}

async fn dial(ctx: &ServerContext) -> Result<(Client, Auth)> {
    let addr: ServerAddr = ctx.address.parse()?;
    let mut opts = ConnectOptions::new(addr);
    opts.tls = ctx.tls;
    opts.tls_skip_verify = ctx.tls_skip_verify;
    let channel = client::channel(&opts).await?;
    let auth = client::auth(Some(&ctx.token))?;
    Ok((client::with_auth(channel, auth.clone()), auth))
}

/// Uses the embedded default server, starting it if it is not running.
async fn connect_embedded(contexts: &Contexts, existing: Option<ServerContext>) -> Result<Session> {
    let paths = EmbeddedPaths::new();
    let socket = paths.socket();
    let ready = match existing {
        Some(ctx) if !ctx.token.is_empty() && is_listening(&socket).await => Some(ctx),
        _ => None,
    };
    let ctx = match ready {
        Some(ctx) => ctx,
        None => {
            // Two first commands at once must not both start (or bootstrap) a server: the
            // second waits for the first under a file lock, then finds everything in place.
            let _lock = lock_start(&paths).await?;
            if !is_listening(&socket).await && !revive_socket(&paths).await? {
                start_embedded(&paths).await?;
                note!(
                    "Started your local Wayline server in the background (data in `{}`); `wayline server stop` stops it.",
                    paths.dir.display()
                );
            }
            match contexts.get(EMBEDDED_CONTEXT)? {
                Some(ctx) if ctx.embedded && !ctx.token.is_empty() => ctx,
                _ => bootstrap_embedded(contexts, &paths).await?,
            }
        }
    };
    let (client, auth) = dial(&ctx).await?;
    Ok(Session {
        client,
        auth,
        context: ctx,
    })
}

/// Holds the embedded server's start lock until dropped.
async fn lock_start(paths: &EmbeddedPaths) -> Result<nix::fcntl::Flock<std::fs::File>> {
    create_private_dir(&paths.dir)?;
    let file = fs::OpenOptions::new()
        .mode(0o600)
        .create(true)
        .truncate(false)
        .write(true)
        .open(paths.dir.join("start.lock"))?
        .into_file();
    tokio::task::spawn_blocking(move || {
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
    })
    .await?
    .map_err(|(_, e)| anyhow::anyhow!("cannot lock the local server's start: {e}"))
}

/// Gets the new embedded server's first token and stores it in the `local` context.
async fn bootstrap_embedded(contexts: &Contexts, paths: &EmbeddedPaths) -> Result<ServerContext> {
    let socket = paths.socket();
    let address = format!("unix://{}", socket.display());
    let (mut client, _) = dial(&ServerContext {
        address: address.clone(),
        ..Default::default()
    })
    .await?;
    let token = match client.bootstrap_token(()).await {
        Ok(resp) => resp.into_inner().token,
        Err(status) => bail!(
            "the local server at `{}` was already bootstrapped, but no context holds its token ({}). \
             Log in with `wayline login unix://{} -token <token>` or remove `{}` to start afresh",
            paths.dir.display(),
            status.message(),
            socket.display(),
            paths.dir.display()
        ),
    };
    let ctx = ServerContext {
        address,
        token,
        tls: false,
        tls_skip_verify: false,
        embedded: true,
    };
    contexts.set(EMBEDDED_CONTEXT, &ctx)?;
    if contexts.default_name()?.is_none() {
        contexts.set_default(EMBEDDED_CONTEXT)?;
    }
    Ok(ctx)
}

/// True when something accepts connections on the socket.
pub(crate) async fn is_listening(socket: &Path) -> bool {
    tokio::net::UnixStream::connect(socket).await.is_ok()
}

/// When the local server runs but its socket is gone (deleted by a tmp cleaner or a user),
/// asks it with SIGHUP to re-create the socket; true once the socket answers, false when no
/// server runs. Starting a second server instead would put two servers on one database.
async fn revive_socket(paths: &EmbeddedPaths) -> Result<bool> {
    let Some(holder) = paths.running() else {
        return Ok(false);
    };
    let socket = paths.socket();
    let pid = i32::try_from(holder.pid).unwrap_or(0);
    if pid > 0 {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGHUP,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if is_listening(&socket).await {
            note!(
                "Your local Wayline server (pid {}) had lost its socket `{}`; it made a new one.",
                holder.pid,
                socket.display()
            );
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!(
        "your local Wayline server is running ({}) but does not answer on its socket `{}`. \
         Stop it with `wayline server stop` (the next command starts it again)",
        holder.describe(),
        socket.display()
    )
}

/// Starts `wayline server run -embedded` detached from this process and waits for its socket.
async fn start_embedded(paths: &EmbeddedPaths) -> Result<()> {
    if is_listening(&paths.legacy_socket()).await {
        // A server from before the lock (and the socket's own directory) is still running; a
        // new one would share its database.
        bail!(
            "an older local Wayline server is still running (socket `{}`); stop it with \
             `wayline server stop`, then run this command again",
            paths.legacy_socket().display()
        );
    }
    let socket = paths.socket();
    let log = fs::OpenOptions::new()
        .mode(0o600)
        .create(true)
        .append(true)
        .open(paths.log_file())?;
    let exe = std::env::current_exe()
        .context("cannot find the wayline executable to start the local server")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["server", "run", "--embedded", "--data-dir"])
        .arg(&paths.dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?.into_file())
        .stderr(log.into_file());
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: Ctrl-C in the terminal that started it must not stop it.
        cmd.process_group(0);
    }
    let mut child = cmd
        .spawn()
        .context("could not start the local Wayline server")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if is_listening(&socket).await {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            let tail = tail_lines(&paths.log_file(), 15);
            bail!("the local Wayline server exited at start ({status}); its log says:\n{tail}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!(
        "the local Wayline server did not start within 15s; see `{}`",
        paths.log_file().display()
    )
}

/// Creates the embedded server's data dir (and missing parents) for this user only.
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create `{}`", dir.display()))
}

/// The last `n` lines of a file, for error messages.
pub(crate) fn tail_lines(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
