//! go-plugin's `GRPCBroker` from the host side: one `StartStream` per plugin, on which each side
//! announces (`ConnInfo`) the listeners it serves extra services on. The host serves a call's
//! `TerminalUIService` this way: a fresh id, a unix listener in the plugin's private dir, the
//! `ConnInfo` sent, then the plugin dials it (it gives up after about 5 s).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tonic::transport::Channel;

use crate::pb::plugin::ConnInfo;
use crate::pb::plugin::grpc_broker_client::GrpcBrokerClient;

/// The host's end of the broker stream.
pub(crate) struct Broker {
    tx: mpsc::Sender<ConnInfo>,
    next: AtomicU32,
    dir: PathBuf,
}

/// Stops a brokered server when dropped (and removes its socket).
pub(crate) struct Served {
    stop: Option<oneshot::Sender<()>>,
    path: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Broker {
    /// Opens the broker stream; the plugin's own announcements are logged.
    pub(crate) async fn start(
        channel: &Channel,
        dir: &Path,
        plugin: &str,
    ) -> Result<Self, tonic::Status> {
        let (tx, rx) = mpsc::channel(16);
        let mut incoming = GrpcBrokerClient::new(channel.clone())
            .start_stream(ReceiverStream::new(rx))
            .await?
            .into_inner();
        let plugin = plugin.to_owned();
        tokio::spawn(async move {
            while let Ok(Some(info)) = incoming.message().await {
                tracing::debug!(plugin, id = info.service_id, addr = %info.address, "broker: plugin serves");
            }
        });
        Ok(Self {
            tx,
            next: AtomicU32::new(1),
            dir: dir.to_owned(),
        })
    }

    /// A broker id not used before on this stream.
    pub(crate) fn next_id(&self) -> u32 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Serves `router` on a new unix listener and announces it as `id`.
    pub(crate) async fn serve(
        &self,
        id: u32,
        router: tonic::transport::server::Router,
    ) -> Result<Served, String> {
        let path = self.dir.join(format!("broker-{id}.sock"));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .map_err(|e| format!("cannot listen on `{}`: {e}", path.display()))?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = router
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await;
        });
        self.tx
            .send(ConnInfo {
                service_id: id,
                network: "unix".into(),
                address: path.display().to_string(),
                knock: None,
            })
            .await
            .map_err(|_| "the plugin closed its broker stream".to_owned())?;
        Ok(Served {
            stop: Some(stop),
            path,
        })
    }
}
