//! The built-in `docker-swarm` platform and release manager, over a Swarm manager's Engine API.
//!
//! | plugin | component | accepts → returns | capabilities |
//! |---|---|---|---|
//! | `docker-swarm` | platform (default release manager `docker-swarm`) | `wayline.docker.Image` → `wayline.docker_swarm.Service` | destroy, status, docs |
//! | `docker-swarm` | release manager | `wayline.docker_swarm.Service` → `wayline.docker_swarm.Release` | docs |
//!
//! Releases: without a `release` stanza (or one without `ports`) the release is the deployment's
//! own service, and with the URL service the app's host moves to its tasks once the runner's
//! health check through the URL service passes. With `release { use "docker-swarm" { ports {} } }`
//! one stable service per app publishes those ports and each release moves it by a health-gated
//! rolling update ([`stable`]).
//!
//! Each deployment is a service of its own (`<app>-v<N>`, [`spec`]), created without touching
//! earlier ones; its tasks' entrypoints dial the server over TCP (the server's advertised
//! address, never the runner's unix socket), so logs, exec and config work on every node. The
//! manager is found like the Docker CLI finds it (`DOCKER_HOST`, `DOCKER_CERT_PATH`,
//! `DOCKER_TLS_VERIFY`), or from `host` / `client_config`.

pub mod cluster;
pub mod config;
pub mod docs;
pub mod platform;
pub mod release;
pub mod spec;
pub mod stable;
pub mod values;

use wayline_plugin::BuiltinRegistry;

pub use config::{SwarmConfig, SwarmReleaseConfig};
pub use platform::SwarmPlatform;
pub use release::SwarmRelease;
pub use values::{Release, Service};

/// Registers `docker-swarm` (platform and release manager).
pub fn register(registry: &mut BuiltinRegistry) {
    registry
        .platform("docker-swarm", SwarmPlatform)
        .release_manager("docker-swarm", SwarmRelease);
}
