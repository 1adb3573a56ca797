//! Integration tests: a real server in-process on port 0 and a unix socket, driven over gRPC.

// Helpers are shared by topic modules; not every module uses every helper.
#![allow(unreachable_pub, dead_code, clippy::many_single_char_names)]

mod admin;
mod auth;
mod canary;
mod catalog;
mod common;
mod crash;
mod fuzz;
mod jobs;
mod limits;
mod ui;
mod ui_canary;
mod ui_workspaces;
mod urls;
