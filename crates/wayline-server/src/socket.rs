//! The unix socket listener, which can be re-created while the server runs.
//!
//! A tmp cleaner or a user may delete `server.sock` while the server runs; the server keeps
//! serving TCP but local clients cannot reach it. On SIGHUP (sent by the CLI, which finds the
//! server through its lock) [`UnixSocket::recreate`] binds a fresh socket at the same path. The
//! gRPC server reads connections from a channel fed by an accept task, so the listener can be
//! swapped without restarting the gRPC server.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::Error;

type Recreate = oneshot::Sender<Result<bool, Error>>;

/// Handle on the accept task.
#[derive(Debug, Clone)]
pub(crate) struct UnixSocket {
    recreate: mpsc::Sender<Recreate>,
}

/// The bound socket and the inode it has, to tell it from a file put in its place.
struct Bound {
    listener: UnixListener,
    ino: u64,
}

fn bind(path: &Path, mode: u32) -> Result<Bound, Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    if std::fs::symlink_metadata(path).is_ok() {
        // A socket left by a server that was killed (this server holds the data dir's lock, so
        // no live server uses it); binding would fail with EADDRINUSE.
        std::fs::remove_file(path).map_err(io)?;
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    let ino = std::fs::metadata(path).map_err(io)?.ino();
    Ok(Bound { listener, ino })
}

impl UnixSocket {
    /// Binds `path` with `mode` and returns the handle and the stream of accepted connections,
    /// which ends when `stop` turns true.
    pub(crate) fn serve(
        path: PathBuf,
        mode: u32,
        stop: watch::Receiver<bool>,
    ) -> Result<(Self, ReceiverStream<std::io::Result<UnixStream>>), Error> {
        let bound = bind(&path, mode)?;
        let (conn_tx, conn_rx) = mpsc::channel(16);
        let (recreate_tx, recreate_rx) = mpsc::channel(4);
        tokio::spawn(accept_loop(path, mode, bound, conn_tx, recreate_rx, stop));
        Ok((
            Self {
                recreate: recreate_tx,
            },
            ReceiverStream::new(conn_rx),
        ))
    }

    /// Binds the socket again if its file is gone or replaced; true when it did.
    pub(crate) async fn recreate(&self) -> Result<bool, Error> {
        let (tx, rx) = oneshot::channel();
        if self.recreate.send(tx).await.is_err() {
            return Ok(false);
        }
        rx.await.unwrap_or(Ok(false))
    }
}

async fn accept_loop(
    path: PathBuf,
    mode: u32,
    mut bound: Bound,
    conns: mpsc::Sender<std::io::Result<UnixStream>>,
    mut recreate: mpsc::Receiver<Recreate>,
    stop: watch::Receiver<bool>,
) {
    let stopped = crate::stop_signal(stop);
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            accepted = bound.listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if conns.send(Ok(stream)).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment instead of spinning.
                    tracing::warn!(error = %e, "accepting on the unix socket");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(reply) = recreate.recv() => {
                let present = std::fs::metadata(&path).is_ok_and(|m| m.ino() == bound.ino);
                let result = if present {
                    Ok(false)
                } else {
                    bind(&path, mode).map(|b| {
                        tracing::warn!(socket = %path.display(), "re-created the unix socket");
                        bound = b;
                        true
                    })
                };
                let _ = reply.send(result);
            }
            () = &mut stopped => break,
        }
    }
    // Remove the file only if it is still ours.
    if std::fs::metadata(&path).is_ok_and(|m| m.ino() == bound.ino) {
        let _ = std::fs::remove_file(&path);
    }
}
