//! The Waypoint-protocol host against `waypoint-plugin-wltest` (this crate's test plugin, the
//! plugin side written from the public sources): conformance to the protocol facts, then every
//! component call, config errors, argument matching, mappers and failures.

mod conformance;
mod host;

use std::path::{Path, PathBuf};

/// The test plugin binary cargo built for these tests.
pub(crate) fn plugin_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_waypoint-plugin-wltest"))
}

/// A plugin dir holding `waypoint-plugin-<name>`: the test plugin, or a wrapper script that
/// runs it with `env` set (`WLTEST_HANDSHAKE=slow`) — no test changes its own environment.
pub(crate) fn plugin_dir(name: &str, env: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let dest = t.path().join(format!("waypoint-plugin-{name}"));
    if env.is_empty() {
        std::fs::copy(plugin_binary(), &dest).unwrap();
    } else {
        let script = format!(
            "#!/bin/sh\n{env} exec '{}' \"$@\"\n",
            plugin_binary().display()
        );
        std::fs::write(&dest, script).unwrap();
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    t
}

/// The plugin's path in a dir made by [`plugin_dir`].
pub(crate) fn plugin_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("waypoint-plugin-{name}"))
}
