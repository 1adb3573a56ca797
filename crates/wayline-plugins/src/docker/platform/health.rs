//! The health of a deployment's resources, from the engine's view of them: a container that
//! exited is down whatever else is known about the deployment.

use bollard::Docker;
use bollard::models::{ContainerState, ContainerStateStatusEnum, HealthStatusEnum};
use bollard::query_parameters::{InspectContainerOptions, InspectNetworkOptions};

use super::Created;
use crate::docker::engine::{DockerError, api, is_not_found};

/// Health of one resource, with a sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceHealth {
    /// Running, no health check failing yet (still starting).
    Alive,
    /// Running and healthy (or without a health check).
    Ready,
    /// Exists but not running.
    Down,
    /// Gone.
    Missing,
}
/// Inspects one resource.
pub async fn health(
    docker: &Docker,
    created: &Created,
) -> Result<(ResourceHealth, String), DockerError> {
    match created {
        Created::Container { id, name } => {
            match docker
                .inspect_container(id, None::<InspectContainerOptions>)
                .await
            {
                Ok(inspect) => Ok(container_health(name, inspect.state.unwrap_or_default())),
                Err(e) if is_not_found(&e) => Ok((
                    ResourceHealth::Missing,
                    format!("container {name} does not exist"),
                )),
                Err(e) => Err(api(format!("inspecting container `{name}`"))(e)),
            }
        }
        Created::Network { name } => {
            match docker
                .inspect_network(name, None::<InspectNetworkOptions>)
                .await
            {
                Ok(_) => Ok((ResourceHealth::Ready, format!("network {name} exists"))),
                Err(e) if is_not_found(&e) => Ok((
                    ResourceHealth::Missing,
                    format!("network {name} does not exist"),
                )),
                Err(e) => Err(api(format!("inspecting network `{name}`"))(e)),
            }
        }
    }
}

/// A container's health from its engine state and health check.
pub fn container_health(name: &str, state: ContainerState) -> (ResourceHealth, String) {
    use ContainerStateStatusEnum as S;
    let check = state.health.and_then(|h| h.status);
    match (state.status, check) {
        (Some(S::RUNNING), Some(HealthStatusEnum::STARTING)) => (
            ResourceHealth::Alive,
            format!("container {name} is running; health check starting"),
        ),
        (Some(S::RUNNING), Some(HealthStatusEnum::UNHEALTHY)) => (
            ResourceHealth::Down,
            format!("container {name} is running but unhealthy"),
        ),
        (Some(S::RUNNING), _) => (
            ResourceHealth::Ready,
            format!("container {name} is running"),
        ),
        (Some(S::RESTARTING | S::CREATED), _) => (
            ResourceHealth::Alive,
            format!("container {name} is starting"),
        ),
        (status, _) => (
            ResourceHealth::Down,
            format!(
                "container {name} is {} (exit code {})",
                status.map_or_else(|| "not running".to_owned(), |s| s.to_string()),
                state.exit_code.unwrap_or(0)
            ),
        ),
    }
}
