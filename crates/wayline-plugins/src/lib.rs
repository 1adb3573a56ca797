//! Wayline's built-in plugins, one module each; heavy dependencies sit behind cargo features.
//!
//! | plugin | components |
//! |---|---|
//! | `null` | every kind: does nothing, for tests and dry runs |
//! | `exec` | platform: runs a command (long-running or one-shot) as the deployment |
//! | `files` | builder (a path is the artifact), registry (copy to a directory) |
//! | `docker`, `docker-ref`, `docker-pull` | feature `docker`: see [`docker`] |
//! | `docker-swarm` | feature `docker`: platform and release manager on a Swarm, see [`docker_swarm`] |
//!
//! The runner builds its host with [`register_builtins`].

#[cfg(feature = "docker")]
pub mod docker;
#[cfg(feature = "docker")]
pub mod docker_swarm;
pub mod exec;
pub mod files;
pub mod null;

use wayline_plugin::BuiltinRegistry;

/// Registers every built-in plugin compiled in.
pub fn register_builtins(registry: &mut BuiltinRegistry) {
    null::register(registry);
    exec::register(registry);
    files::register(registry);
    #[cfg(feature = "docker")]
    docker::register(registry);
    #[cfg(feature = "docker")]
    docker_swarm::register(registry);
}

/// A registry holding every built-in plugin.
pub fn builtins() -> BuiltinRegistry {
    let mut r = BuiltinRegistry::new();
    register_builtins(&mut r);
    r
}
