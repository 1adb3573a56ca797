//! External plugins: executables `wayline-plugin-<name>` started by the host and spoken to over
//! gRPC on a unix socket (`proto/wayline/plugin/v1/plugin.proto`).
//!
//! Handshake: the plugin prints ONE line on stdout, `WAYLINE_PLUGIN|1|unix|<socket path>`, and
//! serves on that socket until its stdin closes (the host died) or it is killed (the host dropped
//! it). Its stderr becomes job output lines.

mod client;
mod discover;
mod serve;

pub(crate) use client::{Externals, load};
pub use discover::{PluginChecksumError, sha256_file};
pub(crate) use discover::{discover_names, find};
pub use serve::{PluginBuilder, ServeError, serve, serve_async};

/// The protocol version in the handshake line.
pub const PROTOCOL_VERSION: u32 = 1;
/// The handshake line's first field.
pub const HANDSHAKE_MAGIC: &str = "WAYLINE_PLUGIN";
/// Prefix of the stderr line a plugin writes when a call ends (followed by the call id).
pub const CALL_DONE_MARKER: &str = "\u{1e}WAYLINE_CALL_DONE ";
/// Env var the host sets: a private directory where the plugin creates its socket.
pub const SOCKET_DIR_ENV: &str = "WAYLINE_PLUGIN_SOCKET_DIR";
