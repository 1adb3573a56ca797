//! The component traits plugin authors implement, and the optional capabilities.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use wayline_proto::plugin::v1 as pp;
use wayline_proto::v1::{DeclaredResource, Health, component};

use crate::registry::Capabilities;
use crate::{ConfigErrors, Ctx, Docs, PluginError, Value};

/// The five component kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ComponentKind {
    /// Source → artifact (`build { use "…" }`).
    Builder,
    /// Artifact → pushed artifact (`registry { use "…" }`).
    Registry,
    /// Artifact → deployment (`deploy { use "…" }`).
    Platform,
    /// Deployment → release (`release { use "…" }`).
    ReleaseManager,
    /// Dynamic config values (`configdynamic("…")`).
    ConfigSourcer,
}

impl ComponentKind {
    /// Every kind, in pipeline order.
    pub const ALL: [ComponentKind; 5] = [
        Self::Builder,
        Self::Registry,
        Self::Platform,
        Self::ReleaseManager,
        Self::ConfigSourcer,
    ];

    /// The name used in messages: `builder`, `registry`, `platform`, `release manager`,
    /// `config sourcer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Builder => "builder",
            Self::Registry => "registry",
            Self::Platform => "platform",
            Self::ReleaseManager => "release manager",
            Self::ConfigSourcer => "config sourcer",
        }
    }

    /// The function the component's stage runs.
    pub fn main_function(self) -> Function {
        match self {
            Self::Builder => Function::Build,
            Self::Registry => Function::Push,
            Self::Platform => Function::Deploy,
            Self::ReleaseManager => Function::Release,
            Self::ConfigSourcer => Function::ReadConfig,
        }
    }

    /// The protobuf enum value.
    pub fn to_proto(self) -> component::Type {
        match self {
            Self::Builder => component::Type::Builder,
            Self::Registry => component::Type::Registry,
            Self::Platform => component::Type::Platform,
            Self::ReleaseManager => component::Type::Releasemanager,
            Self::ConfigSourcer => component::Type::Configsourcer,
        }
    }

    /// From the protobuf enum value.
    pub fn from_proto(t: component::Type) -> Option<Self> {
        Some(match t {
            component::Type::Builder => Self::Builder,
            component::Type::Registry => Self::Registry,
            component::Type::Platform => Self::Platform,
            component::Type::Releasemanager => Self::ReleaseManager,
            component::Type::Configsourcer => Self::ConfigSourcer,
            component::Type::Unknown | component::Type::Mapper => return None,
        })
    }
}

impl std::fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A function the host can call on a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Function {
    /// [`Builder::build`]: no inputs.
    Build,
    /// [`Registry::push`]: input = the artifact.
    Push,
    /// [`Platform::deploy`]: input = the (pushed) artifact.
    Deploy,
    /// [`ReleaseManager::release`]: input = the deployment.
    Release,
    /// [`ConfigSourcer::read`]: input = `ConfigRequests`.
    ReadConfig,
    /// [`Destroyer::destroy`]: input = the component's own output, plus stored resources.
    Destroy,
    /// [`WorkspaceDestroyer::destroy_workspace`]: inputs = every output of the workspace.
    DestroyWorkspace,
    /// [`Status::status`]: input = the component's own output, plus stored resources.
    Status,
    /// [`Execer::exec`]: inputs = the output and an `ExecRequest`.
    Exec,
    /// [`LogPlatform::logs`]: inputs = the output and a `LogsRequest`.
    Logs,
    /// [`Generation::generation`]: no inputs; returns a `GenerationId`.
    Generation,
}

impl Function {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Build => "build",
            Self::Push => "push",
            Self::Deploy => "deploy",
            Self::Release => "release",
            Self::ReadConfig => "read_config",
            Self::Destroy => "destroy",
            Self::DestroyWorkspace => "destroy_workspace",
            Self::Status => "status",
            Self::Exec => "exec",
            Self::Logs => "logs",
            Self::Generation => "generation",
        }
    }

    /// From the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "build" => Self::Build,
            "push" => Self::Push,
            "deploy" => Self::Deploy,
            "release" => Self::Release,
            "read_config" => Self::ReadConfig,
            "destroy" => Self::Destroy,
            "destroy_workspace" => Self::DestroyWorkspace,
            "status" => Self::Status,
            "exec" => Self::Exec,
            "logs" => Self::Logs,
            "generation" => Self::Generation,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An optional capability of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// [`Destroyer`].
    Destroyer,
    /// [`WorkspaceDestroyer`].
    WorkspaceDestroyer,
    /// [`Status`].
    Status,
    /// [`Execer`].
    Execer,
    /// [`LogPlatform`].
    LogPlatform,
    /// [`Generation`].
    Generation,
    /// [`Documented`].
    Documented,
}

impl Capability {
    /// The wire name (in `ComponentInfo.capabilities`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Destroyer => "destroy",
            Self::WorkspaceDestroyer => "workspace_destroy",
            Self::Status => "status",
            Self::Execer => "exec",
            Self::LogPlatform => "logs",
            Self::Generation => "generation",
            Self::Documented => "docs",
        }
    }

    /// From the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "destroy" => Self::Destroyer,
            "workspace_destroy" => Self::WorkspaceDestroyer,
            "status" => Self::Status,
            "exec" => Self::Execer,
            "logs" => Self::LogPlatform,
            "generation" => Self::Generation,
            "docs" => Self::Documented,
            _ => return None,
        })
    }
}

/// What a component's main function returns: the typed value plus what the host stores and shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<T> {
    /// The typed value (artifact, deployment, release…).
    pub value: T,
    /// Data HCL sees as `artifact.*` / `deploy.*` (a JSON object, or null).
    pub template_data: serde_json::Value,
    /// Resources created, stored with the value so `destroy` removes exactly these.
    pub resources: Vec<DeclaredResource>,
    /// The URL this value is reachable at (a release, or a deployment with its own URL).
    pub url: Option<String>,
}

impl<T> Outcome<T> {
    /// Just a value.
    pub fn new(value: T) -> Self {
        Self {
            value,
            template_data: serde_json::Value::Null,
            resources: Vec::new(),
            url: None,
        }
    }

    /// Sets the template data.
    pub fn template_data(mut self, data: serde_json::Value) -> Self {
        self.template_data = data;
        self
    }

    /// Sets the declared resources.
    pub fn resources(mut self, resources: Vec<DeclaredResource>) -> Self {
        self.resources = resources;
        self
    }

    /// Sets the URL.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }
}

/// The health of a value and its resources.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReport {
    /// Overall health.
    pub health: Health,
    /// A sentence explaining it.
    pub message: String,
    /// Each resource with its own health.
    pub resources: Vec<DeclaredResource>,
}

impl StatusReport {
    /// Rolls per-resource health up: every resource READY → READY; every resource ALIVE or READY
    /// → ALIVE; every one DOWN → DOWN; every one MISSING → MISSING; some up and some not →
    /// PARTIAL; no resources or anything unknown → UNKNOWN.
    pub fn from_resources(resources: Vec<DeclaredResource>) -> Self {
        let hs: Vec<Health> = resources.iter().map(|r| r.health()).collect();
        let all = |f: &dyn Fn(Health) -> bool| !hs.is_empty() && hs.iter().all(|h| f(*h));
        let up = |h: Health| matches!(h, Health::Alive | Health::Ready);
        let health = if all(&|h| h == Health::Ready) {
            Health::Ready
        } else if all(&up) {
            Health::Alive
        } else if all(&|h| h == Health::Down) {
            Health::Down
        } else if all(&|h| h == Health::Missing) {
            Health::Missing
        } else if hs.iter().any(|h| up(*h)) {
            Health::Partial
        } else if all(&|h| matches!(h, Health::Down | Health::Missing)) {
            Health::Down
        } else {
            Health::Unknown
        };
        let down: Vec<&str> = resources
            .iter()
            .filter(|r| !up(r.health()))
            .map(|r| r.name.as_str())
            .collect();
        let message = match health {
            Health::Ready | Health::Alive => format!("all {} resources are up", resources.len()),
            Health::Unknown if resources.is_empty() => "no resources".to_owned(),
            _ => format!("not up: {}", down.join(", ")),
        };
        Self {
            health,
            message,
            resources,
        }
    }
}

/// What every component is: a config type and the value type it produces.
///
/// `Config` is decoded from the HCL `use` body (as JSON); derive `Deserialize` with
/// `#[serde(deny_unknown_fields)]` so a misspelt attribute is an error with its path.
pub trait Component: Send + Sync + 'static {
    /// The decoded `use` body.
    type Config: DeserializeOwned + Send + Sync + 'static;
    /// The value the component returns (artifact, deployment, release, config values).
    type Output: Value;

    /// Checks a decoded config without IO, returning every problem at once.
    fn validate(_config: &Self::Config) -> Result<(), ConfigErrors> {
        Ok(())
    }

    /// Declares optional capabilities, e.g. `caps.destroyer().status().documented();`.
    fn capabilities(_caps: &mut Capabilities<'_, Self>)
    where
        Self: Sized,
    {
    }
}

/// Source → artifact.
#[async_trait]
pub trait Builder: Component {
    /// Builds the app at `ctx.core.source_path`.
    async fn build(
        &self,
        ctx: &Ctx,
        config: &Self::Config,
    ) -> Result<Outcome<Self::Output>, PluginError>;
}

/// Artifact → pushed artifact.
#[async_trait]
pub trait Registry: Component {
    /// The artifact type it accepts.
    type Input: Value;
    /// Pushes the artifact.
    async fn push(
        &self,
        ctx: &Ctx,
        config: &Self::Config,
        artifact: Self::Input,
    ) -> Result<Outcome<Self::Output>, PluginError>;
}

/// Artifact → deployment.
#[async_trait]
pub trait Platform: Component {
    /// The artifact type it accepts.
    type Input: Value;
    /// Deploys the artifact.
    async fn deploy(
        &self,
        ctx: &Ctx,
        config: &Self::Config,
        artifact: Self::Input,
    ) -> Result<Outcome<Self::Output>, PluginError>;

    /// The release manager plugin used when the app has no `release` stanza.
    fn default_release_manager(&self) -> Option<&'static str> {
        None
    }
}

/// Deployment → release.
#[async_trait]
pub trait ReleaseManager: Component {
    /// The deployment type it accepts.
    type Input: Value;
    /// Releases the deployment; set [`Outcome::url`].
    async fn release(
        &self,
        ctx: &Ctx,
        config: &Self::Config,
        deployment: Self::Input,
    ) -> Result<Outcome<Self::Output>, PluginError>;
}

/// Dynamic config values.
#[async_trait]
pub trait ConfigSourcer: Component<Output = pp::ConfigValues> {
    /// Reads the requested values.
    async fn read(
        &self,
        ctx: &Ctx,
        config: &Self::Config,
        requests: pp::ConfigRequests,
    ) -> Result<Outcome<pp::ConfigValues>, PluginError>;
}

/// Capability: removes what the component created for one value.
#[async_trait]
pub trait Destroyer: Component {
    /// Destroys `value` and the `resources` stored with it; returns the resources marked
    /// `destroyed` (the [`ResourceManager`](crate::ResourceManager) does this).
    async fn destroy(
        &self,
        ctx: &Ctx,
        config: &Self::Config,
        value: Self::Output,
        resources: Vec<DeclaredResource>,
    ) -> Result<Vec<DeclaredResource>, PluginError>;
}

/// Capability: removes what the component shares across a workspace (after every value is gone).
#[async_trait]
pub trait WorkspaceDestroyer: Component {
    /// Destroys workspace-wide resources; `values` are every value of the workspace.
    async fn destroy_workspace(
        &self,
        ctx: &Ctx,
        config: &Self::Config,
        values: Vec<Self::Output>,
    ) -> Result<(), PluginError>;
}

/// Capability: reports the health of a value and its resources.
#[async_trait]
pub trait Status: Component {
    /// Checks health.
    async fn status(
        &self,
        ctx: &Ctx,
        config: &Self::Config,
        value: Self::Output,
        resources: Vec<DeclaredResource>,
    ) -> Result<StatusReport, PluginError>;
}

/// Capability: runs a command inside a deployment (non-interactive).
#[async_trait]
pub trait Execer: Component {
    /// Runs `request.args` in the deployment.
    async fn exec(
        &self,
        ctx: &Ctx,
        config: &Self::Config,
        value: Self::Output,
        request: pp::ExecRequest,
    ) -> Result<pp::ExecResult, PluginError>;
}

/// Capability: reads a deployment's logs from the platform.
#[async_trait]
pub trait LogPlatform: Component {
    /// Returns log lines.
    async fn logs(
        &self,
        ctx: &Ctx,
        config: &Self::Config,
        value: Self::Output,
        request: pp::LogsRequest,
    ) -> Result<pp::LogBatch, PluginError>;
}

/// Capability: deployments with the same generation id replace each other in place.
#[async_trait]
pub trait Generation: Component {
    /// The generation id for this config; `None` means "always a new generation".
    async fn generation(
        &self,
        ctx: &Ctx,
        config: &Self::Config,
    ) -> Result<Option<String>, PluginError>;
}

/// Capability: docs and config schema for `wayline plugin docs`.
pub trait Documented: Component {
    /// The component's docs.
    fn docs() -> Docs;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(name: &str, h: Health) -> DeclaredResource {
        DeclaredResource {
            name: name.into(),
            health: h as i32,
            ..DeclaredResource::default()
        }
    }

    #[test]
    fn health_rolls_up() {
        let r = |hs: &[Health]| {
            StatusReport::from_resources(
                hs.iter()
                    .enumerate()
                    .map(|(i, h)| res(&format!("r{i}"), *h))
                    .collect(),
            )
        };
        assert_eq!(r(&[Health::Ready, Health::Ready]).health, Health::Ready);
        assert_eq!(r(&[Health::Ready, Health::Alive]).health, Health::Alive);
        assert_eq!(r(&[Health::Down, Health::Down]).health, Health::Down);
        assert_eq!(r(&[Health::Missing]).health, Health::Missing);
        let p = r(&[Health::Ready, Health::Missing]);
        assert_eq!(p.health, Health::Partial);
        assert_eq!(p.message, "not up: r1");
        assert_eq!(r(&[Health::Down, Health::Missing]).health, Health::Down);
        assert_eq!(r(&[]).health, Health::Unknown);
        assert_eq!(r(&[Health::Unknown]).health, Health::Unknown);
    }

    #[test]
    fn wire_names_round_trip() {
        for f in [
            Function::Build,
            Function::Push,
            Function::Deploy,
            Function::Release,
            Function::ReadConfig,
            Function::Destroy,
            Function::DestroyWorkspace,
            Function::Status,
            Function::Exec,
            Function::Logs,
            Function::Generation,
        ] {
            assert_eq!(Function::parse(f.as_str()), Some(f));
        }
        for k in ComponentKind::ALL {
            assert_eq!(ComponentKind::from_proto(k.to_proto()), Some(k));
        }
    }
}
