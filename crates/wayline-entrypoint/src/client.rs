//! The connection to the server: dialing out (unix socket or TCP) and the bearer token.

use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use wayline_proto::v1::wayline_client::WaylineClient;

use crate::settings::ServerAddr;

/// How long one dial may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The gRPC client every entrypoint RPC goes through.
pub type Client = WaylineClient<InterceptedService<Channel, Auth>>;

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Debug, Clone)]
pub struct Auth(Option<MetadataValue<Ascii>>);

impl Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// Why a dial failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Transport-level failure, with its causes (tonic's own message is just "transport error").
    #[error("{}", chain(.0))]
    Transport(#[from] tonic::transport::Error),
    /// The dial took too long.
    #[error("no answer within {}s", CONNECT_TIMEOUT.as_secs())]
    Timeout,
    /// TLS could not be set up.
    #[error("TLS: {0}")]
    Tls(String),
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let msg = c.to_string();
        if !out.ends_with(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = c.source();
    }
    out
}

/// Dials the server.
pub async fn connect(addr: &ServerAddr, token: &str) -> Result<Client, ConnectError> {
    let endpoint = match addr {
        ServerAddr::Unix(path) => Endpoint::from_shared(format!("unix://{}", path.display()))?,
        ServerAddr::Tcp {
            authority,
            tls,
            skip_verify,
        } => {
            let scheme = if *tls { "https" } else { "http" };
            let ep = Endpoint::from_shared(format!("{scheme}://{authority}"))?;
            if *tls {
                crate::tls::configure(ep, authority, *skip_verify)?
            } else {
                ep
            }
        }
    }
    .connect_timeout(CONNECT_TIMEOUT)
    // A server that vanished without closing (host down, NAT dropped) is noticed within ~30s.
    .http2_keep_alive_interval(Duration::from_secs(15))
    .keep_alive_timeout(Duration::from_secs(15))
    .keep_alive_while_idle(true)
    .tcp_nodelay(true);
    let channel = tokio::time::timeout(CONNECT_TIMEOUT, endpoint.connect())
        .await
        .map_err(|_| ConnectError::Timeout)??;
    let auth = (!token.is_empty())
        .then(|| format!("Bearer {token}").parse())
        .transpose()
        .map_err(|_| ConnectError::Tls("token is not a valid header value".into()))?;
    Ok(WaylineClient::with_interceptor(channel, Auth(auth))
        .max_decoding_message_size(64 * 1024 * 1024))
}
