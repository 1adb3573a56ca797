//! The networks a deployment attaches its container to: look up, create, remove.

use bollard::Docker;
use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::InspectNetworkOptions;

use super::{Owner, Target};
use crate::docker::engine::{DockerError, api, is_not_found};

/// Whether a network exists, and whether an earlier deployment of the app created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkState {
    /// It does not exist: deploy creates it.
    Missing,
    /// It exists and carries this app's owner labels (server, project, app, workspace): deploy
    /// adopts it, so the app's last deployment to be destroyed removes it.
    Ours,
    /// Someone else's: used, never removed.
    Foreign,
}

/// Looks a network up.
pub async fn network_state(
    docker: &Docker,
    name: &str,
    owner: &Owner,
) -> Result<NetworkState, DockerError> {
    match docker
        .inspect_network(name, None::<InspectNetworkOptions>)
        .await
    {
        Ok(net) => {
            let ours = net.labels.as_ref().is_some_and(|l| owner.owns(l));
            Ok(if ours {
                NetworkState::Ours
            } else {
                NetworkState::Foreign
            })
        }
        Err(e) if is_not_found(&e) => Ok(NetworkState::Missing),
        Err(e) => Err(api(format!("inspecting network `{name}`"))(e)),
    }
}

/// Creates a bridge network labelled with the app and deployment.
pub async fn create_network(
    docker: &Docker,
    name: &str,
    target: &Target,
) -> Result<(), DockerError> {
    let labels = target.owner.labels(&target.deployment_id);
    docker
        .create_network(NetworkCreateRequest {
            name: name.to_owned(),
            labels: Some(labels),
            ..NetworkCreateRequest::default()
        })
        .await
        .map_err(api(format!("creating network `{name}`")))?;
    Ok(())
}

/// Removes a network unless other containers still use it (it is left for the deployment that
/// uses it last). Already gone is fine.
pub async fn remove(docker: &Docker, name: &str) -> Result<bool, DockerError> {
    match docker
        .inspect_network(name, None::<InspectNetworkOptions>)
        .await
    {
        Ok(net) if net.containers.as_ref().is_some_and(|c| !c.is_empty()) => {
            tracing::info!(network = %name, "network still in use; left for its last deployment");
            Ok(false)
        }
        Ok(_) => match docker.remove_network(name).await {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(api(format!("removing network `{name}`"))(e)),
        },
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(api(format!("inspecting network `{name}`"))(e)),
    }
}
