//! Wayline job execution.
//!
//! - [`client`]: connecting to a server (unix socket, TCP, TLS) with a bearer token.
//! - [`agent`]: the runner loop — register, take jobs over the job stream, ack, heartbeat,
//!   stream terminal events, report results, reconnect with jittered backoff.
//! - [`executor`]: what a job does — data source, config evaluation, the plugin pipeline.

pub mod agent;
pub mod client;
pub mod evaluate;
pub mod events;
pub mod executor;
pub mod health;
mod operate;
mod pipeline;
pub mod retry;
pub mod source;

pub use agent::{Runner, RunnerOptions};
pub use client::{Client, ServerAddr, connect};
