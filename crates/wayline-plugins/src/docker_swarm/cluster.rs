//! What the platform asks a Swarm manager: is it one, which nodes it has, a service's tasks, and
//! waiting (bounded) until a service converges or is gone — failing early with Swarm's own reason
//! when a task is rejected or nothing can be scheduled.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{LocalNodeState, NodeState, Task, TaskState};
use bollard::query_parameters::{
    ListContainersOptions, ListNodesOptions, ListServicesOptions, ListTasksOptions,
    UpdateServiceOptions,
};

use crate::docker::engine::{DockerError, LABEL_APP, api, is_not_found};
use crate::docker::owner::Owner;

/// One node of the swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFact {
    /// Swarm's node id.
    pub id: String,
    /// Its host name.
    pub hostname: String,
    /// The address it advertises (no port).
    pub addr: String,
    /// `ready`, `down`, …
    pub state: String,
}

/// One task of a service, with the node it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFact {
    /// `<service>.<slot>`.
    pub name: String,
    /// The node's host name (or id when the node is gone).
    pub node: String,
    /// Current state, e.g. `running`.
    pub state: String,
    /// Desired state.
    pub desired: String,
    /// Swarm's error, else its status message.
    pub message: String,
}

impl TaskFact {
    /// `running on swl-n2`, `rejected on swl-n3: No such image: …`.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {} on {}", self.name, self.state, self.node);
        if !self.message.is_empty() && self.state != "running" {
            s.push_str(": ");
            s.push_str(&self.message);
        }
        s
    }
}

/// The swarm behind a manager.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Its nodes.
    pub nodes: Vec<NodeFact>,
}

impl Cluster {
    /// Checks the engine is a swarm manager and lists its nodes.
    pub async fn of(docker: &Docker, addr: &str) -> Result<Self, DockerError> {
        let info = docker
            .info()
            .await
            .map_err(api(format!("asking `{addr}` about its swarm")))?;
        let swarm = info.swarm.unwrap_or_default();
        let state = swarm.local_node_state.unwrap_or(LocalNodeState::EMPTY);
        if state != LocalNodeState::ACTIVE || swarm.control_available != Some(true) {
            let what = if state == LocalNodeState::ACTIVE {
                "a swarm worker, not a manager".to_owned()
            } else {
                format!("not in a swarm (swarm: {state})")
            };
            return Err(DockerError::Other(format!(
                "the engine at `{addr}` is {what}: point `host` or DOCKER_HOST at a manager, or run `docker swarm init` there"
            )));
        }
        let nodes = docker
            .list_nodes(None::<ListNodesOptions>)
            .await
            .map_err(api("listing the swarm's nodes"))?
            .into_iter()
            .map(|n| {
                let status = n.status.unwrap_or_default();
                NodeFact {
                    id: n.id.unwrap_or_default(),
                    hostname: n.description.and_then(|d| d.hostname).unwrap_or_default(),
                    addr: status.addr.unwrap_or_default(),
                    state: status.state.map(|s| s.to_string()).unwrap_or_default(),
                }
            })
            .collect();
        Ok(Self { nodes })
    }

    /// Host names by node id.
    pub fn hostnames(&self) -> HashMap<String, String> {
        self.nodes
            .iter()
            .map(|n| (n.id.clone(), n.hostname.clone()))
            .collect()
    }
}

fn state_name(s: Option<TaskState>) -> String {
    s.map(|s| s.to_string()).unwrap_or_default()
}

pub(super) fn fact(service: &str, t: Task, hostnames: &HashMap<String, String>) -> TaskFact {
    let status = t.status.unwrap_or_default();
    let node_id = t.node_id.unwrap_or_default();
    TaskFact {
        name: format!("{service}.{}", t.slot.unwrap_or_default()),
        node: hostnames
            .get(&node_id)
            .cloned()
            .unwrap_or(if node_id.is_empty() {
                "no node".to_owned()
            } else {
                node_id
            }),
        state: state_name(status.state),
        desired: state_name(t.desired_state),
        message: status
            .err
            .filter(|e| !e.is_empty())
            .or(status.message)
            .unwrap_or_default(),
    }
}

/// The tasks of service `service_id` (named `name`), newest first per slot.
#[allow(clippy::implicit_hasher)] // always the map `Cluster::hostnames` makes
pub async fn tasks(
    docker: &Docker,
    service_id: &str,
    name: &str,
    hostnames: &HashMap<String, String>,
) -> Result<Vec<TaskFact>, DockerError> {
    let filters = HashMap::from([("service".to_owned(), vec![service_id.to_owned()])]);
    let mut list = docker
        .list_tasks(Some(ListTasksOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(api(format!("listing the tasks of service `{name}`")))?;
    list.sort_by(|a, b| {
        (a.slot, b.created_at.as_ref().map(ToString::to_string))
            .cmp(&(b.slot, a.created_at.as_ref().map(ToString::to_string)))
    });
    Ok(list.into_iter().map(|t| fact(name, t, hostnames)).collect())
}

/// Whether Swarm's message says no node can take the task (it would stay pending forever).
fn unschedulable(t: &TaskFact) -> bool {
    t.state == "pending" && t.message.contains("no suitable node")
}

/// Waits until `replicas` tasks of the service run, at most `limit`. Fails at once, with Swarm's
/// words, when a task is rejected (e.g. a node cannot pull the image) or cannot be placed.
#[allow(clippy::implicit_hasher)] // always the map `Cluster::hostnames` makes
pub async fn wait_running(
    docker: &Docker,
    service_id: &str,
    name: &str,
    replicas: u64,
    hostnames: &HashMap<String, String>,
    limit: Duration,
) -> Result<Vec<TaskFact>, DockerError> {
    let deadline = Instant::now() + limit;
    loop {
        let all = tasks(docker, service_id, name, hostnames).await?;
        let running: Vec<TaskFact> = all
            .iter()
            .filter(|t| t.desired == "running" && t.state == "running")
            .cloned()
            .collect();
        if running.len() as u64 >= replicas {
            return Ok(running);
        }
        if let Some(bad) = all
            .iter()
            .find(|t| t.state == "rejected" || unschedulable(t))
        {
            return Err(DockerError::Other(format!(
                "service `{name}` cannot run: task {}",
                bad.describe()
            )));
        }
        if Instant::now() >= deadline {
            let seen: Vec<String> = all.iter().map(TaskFact::describe).collect();
            return Err(DockerError::Other(format!(
                "service `{name}`: {} of {replicas} tasks running after {}s; last seen: {}",
                running.len(),
                limit.as_secs(),
                if seen.is_empty() {
                    "no tasks".to_owned()
                } else {
                    seen.join("; ")
                }
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Removes service `id` and waits (at most 30 s) until Swarm has no task of it left on a node
/// that is up, and the manager's own engine (where images are usually built, so a build's tag
/// can be removed next) no container of it. Returns false when it was already gone. Workers
/// remove their containers once their tasks are gone, a moment later.
pub async fn remove_service(docker: &Docker, id: &str, name: &str) -> Result<bool, DockerError> {
    match docker.delete_service(id).await {
        Ok(()) => {}
        Err(e) if is_not_found(&e) => return Ok(false),
        Err(e) => return Err(api(format!("removing service `{name}`"))(e)),
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tasks = tasks_on_ready_nodes(docker, id).await?;
        let containers = if tasks == 0 {
            local_containers(docker, id).await?
        } else {
            0
        };
        if tasks + containers == 0 {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Err(DockerError::Other(format!(
                "service `{name}` was removed but after 30s {tasks} of its tasks (and {containers} containers on the manager) were still there"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many tasks of (removed) service `id` Swarm still lists on nodes that are up. A removed
/// service can't be a filter any more (404), so this looks through all tasks; a task on a node
/// that is down stays listed until the node is back (which then removes it).
async fn tasks_on_ready_nodes(docker: &Docker, id: &str) -> Result<usize, DockerError> {
    let ready: Vec<String> = docker
        .list_nodes(None::<ListNodesOptions>)
        .await
        .map_err(api("listing the swarm's nodes"))?
        .into_iter()
        .filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.state)
                .is_some_and(|st| st == NodeState::READY)
        })
        .filter_map(|n| n.id)
        .collect();
    Ok(docker
        .list_tasks(None::<ListTasksOptions>)
        .await
        .map_err(api("listing the swarm's tasks"))?
        .into_iter()
        .filter(|t| t.service_id.as_deref() == Some(id))
        .filter(|t| t.node_id.as_ref().is_some_and(|n| ready.contains(n)))
        .count())
}

/// How many containers of service `id` the manager's own engine still has (stopping or stopped).
async fn local_containers(docker: &Docker, id: &str) -> Result<usize, DockerError> {
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("com.docker.swarm.service.id={id}")],
    )]);
    let list = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(api("listing the manager's containers"))?;
    Ok(list.len())
}

/// Waits until something accepts TCP connections at every `addr` (at most `limit`); returns
/// those that never did.
pub async fn wait_serving(addrs: &[String], limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut pending: Vec<String> = addrs.to_vec();
    while !pending.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for a in pending {
            let ok =
                tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(&a))
                    .await
                    .is_ok_and(|r| r.is_ok());
            if !ok {
                still.push(a);
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    pending
}

/// Sets service `id`'s replicas to `replicas` (a rolling update of nothing else).
pub async fn scale(
    docker: &Docker,
    id: &str,
    name: &str,
    replicas: u64,
) -> Result<(), DockerError> {
    let service = docker
        .inspect_service(id, None::<bollard::query_parameters::InspectServiceOptions>)
        .await
        .map_err(api(format!("inspecting service `{name}`")))?;
    let mut spec = service.spec.unwrap_or_default();
    let mode = spec.mode.get_or_insert_with(Default::default);
    mode.replicated
        .get_or_insert_with(Default::default)
        .replicas = Some(i64::try_from(replicas).unwrap_or(i64::MAX));
    let version = service.version.and_then(|v| v.index).unwrap_or_default();
    let options = UpdateServiceOptions {
        version: i32::try_from(version).unwrap_or(i32::MAX),
        ..UpdateServiceOptions::default()
    };
    docker
        .update_service(id, spec, options, None)
        .await
        .map_err(api(format!("scaling service `{name}` to {replicas}")))?;
    Ok(())
}

/// Replicas a service asks for.
pub fn replicas_of(service: &bollard::models::Service) -> u64 {
    service
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref())
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .and_then(|r| u64::try_from(r).ok())
        .unwrap_or(0)
}

/// Scales to 0 every other service of `owner` that publishes one of `ports` (a fixed port
/// only one service can hold), and waits until their tasks stopped. Returns their names.
pub async fn free_ports(
    docker: &Docker,
    owner: &Owner,
    ports: &[u16],
    except: &str,
) -> Result<Vec<String>, DockerError> {
    if ports.is_empty() {
        return Ok(Vec::new());
    }
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("{LABEL_APP}={}", owner.app)],
    )]);
    let services = docker
        .list_services(Some(ListServicesOptions {
            filters: Some(filters),
            status: None,
        }))
        .await
        .map_err(api("listing the app's services"))?;
    let mut freed = Vec::new();
    for s in services {
        let id = s.id.clone().unwrap_or_default();
        let spec = s.spec.clone().unwrap_or_default();
        let name = spec.name.clone().unwrap_or_default();
        let labels = spec.labels.clone().unwrap_or_default();
        let holds = spec
            .endpoint_spec
            .and_then(|e| e.ports)
            .unwrap_or_default()
            .iter()
            .any(|p| {
                p.published_port
                    .is_some_and(|pp| ports.iter().any(|x| i64::from(*x) == pp))
            });
        // The app's stable service keeps its ports: releases move it, deploys don't.
        let stable = labels.contains_key(super::spec::LABEL_RELEASE);
        if id == except
            || name == except
            || stable
            || !holds
            || !owner.owns(&labels)
            || replicas_of(&s) == 0
        {
            continue;
        }
        scale(docker, &id, &name, 0).await?;
        wait_stopped(docker, &id, &name).await?;
        freed.push(name);
    }
    Ok(freed)
}

/// Waits (at most 30 s) until no task of the service runs.
async fn wait_stopped(docker: &Docker, id: &str, name: &str) -> Result<(), DockerError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = tasks(docker, id, name, &HashMap::new()).await?;
        if !all
            .iter()
            .any(|t| t.state == "running" || t.desired == "running")
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(DockerError::Other(format!(
                "service `{name}` still had running tasks 30s after it was scaled to 0"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
