//! Who a Docker resource belongs to. Every container and network the platform creates carries
//! the server id, project, app, workspace and deployment id as labels, and the platform only
//! ever stops or adopts a resource whose server, project, app and workspace labels match its
//! own. Two projects with an app of the same name, or two servers sharing one engine, never
//! touch each other's containers: a fixed host port held by someone else fails the deploy with
//! a message naming the holder.

use std::collections::HashMap;
use std::hash::BuildHasher;

use bollard::Docker;
use wayline_plugin::CoreValues;

use super::engine::{DockerError, LABEL_APP, LABEL_DEPLOYMENT, api, is_not_found};

/// Label naming the Wayline server (its id) that created a resource.
pub const LABEL_SERVER: &str = "wayline.server-id";
/// Label naming the project of the app.
pub const LABEL_PROJECT: &str = "wayline.project";
/// Label naming the workspace of the deployment.
pub const LABEL_WORKSPACE: &str = "wayline.workspace";

/// Env var the runner sets on every deployment: the server's id.
const SERVER_ID_ENV: &str = "WAYLINE_SERVER_ID";

/// The server, project, app and workspace a resource is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    /// Id of the Wayline server ("" when the server did not say).
    pub server_id: String,
    /// Project name.
    pub project: String,
    /// App name.
    pub app: String,
    /// Workspace name.
    pub workspace: String,
}

impl Owner {
    /// The owner of what a job creates.
    pub fn of_job(core: &CoreValues) -> Self {
        Owner {
            server_id: core
                .deployment_env
                .get(SERVER_ID_ENV)
                .cloned()
                .unwrap_or_default(),
            project: core.job.project.clone(),
            app: core.job.app.clone(),
            workspace: core.job.workspace.clone(),
        }
    }

    /// The labels a resource of this owner and deployment carries.
    pub fn labels(&self, deployment_id: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_SERVER.to_owned(), self.server_id.clone()),
            (LABEL_PROJECT.to_owned(), self.project.clone()),
            (LABEL_APP.to_owned(), self.app.clone()),
            (LABEL_WORKSPACE.to_owned(), self.workspace.clone()),
            (LABEL_DEPLOYMENT.to_owned(), deployment_id.to_owned()),
        ])
    }

    /// True when a resource with `labels` belongs to this owner (any of its deployments).
    pub fn owns<S: BuildHasher>(&self, labels: &HashMap<String, String, S>) -> bool {
        let is = |k: &str, v: &str| labels.get(k).map(String::as_str) == Some(v);
        is(LABEL_SERVER, &self.server_id)
            && is(LABEL_PROJECT, &self.project)
            && is(LABEL_APP, &self.app)
            && is(LABEL_WORKSPACE, &self.workspace)
    }
}

/// The owner a release acts for: the job's, with the server id taken from the released
/// container when the job does not carry one (the runner passes it to deploys only). Fails
/// when the container belongs to another project, app or workspace.
pub async fn of_release(
    docker: &Docker,
    container_id: &str,
    core: &CoreValues,
) -> Result<Owner, DockerError> {
    let mut owner = Owner::of_job(core);
    let labels = docker
        .inspect_container(
            container_id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .map_err(api(format!("inspecting container `{container_id}`")))?
        .config
        .and_then(|c| c.labels)
        .unwrap_or_default();
    if owner.server_id.is_empty() {
        owner.server_id = labels.get(LABEL_SERVER).cloned().unwrap_or_default();
    }
    // Containers made before owners were labelled carry the app only: the record is the proof.
    if labels.contains_key(LABEL_PROJECT) && !owner.owns(&labels) {
        return Err(DockerError::Other(format!(
            "container `{container_id}` belongs to {}, not to app `{}` of project `{}` in workspace `{}`",
            describe(&labels),
            owner.app,
            owner.project,
            owner.workspace
        )));
    }
    Ok(owner)
}

/// Refuses to remove a container or network that is not the job's owner's: the stored id or
/// name of a resource could name anything on the engine. A container must also carry the
/// deployment id of the deployment being destroyed (a network is shared by the app's
/// deployments: the last one to go removes it, so its owner is enough). Gone is fine (nothing
/// to remove).
pub async fn check_removable(
    docker: &Docker,
    created: &super::platform::Created,
    core: &CoreValues,
) -> Result<(), DockerError> {
    use super::platform::Created;
    let (kind, name) = match created {
        Created::Container { name, .. } => ("container", name),
        Created::Network { name } => ("network", name),
    };
    let labels = match resource_labels(docker, created).await {
        Ok(l) => l,
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(api(format!("inspecting {kind} `{name}`"))(e)),
    };
    let mut owner = Owner::of_job(core);
    if owner.server_id.is_empty() {
        owner.server_id = labels.get(LABEL_SERVER).cloned().unwrap_or_default();
    }
    // Resources made before owners were labelled carry the app only.
    let ours = if labels.contains_key(LABEL_PROJECT) {
        owner.owns(&labels)
    } else {
        labels.get(LABEL_APP) == Some(&owner.app)
    };
    if !ours {
        return Err(DockerError::Other(format!(
            "{kind} `{name}` belongs to {}, not to app `{}` of project `{}` in workspace `{}`: Wayline removes only its own resources",
            describe(&labels),
            owner.app,
            owner.project,
            owner.workspace
        )));
    }
    let deployment = &core.job.deployment_id;
    match labels.get(LABEL_DEPLOYMENT) {
        Some(labelled)
            if kind == "container" && !deployment.is_empty() && labelled != deployment =>
        {
            Err(DockerError::Other(format!(
                "container `{name}` belongs to deployment {labelled} of app `{}`, not to deployment {deployment} being destroyed: Wayline removes only the deployment's own resources",
                owner.app
            )))
        }
        _ => Ok(()),
    }
}

/// The labels of a container or network.
async fn resource_labels(
    docker: &Docker,
    created: &super::platform::Created,
) -> Result<HashMap<String, String>, bollard::errors::Error> {
    use super::platform::Created;
    let labels = match created {
        Created::Container { id, .. } => docker
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await?
            .config
            .and_then(|c| c.labels),
        Created::Network { name } => {
            docker
                .inspect_network(
                    name,
                    None::<bollard::query_parameters::InspectNetworkOptions>,
                )
                .await?
                .labels
        }
    };
    Ok(labels.unwrap_or_default())
}

/// Who a resource with `labels` belongs to, for messages.
pub fn describe<S: BuildHasher>(labels: &HashMap<String, String, S>) -> String {
    let get = |k: &str| labels.get(k).map_or("", String::as_str);
    if get(LABEL_APP).is_empty() {
        return "not created by Wayline".to_owned();
    }
    let mut s = format!("app `{}`", get(LABEL_APP));
    if !get(LABEL_PROJECT).is_empty() {
        s = format!(
            "{s} of project `{}`, workspace `{}`",
            get(LABEL_PROJECT),
            get(LABEL_WORKSPACE)
        );
    }
    if !get(LABEL_SERVER).is_empty() {
        s = format!("{s}, server {}", get(LABEL_SERVER));
    }
    s
}

/// How long a container replaced on a fixed host port gets to stop (SIGTERM) before it is killed.
/// Shorter than the engine's 10 s default: while it runs, the new deployment can't have the port.
const STOP_GRACE_SECS: i32 = 3;

/// A running container that publishes a host port.
struct Holder {
    id: String,
    name: String,
    labels: HashMap<String, String>,
}

/// The running containers that publish `host_port`.
async fn holders(docker: &Docker, host_port: u16) -> Result<Vec<Holder>, DockerError> {
    let filters = HashMap::from([("status".to_owned(), vec!["running".to_owned()])]);
    let options = bollard::query_parameters::ListContainersOptions {
        all: false,
        filters: Some(filters),
        ..bollard::query_parameters::ListContainersOptions::default()
    };
    let containers = docker
        .list_containers(Some(options))
        .await
        .map_err(api("listing the running containers"))?;
    Ok(containers
        .into_iter()
        .filter(|c| {
            c.ports
                .iter()
                .flatten()
                .any(|p| p.public_port == Some(host_port))
        })
        .map(|c| {
            let id = c.id.unwrap_or_default();
            Holder {
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map_or_else(|| id.clone(), |n| n.trim_start_matches('/').to_owned()),
                id,
                labels: c.labels.unwrap_or_default(),
            }
        })
        .collect())
}

/// Stops the owner's other running containers that publish `host_port`, so a fixed `host_port`
/// can move from one deployment to the next (and back, on rollback). The stopped containers stay
/// (their deployments still own them: destroy and prune remove them); returns their names. A
/// container of anyone else on the port fails with a message naming its owner, before anything
/// is stopped.
pub async fn free_host_port(
    docker: &Docker,
    owner: &Owner,
    host_port: u16,
    keep_id: Option<&str>,
) -> Result<Vec<String>, DockerError> {
    let holders: Vec<Holder> = holders(docker, host_port)
        .await?
        .into_iter()
        .filter(|h| keep_id.is_none_or(|k| k != h.id))
        .collect();
    if let Some(foreign) = holders.iter().find(|h| !owner.owns(&h.labels)) {
        return Err(DockerError::Other(format!(
            "host port {host_port} is held by container `{}` ({}); Wayline stops only containers of its own app `{}` of project `{}` in workspace `{}`: stop that container or choose another `host_port`",
            foreign.name,
            describe(&foreign.labels),
            owner.app,
            owner.project,
            owner.workspace,
        )));
    }
    let mut stopped = Vec::new();
    for h in holders {
        let options = bollard::query_parameters::StopContainerOptions {
            t: Some(STOP_GRACE_SECS),
            signal: None,
        };
        match docker.stop_container(&h.id, Some(options)).await {
            Ok(()) => stopped.push(h.name),
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(api(format!(
                    "stopping container `{}` to free host port {host_port}",
                    h.name
                ))(e));
            }
        }
    }
    Ok(stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(project: &str) -> Owner {
        Owner {
            server_id: "S1".into(),
            project: project.into(),
            app: "web".into(),
            workspace: "default".into(),
        }
    }

    #[test]
    fn only_the_same_server_project_app_and_workspace_owns() {
        let a = owner("a");
        let labels = a.labels("D1");
        assert!(a.owns(&labels));
        assert!(!owner("b").owns(&labels), "same app name, other project");
        let other_server = Owner {
            server_id: "S2".into(),
            ..a.clone()
        };
        assert!(!other_server.owns(&labels));
        let staging = Owner {
            workspace: "staging".into(),
            ..a.clone()
        };
        assert!(!staging.owns(&labels));
        // A container labelled with the app only (before owners were labelled) is not ours.
        let legacy = HashMap::from([(LABEL_APP.to_owned(), "web".to_owned())]);
        assert!(!a.owns(&legacy));
    }

    #[test]
    fn owners_are_described_for_messages() {
        assert_eq!(
            describe(&owner("a").labels("D1")),
            "app `web` of project `a`, workspace `default`, server S1"
        );
        assert_eq!(describe(&HashMap::new()), "not created by Wayline");
    }
}
