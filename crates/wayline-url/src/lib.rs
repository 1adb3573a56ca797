//! `wayline-url`: the URL service, and the tunnel client the entrypoint links.
//!
//! Every deployment answers at `<app>--v<N>.<domain>` and every app's release at
//! `<app>.<domain>` (`localhost` by default, so `http://web--v2.localhost:9703/` works with no
//! DNS). The service accepts HTTP on its ingress port, routes by `Host` through a [`table`]
//! rebuilt whenever the server's routes or the tunnels change, balances a deployment's
//! instances by fewest requests in flight, and answers itself when it cannot: 404 with the app's
//! hosts for an unknown one, 503 with the reason when nothing can serve, 502 when the instance
//! failed mid-way.
//!
//! # Limits and figures
//! Each host has a request rate with a burst (429 with `Retry-After` beyond it) and a bandwidth
//! that slows bodies down ([`limits`], [`metered`]); each deployment a bound on its requests in
//! flight (503); each tunnel count per deployment a bound ([`TunnelLimits`]). The app's own
//! limits come on its routes, the rest from [`Options::limits`]. Per-host answers by status
//! class, bytes and latency are kept in atomics and written for `/metrics` by [`metrics`].
//! See `docs/url-service.md`.
//!
//! # The tunnel: reverse HTTP/2
//! The entrypoint dials *out* (a unix socket in the server's socket directory, which local
//! Docker containers have bind-mounted; or TCP), sends one [`preface`] line with its deployment
//! id and a token the server minted for that deployment's URL capability only, and then
//! **serves HTTP/2** on that connection; the URL service is the HTTP/2 *client*. We chose this
//! over a byte-stream multiplexer (yamux) carrying raw TCP because:
//! - hyper and h2 are already in every binary (tonic), so the entrypoint grows by little;
//! - the proxy forwards requests, not bytes: one h2 stream per request, flow control per stream,
//!   response status and headers seen by the service (so it can answer 502 itself, count status
//!   classes and drain on GOAWAY), no second HTTP parse inside the tunnel;
//! - WebSockets and raw TCP fall out as extended CONNECT streams of the same connection.
//!
//! Deployments without an entrypoint are proxied to the address their platform reported.
//!
//! # Features
//! `server` (default): the service. `client`: only [`client`] and [`preface`], for the
//! entrypoint, which must stay small and static.

pub mod preface;
pub mod splice;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
mod streams;

#[cfg(feature = "server")]
pub mod backend;
#[cfg(feature = "server")]
pub mod health;
#[cfg(feature = "server")]
pub mod host;
#[cfg(feature = "server")]
pub mod limits;
#[cfg(feature = "server")]
pub mod metered;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod pages;
#[cfg(feature = "server")]
pub mod proxy;
#[cfg(feature = "server")]
pub mod service;
#[cfg(feature = "server")]
pub mod table;
#[cfg(feature = "server")]
pub mod tunnels;
#[cfg(feature = "server")]
pub mod upgrade;

#[cfg(feature = "server")]
pub use service::{Metrics, Options, Routes, TunnelList, UrlService};
#[cfg(feature = "server")]
pub use tunnels::{Authority, TunnelLimits};
