//! Shared test support: the server's real entrypoint hub (compiled here from its source, so the
//! entrypoint's dependency tree stays free of server crates) behind a tonic harness.

#![allow(dead_code, unreachable_pub)]

pub mod harness;
