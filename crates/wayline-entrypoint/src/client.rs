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
    Tls(#[from] wayline_tls::TlsError),
    /// The token cannot be sent as a header.
    #[error("the token is not a valid header value")]
    BadToken,
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
    let (uri, tls) = match addr {
        ServerAddr::Unix(path) => (format!("unix://{}", path.display()), None),
        ServerAddr::Tcp {
            authority,
            tls,
            skip_verify,
        } => {
            // TLS is `wayline-tls`'s (the CLI's and runner's too), so tonic gets `http://`.
            let tls = tls.then(|| {
                let mut opts = wayline_tls::TlsOptions::verified_from_env();
                opts.skip_verify = *skip_verify;
                (authority.as_str(), opts)
            });
            (format!("http://{authority}"), tls)
        }
    };
    let endpoint = Endpoint::from_shared(uri)?
        .connect_timeout(CONNECT_TIMEOUT)
        // A server that vanished without closing (host down, NAT dropped) is noticed within ~30s.
        .http2_keep_alive_interval(Duration::from_secs(15))
        .keep_alive_timeout(Duration::from_secs(15))
        .keep_alive_while_idle(true)
        .tcp_nodelay(true);
    let dial = async {
        match tls {
            Some((authority, opts)) => {
                let config = wayline_tls::client_config(&opts)?;
                Ok(wayline_tls::channel(endpoint, authority, config).await?)
            }
            None => Ok::<_, ConnectError>(endpoint.connect().await?),
        }
    };
    let channel = tokio::time::timeout(CONNECT_TIMEOUT, dial)
        .await
        .map_err(|_| ConnectError::Timeout)??;
    let auth = (!token.is_empty())
        .then(|| format!("Bearer {token}").parse())
        .transpose()
        .map_err(|_| ConnectError::BadToken)?;
    Ok(WaylineClient::with_interceptor(channel, Auth(auth))
        .max_decoding_message_size(64 * 1024 * 1024))
}
