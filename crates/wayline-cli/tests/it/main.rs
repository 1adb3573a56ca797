//! End-to-end tests of the real `wayline` binary, each in its own temporary home (so each
//! gets its own embedded default server, stopped when the test ends).

#![allow(unreachable_pub)]

mod common;

mod basics;
mod catalog;
mod corpus;
mod crash;
mod data_dir;
mod docker;
mod entrypoint;
mod external_plugin;
mod grammar;
mod lifecycle;
mod limits;
mod output;
mod pipeline;
mod server;
mod snapshots;
mod swarm;
mod swarm_prune;
mod swarm_release;
mod ui;
mod ui_browser;
mod urls;
mod urls_limits;
mod urls_release;
mod waypoint_plugin;
mod webdriver;
