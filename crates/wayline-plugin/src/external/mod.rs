//! External plugins: executables `wayline-plugin-<name>` started by the host and spoken to over
//! gRPC on a unix socket (`proto/wayline/plugin/v1/plugin.proto`).
//!
//! Handshake: the plugin prints ONE line on stdout, `WAYLINE_PLUGIN|1|unix|<socket path>`, and
//! serves on that socket until its stdin closes (the host died) or it is killed (the host dropped
//! it). Its stderr becomes job output lines.
//!
//! This module is the protocol both sides share (constants and value conversions) and, with the
//! cargo feature `serve`, the plugin side ([`serve`]). The host side lives in `crate::host`
//! (feature `host`).

#[cfg(feature = "serve")]
mod serve;

#[cfg(any(feature = "host", feature = "serve"))]
use wayline_proto::plugin::v1 as pp;

#[cfg(feature = "host")]
use crate::component::Function;
#[cfg(any(feature = "host", feature = "serve"))]
use crate::registry::CallResult;
#[cfg(feature = "serve")]
pub use serve::{PluginBuilder, ServeError, serve, serve_async};

/// The protocol version in the handshake line.
pub const PROTOCOL_VERSION: u32 = 1;
/// The handshake line's first field.
pub const HANDSHAKE_MAGIC: &str = "WAYLINE_PLUGIN";
/// Prefix of the stderr line a plugin writes when a call ends (followed by the call id).
pub const CALL_DONE_MARKER: &str = "\u{1e}WAYLINE_CALL_DONE ";
/// Env var the host sets: a private directory where the plugin creates its socket.
pub const SOCKET_DIR_ENV: &str = "WAYLINE_PLUGIN_SOCKET_DIR";

/// A call's result as it arrives from a plugin.
#[cfg(feature = "host")]
pub(crate) fn from_proto_result(function: Function, r: pp::CallResult) -> CallResult {
    let health = (function == Function::Status)
        .then(|| wayline_proto::v1::Health::try_from(r.health).unwrap_or_default());
    CallResult {
        value: r.value,
        template_data: serde_json::from_str(&r.template_data_json)
            .unwrap_or(serde_json::Value::Null),
        resources: r.resources,
        url: Some(r.url).filter(|u| !u.is_empty()),
        health,
        health_message: r.health_message,
    }
}

/// A call's result as a plugin sends it.
#[cfg(feature = "serve")]
pub(crate) fn to_proto_result(r: CallResult) -> pp::CallResult {
    pp::CallResult {
        value: r.value,
        template_data_json: if r.template_data.is_null() {
            String::new()
        } else {
            r.template_data.to_string()
        },
        resources: r.resources,
        url: r.url.unwrap_or_default(),
        health: r.health.map_or(0, |h| h as i32),
        health_message: r.health_message,
    }
}
