//! The server's entrypoint hub, compiled from `crates/wayline-server/src/entrypoint` and tested
//! here with its unit tests (they run in the server crate too).

#![allow(dead_code, unreachable_pub)]

#[path = "../../wayline-server/src/entrypoint/mod.rs"]
pub mod hub;
