//! Waypoint's plugin protocol for the Wayline plugin host, so Waypoint's own plugins run under
//! Wayline unchanged: `waypoint-plugin-<name>` executables built with the Waypoint plugin SDK,
//! and Waypoint's built-ins through a `waypoint` binary (`waypoint plugin <name>`).
//!
//! A crate of its own rather than more of `wayline-plugin`: plugin authors depend on the SDK
//! crate, and none of them needs a second protocol's generated code, broker or discovery. The
//! SDK holds only the seam, `wayline_plugin::PluginProvider`, which [`WaypointPlugins`] fills.
//!
//! Layers, one way only: [`pb`] (the vendored protos) ← [`handshake`], `hclog`, [`config`]
//! (ConfigStruct → decode), [`funcspec`] (argument matching) ← `broker`, `ui` (the terminal the
//! host serves) ← [`process`] (one running plugin) ← `component` (a `ComponentHandle`) ←
//! [`provider`] (discovery). Nothing past this crate knows which protocol a plugin speaks.

pub mod config;
pub mod funcspec;
pub mod handshake;
mod hclog;
pub mod pb;
pub mod process;
pub mod provider;

mod broker;
mod component;
mod ui;

pub use process::{HANDSHAKE_TIMEOUT, Launch, Process};
pub use provider::{WAYPOINT_BINARY_ENV, WAYPOINT_BUILTINS, WaypointPlugins};
