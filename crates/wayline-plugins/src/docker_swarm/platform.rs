//! The `docker-swarm` platform: one Swarm service per deployment, `<app>-v<N>`, labelled with
//! its owner; earlier deployments' services are left running. Deploy waits until every task
//! runs (failing with Swarm's reason when one can't) and, with ports published, serves.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use wayline_plugin::{
    Capabilities, Component, ConfigErrors, Ctx, Destroyer, Outcome, Platform, PluginError,
    ResourceKind, ResourceManager, Status, StatusReport, Style,
};
use wayline_proto::v1::{DeclaredResource, Health};

use super::cluster::{self, Cluster, TaskFact};
use super::config::{PortConfig, SwarmConfig};
use super::spec::{Plan, service_name};
use super::values::Service;
use crate::docker::engine::{self, api, is_not_found};
use crate::docker::owner::Owner;
use crate::docker::{Image, errors, fail};

/// The `docker-swarm` platform.
#[derive(Debug, Default, Clone, Copy)]
pub struct SwarmPlatform;

/// Resource type of a deployment's service.
pub(super) const SERVICE: &str = "service";
/// The plugin name on resources.
pub(super) const PLUGIN: &str = "docker-swarm";

/// Env vars the runner sets beside a `unix://` `WAYLINE_SERVER_ADDR`: the server's advertised TCP
/// address and its TLS settings, for deployments on other hosts.
const TCP_ADDR: &str = "WAYLINE_SERVER_TCP_ADDR";
const TCP_TLS: &str = "WAYLINE_SERVER_TCP_TLS";
const TCP_TLS_SKIP_VERIFY: &str = "WAYLINE_SERVER_TCP_TLS_SKIP_VERIFY";

/// The address the manager is reached at, for messages.
pub(super) fn manager_addr(config: &SwarmConfig) -> String {
    config
        .client()
        .and_then(|c| c.host)
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned())
}

/// Connects to the manager and checks it is one.
pub(super) async fn connect(config: &SwarmConfig) -> Result<(Docker, Cluster), PluginError> {
    let docker = engine::connect(config.client().as_ref())
        .await
        .map_err(fail)?;
    let cluster = Cluster::of(&docker, &manager_addr(config))
        .await
        .map_err(fail)?;
    Ok((docker, cluster))
}

/// The runner's env for a task on another host: the server's TCP address instead of its unix
/// socket (which only exists on the runner's machine).
pub fn remote_env(env: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String> {
    let mut env = env.clone();
    let tcp = env.remove(TCP_ADDR);
    let tls = env.remove(TCP_TLS);
    let skip = env.remove(TCP_TLS_SKIP_VERIFY);
    let Some(addr) = env.get("WAYLINE_SERVER_ADDR").cloned() else {
        return Ok(env);
    };
    if !addr.starts_with("unix://") {
        return Ok(env);
    }
    let Some(tcp) = tcp.filter(|a| !a.is_empty()) else {
        return Err(format!(
            "the server advertises only its unix socket `{addr}`, which tasks on other hosts can't reach: \
             run the server with `-listen-grpc <ip:port> -advertise-addr <ip:port>` on an address the nodes reach"
        ));
    };
    env.insert("WAYLINE_SERVER_ADDR".to_owned(), tcp);
    if tls.is_some() {
        env.insert("WAYLINE_SERVER_TLS".to_owned(), "1".to_owned());
    }
    if skip.is_some() {
        env.insert("WAYLINE_SERVER_TLS_SKIP_VERIFY".to_owned(), "1".to_owned());
    }
    Ok(env)
}

/// The state stored for a service resource.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct ServiceState {
    pub id: String,
    pub name: String,
}

/// Removes a deployment's service (only one with its owner's labels).
struct ServiceKind {
    docker: Docker,
}

#[async_trait]
impl ResourceKind for ServiceKind {
    fn type_name(&self) -> &str {
        SERVICE
    }

    async fn destroy(
        &self,
        ctx: &Ctx,
        _name: &str,
        state: &serde_json::Value,
    ) -> Result<(), PluginError> {
        let s: ServiceState = serde_json::from_value(state.clone())
            .map_err(|e| PluginError::msg(format!("unreadable service state: {e}")))?;
        let owner = remove_owned(&self.docker, &s, &Owner::of_job(&ctx.core), ctx).await?;
        // The app's stable service running this deployment goes with it (its tasks carry the
        // deployment's token).
        let id = &ctx.core.job.deployment_id;
        if !id.is_empty() {
            for name in super::stable::remove_running(&self.docker, &owner, id)
                .await
                .map_err(fail)?
            {
                ctx.ui.output(
                    format!("Removed the stable service {name} (it ran {})", s.name),
                    Style::Plain,
                );
            }
        }
        Ok(())
    }

    async fn status(
        &self,
        _ctx: &Ctx,
        _name: &str,
        _state: &serde_json::Value,
    ) -> Result<(Health, String), PluginError> {
        Ok((Health::Unknown, String::new()))
    }
}

/// Removes service `s` when its labels name `owner` (a missing server id on either side is not
/// compared: destroy jobs may not carry it); returns the owner with the service's server id.
async fn remove_owned(
    docker: &Docker,
    s: &ServiceState,
    owner: &Owner,
    ctx: &Ctx,
) -> Result<Owner, PluginError> {
    let service = match docker
        .inspect_service(
            &s.id,
            None::<bollard::query_parameters::InspectServiceOptions>,
        )
        .await
    {
        Ok(svc) => svc,
        Err(e) if is_not_found(&e) => return Ok(owner.clone()),
        Err(e) => return Err(fail(api(format!("inspecting service `{}`", s.name))(e))),
    };
    let labels = service.spec.and_then(|sp| sp.labels).unwrap_or_default();
    let mut owner = owner.clone();
    if owner.server_id.is_empty() {
        owner.server_id = labels
            .get(crate::docker::owner::LABEL_SERVER)
            .cloned()
            .unwrap_or_default();
    }
    if !owner.owns(&labels) {
        return Err(PluginError::msg(format!(
            "service `{}` is not this app's (its labels name another project, app, workspace or server); left alone",
            s.name
        )));
    }
    if cluster::remove_service(docker, &s.id, &s.name)
        .await
        .map_err(fail)?
    {
        ctx.ui
            .output(format!("Removed service {}", s.name), Style::Plain);
    }
    Ok(owner)
}

fn resource(s: &ServiceState) -> DeclaredResource {
    DeclaredResource {
        name: s.name.clone(),
        r#type: SERVICE.to_owned(),
        platform: PLUGIN.to_owned(),
        state_json: serde_json::to_string(s).expect("serializable"),
        ..DeclaredResource::default()
    }
}

impl Component for SwarmPlatform {
    type Config = SwarmConfig;
    type Output = Service;

    fn validate(config: &SwarmConfig) -> Result<(), ConfigErrors> {
        errors(config.validate())
    }

    fn capabilities(caps: &mut Capabilities<'_, Self>) {
        caps.destroyer().status().documented();
    }
}

/// The image reference the tasks run: by digest when the registry recorded one, so a moved tag
/// can't swap the image; refuses a local-only image on a swarm of several nodes.
fn task_image(artifact: &Image, nodes: usize, ctx: &Ctx) -> Result<String, PluginError> {
    if artifact.local {
        if nodes > 1 {
            return Err(PluginError::msg(format!(
                "image `{}` exists only in the local engine, so the swarm's other {} nodes can't pull it: \
                 add a `registry` stanza that pushes it (e.g. `use \"docker\" {{ image = \"registry.example.com/{}\" … }}`)",
                artifact.reference(),
                nodes - 1,
                artifact.image.rsplit('/').next().unwrap_or("app")
            )));
        }
        ctx.ui.output(
            format!(
                "Using the local image {} (a single-node swarm needs no registry)",
                artifact.reference()
            ),
            Style::Warning,
        );
        return Ok(artifact.reference());
    }
    Ok(if artifact.digest.is_empty() {
        artifact.reference()
    } else {
        format!("{}@{}", artifact.image, artifact.digest)
    })
}

/// Looks up the ids of the secrets the config names.
async fn secret_ids(
    docker: &Docker,
    names: &[String],
) -> Result<HashMap<String, String>, PluginError> {
    let mut ids = HashMap::new();
    for name in names {
        match docker.inspect_secret(name).await {
            Ok(s) => {
                ids.insert(name.clone(), s.id.unwrap_or_default());
            }
            Err(e) if is_not_found(&e) => {
                return Err(PluginError::msg(format!(
                    "secrets: the swarm has no secret `{name}` (create it with `docker secret create {name} <file>`)"
                )));
            }
            Err(e) => return Err(fail(api(format!("inspecting secret `{name}`"))(e))),
        }
    }
    Ok(ids)
}

/// `host:port` of each node that runs a task, for each host-mode port; the manager's address
/// for mesh ports.
pub(super) fn endpoints(
    ports: &[PortConfig],
    running: &[TaskFact],
    cluster: &Cluster,
) -> Vec<String> {
    let addr_of: HashMap<&str, &str> = cluster
        .nodes
        .iter()
        .map(|n| (n.hostname.as_str(), n.addr.as_str()))
        .collect();
    let mut out = Vec::new();
    for p in ports
        .iter()
        .filter(|p| p.protocol.as_deref().unwrap_or("tcp") == "tcp")
    {
        let Some(published) = p.published else {
            continue;
        };
        if p.mode.as_deref() == Some("host") {
            for t in running {
                if let Some(a) = addr_of.get(t.node.as_str()) {
                    let e = format!("{a}:{published}");
                    if !out.contains(&e) {
                        out.push(e);
                    }
                }
            }
        } else if let Some(n) = cluster.nodes.first() {
            out.push(format!("{}:{published}", n.addr));
        }
    }
    out
}

/// Shows the running tasks, waits (bounded) until their published addresses accept
/// connections, and says where the service serves; the URL is the first address.
async fn announce(
    ctx: &Ctx,
    config: &SwarmConfig,
    cluster: &Cluster,
    name: &str,
    running: &[TaskFact],
) -> String {
    for t in running {
        ctx.ui
            .output(format!("Task {}", t.describe()), Style::Plain);
    }
    let addrs = endpoints(&config.ports, running, cluster);
    let silent = cluster::wait_serving(&addrs, Duration::from_secs(30)).await;
    for a in &silent {
        ctx.ui.output(
            format!("Nothing accepts connections at {a} yet"),
            Style::Warning,
        );
    }
    let url = addrs
        .first()
        .map(|a| format!("http://{a}"))
        .unwrap_or_default();
    ctx.ui.output(
        format!(
            "Service {name} runs {} task{}{}",
            running.len(),
            if running.len() == 1 { "" } else { "s" },
            if url.is_empty() {
                String::new()
            } else {
                format!(", serving at {}", addrs.join(", "))
            }
        ),
        Style::Success,
    );
    url
}

#[async_trait]
impl Platform for SwarmPlatform {
    type Input = Image;

    async fn deploy(
        &self,
        ctx: &Ctx,
        config: &SwarmConfig,
        artifact: Image,
    ) -> Result<Outcome<Service>, PluginError> {
        let (docker, cluster) = connect(config).await?;
        let image = task_image(&artifact, cluster.nodes.len(), ctx)?;
        let owner = Owner::of_job(&ctx.core);
        let deployment_id = if ctx.core.job.deployment_id.is_empty() {
            format!("v{}", ctx.core.job.sequence.max(1))
        } else {
            ctx.core.job.deployment_id.clone()
        };
        let name = service_name(&owner.app, ctx.core.job.sequence.max(1));
        let env = remote_env(&ctx.core.deployment_env).map_err(PluginError::msg)?;
        let secrets = secret_ids(&docker, &config.secrets).await?;
        let spec = Plan {
            config,
            image: &image,
            name: &name,
            owner: &owner,
            deployment_id: &deployment_id,
            deployment_env: &env,
            secret_ids: &secrets,
        }
        .spec();
        let health_json = spec
            .task_template
            .as_ref()
            .and_then(|t| t.container_spec.as_ref())
            .and_then(|c| c.health_check.as_ref())
            .map(|h| serde_json::to_string(h).expect("serializable"))
            .unwrap_or_default();
        let credentials =
            engine::credentials(None, config.auth.as_ref(), None, None).map_err(fail)?;
        ctx.ui.output(
            format!(
                "Creating service {name} ({} × {image}) on a swarm of {} nodes",
                config.replicas,
                cluster.nodes.len()
            ),
            Style::Header,
        );
        let fixed: Vec<u16> = config.ports.iter().filter_map(|p| p.published).collect();
        for old in cluster::free_ports(&docker, &owner, &fixed, &name)
            .await
            .map_err(fail)?
        {
            ctx.ui.output(
                format!("Scaled {old} to 0 to free its published ports"),
                Style::Plain,
            );
        }
        let mut rm = ResourceManager::new(PLUGIN).kind(ServiceKind {
            docker: docker.clone(),
        });
        let state = rm
            .create(ctx, &name, SERVICE, async {
                let created = docker
                    .create_service(spec, credentials)
                    .await
                    .map_err(|e| fail(api(format!("creating service `{name}`"))(e)))?;
                Ok(serde_json::to_value(ServiceState {
                    id: created.id.unwrap_or_default(),
                    name: name.clone(),
                })
                .expect("serializable"))
            })
            .await?;
        let state: ServiceState = serde_json::from_value(state).expect("just made");
        let hostnames = cluster.hostnames();
        let running = match cluster::wait_running(
            &docker,
            &state.id,
            &name,
            config.replicas,
            &hostnames,
            config.wait_timeout(),
        )
        .await
        {
            Ok(r) => r,
            Err(e) => return Err(rm.rollback(ctx, fail(e)).await),
        };
        let url = announce(ctx, config, &cluster, &name, &running).await;
        let value = Service {
            id: deployment_id,
            name: name.clone(),
            service_id: state.id.clone(),
            image,
            replicas: config.replicas,
            url: url.clone(),
            health_check_json: health_json,
        };
        let data = serde_json::json!({ "service_id": state.id, "name": name, "url": url });
        let mut outcome = Outcome::new(value)
            .template_data(data)
            .resources(rm.into_declared());
        if !url.is_empty() {
            outcome = outcome.url(url);
        }
        Ok(outcome)
    }

    fn default_release_manager(&self) -> Option<&'static str> {
        Some(PLUGIN)
    }
}

/// The stored service resources, or (for a record without them) the value's service.
fn stored_or_derived(
    value: &Service,
    resources: Vec<DeclaredResource>,
    ctx: &Ctx,
) -> Vec<DeclaredResource> {
    if !resources.is_empty() {
        return resources;
    }
    if !value.service_id.is_empty() {
        return vec![resource(&ServiceState {
            id: value.service_id.clone(),
            name: value.name.clone(),
        })];
    }
    if ctx.core.job.sequence > 0 {
        // A deployment whose job died before deploy returned: its service has the name deploy
        // gives it.
        let name = service_name(&ctx.core.job.app, ctx.core.job.sequence);
        return vec![resource(&ServiceState {
            id: name.clone(),
            name,
        })];
    }
    Vec::new()
}

#[async_trait]
impl Destroyer for SwarmPlatform {
    async fn destroy(
        &self,
        ctx: &Ctx,
        config: &SwarmConfig,
        value: Service,
        resources: Vec<DeclaredResource>,
    ) -> Result<Vec<DeclaredResource>, PluginError> {
        let docker = engine::connect(config.client().as_ref())
            .await
            .map_err(fail)?;
        ResourceManager::new(PLUGIN)
            .kind(ServiceKind { docker })
            .destroy_all(ctx, stored_or_derived(&value, resources, ctx))
            .await
    }
}

/// A task as a status resource: its state and node.
fn task_resource(t: &TaskFact) -> DeclaredResource {
    let health = match t.state.as_str() {
        "running" => Health::Ready,
        "new" | "pending" | "assigned" | "accepted" | "preparing" | "ready" | "starting" => {
            Health::Alive
        }
        _ => Health::Down,
    };
    DeclaredResource {
        name: t.name.clone(),
        r#type: "task".to_owned(),
        platform: PLUGIN.to_owned(),
        health: health as i32,
        health_message: t.describe(),
        ..DeclaredResource::default()
    }
}

#[async_trait]
impl Status for SwarmPlatform {
    /// One resource per current task (desired running), with its state and node; tasks that
    /// ended recently (a node went down) are named in the message.
    async fn status(
        &self,
        _ctx: &Ctx,
        config: &SwarmConfig,
        value: Service,
        _resources: Vec<DeclaredResource>,
    ) -> Result<StatusReport, PluginError> {
        let (docker, cluster) = connect(config).await?;
        report(&docker, &cluster, &value).await
    }
}

/// The health of deployment `value`: one resource per current task (state and node), and a
/// message with the running count, nodes that are down and tasks that were replaced.
pub(super) async fn report(
    docker: &Docker,
    cluster: &Cluster,
    value: &Service,
) -> Result<StatusReport, PluginError> {
    let all = cluster::tasks(docker, &value.service_id, &value.name, &cluster.hostnames())
        .await
        .map_err(fail)?;
    let current: Vec<&TaskFact> = all.iter().filter(|t| t.desired == "running").collect();
    let mut report =
        StatusReport::from_resources(current.iter().map(|t| task_resource(t)).collect());
    let running = current.iter().filter(|t| t.state == "running").count();
    let mut message = format!("{running} of {} tasks running", value.replicas);
    let down: Vec<&cluster::NodeFact> = cluster
        .nodes
        .iter()
        .filter(|n| n.state != "ready")
        .collect();
    if !down.is_empty() {
        let names: Vec<&str> = down.iter().map(|n| n.hostname.as_str()).collect();
        let _ = write!(message, "; node {} is {}", names.join(", "), down[0].state);
    }
    // A task on a node that is down keeps its last state (`running`) until the node is back.
    let moved: Vec<String> = all
        .iter()
        .filter(|t| t.desired != "running" && t.state != "complete")
        .take(5)
        .map(|t| match down.iter().find(|n| n.hostname == t.node) {
            Some(n) => format!("{} on {} (node {})", t.name, t.node, n.state),
            None => t.describe(),
        })
        .collect();
    if !moved.is_empty() {
        let _ = write!(message, "; replaced: {}", moved.join("; "));
    }
    if current.is_empty() {
        report.health = Health::Missing;
    }
    report.message = message;
    Ok(report)
}
