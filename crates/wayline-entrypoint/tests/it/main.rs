//! Integration tests: the real `wayline-entrypoint` binary against the server's real entrypoint
//! hub (compiled from its source, see `hub`) served over gRPC on a unix socket.

#![allow(dead_code, unreachable_pub)]

/// The server's hub, compiled from `crates/wayline-server/src/entrypoint`; its unit tests run
/// here as well as in the server crate.
#[path = "../../../wayline-server/src/entrypoint/mod.rs"]
pub mod hub;

mod common;
mod config;
mod docker;
mod exec;
mod harness;
mod logs;
mod pid1;
mod tls;
