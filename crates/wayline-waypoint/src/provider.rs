//! Finding and running Waypoint plugins for the plugin host ([`PluginProvider`]):
//! `waypoint-plugin-<name>` executables in Waypoint's plugin dirs (`./.waypoint/plugins`,
//! `$XDG_CONFIG_HOME/waypoint/plugins`), Wayline's, then PATH; and Waypoint's built-ins through
//! a `waypoint` binary (`WAYLINE_WAYPOINT_BINARY`, or `waypoint` on PATH) as
//! `waypoint plugin <name>`. A plugin is started once per host and probed for its components.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use prost_types::Any;
use wayline_plugin::mapper::MapFn;
use wayline_plugin::{
    ComponentHandle, ComponentInfo, ComponentKind, HostError, Mapper, PluginError, PluginProvider,
};

use crate::component::{Client, WaypointHandle};
use crate::config::{self, Shape};
use crate::funcspec;
use crate::pb::sdk::{self, mapper_client::MapperClient};
use crate::process::{HANDSHAKE_TIMEOUT, Launch, Process};

/// The env var naming the `waypoint` binary whose built-ins Wayline may use.
pub const WAYPOINT_BINARY_ENV: &str = "WAYLINE_WAYPOINT_BINARY";

/// Plugins Waypoint 0.11 builds into its binary (`builtin/*`).
pub const WAYPOINT_BUILTINS: &[&str] = &[
    "aws-alb",
    "aws-ami",
    "aws-ec2",
    "aws-ecr",
    "aws-ecr-pull",
    "aws-ecs",
    "aws-lambda",
    "aws-ssm",
    "azure-container-instance",
    "consul",
    "docker",
    "docker-pull",
    "docker-ref",
    "exec",
    "files",
    "google-cloud-run",
    "helm",
    "kubernetes",
    "kubernetes-apply",
    "lambda-function-url",
    "nomad",
    "nomad-jobspec",
    "nomad-jobspec-canary",
    "null",
    "pack",
    "packer",
    "terraform-cloud",
    "vault",
];

const PREFIX: &str = "waypoint-plugin-";

/// The component kinds Waypoint's SDK serves that Wayline drives.
const KINDS: [ComponentKind; 4] = [
    ComponentKind::Builder,
    ComponentKind::Registry,
    ComponentKind::Platform,
    ComponentKind::ReleaseManager,
];

/// One component found in a running plugin.
struct Found {
    client: Client,
    info: ComponentInfo,
    shape: Option<Shape>,
}

/// A running plugin with what it offers.
struct Running {
    process: Arc<Process>,
    components: BTreeMap<ComponentKind, Found>,
    mappers: Vec<Mapper>,
}

/// Waypoint plugins for one project.
pub struct WaypointPlugins {
    dirs: Vec<PathBuf>,
    waypoint: Option<PathBuf>,
    handshake_timeout: Duration,
    running: tokio::sync::Mutex<BTreeMap<String, Arc<Running>>>,
    /// Names whose plugin failed to start, so `plugin list` does not retry them.
    broken: RwLock<BTreeSet<String>>,
}

impl std::fmt::Debug for WaypointPlugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaypointPlugins")
            .field("dirs", &self.dirs)
            .field("waypoint", &self.waypoint)
            .finish_non_exhaustive()
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default()
}

impl WaypointPlugins {
    /// Plugins in `dirs` then PATH, and the built-ins of the `waypoint` binary, if any.
    pub fn new(dirs: Vec<PathBuf>, waypoint: Option<PathBuf>) -> Self {
        Self {
            dirs,
            waypoint,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            running: tokio::sync::Mutex::new(BTreeMap::new()),
            broken: RwLock::new(BTreeSet::new()),
        }
    }

    /// For a project: Waypoint's plugin dirs, then Wayline's (`wayline_dirs`), then PATH; the
    /// `waypoint` binary from `WAYLINE_WAYPOINT_BINARY` or PATH.
    pub fn for_project(project_dir: &Path, wayline_dirs: &[PathBuf]) -> Self {
        let mut dirs = vec![project_dir.join(".waypoint").join("plugins")];
        let xdg = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
        if let Some(x) = xdg {
            dirs.push(x.join("waypoint").join("plugins"));
        }
        dirs.extend(wayline_dirs.iter().cloned());
        let waypoint = match std::env::var_os(WAYPOINT_BINARY_ENV).filter(|v| !v.is_empty()) {
            Some(p) => Some(PathBuf::from(p)),
            None => path_dirs()
                .into_iter()
                .map(|d| d.join("waypoint"))
                .find(|p| is_executable(p)),
        };
        Self::new(dirs, waypoint)
    }

    /// Sets how long a plugin may take to print its handshake.
    pub fn handshake_timeout(mut self, d: Duration) -> Self {
        self.handshake_timeout = d;
        self
    }

    /// The `waypoint` binary in use.
    pub fn waypoint_binary(&self) -> Option<&Path> {
        self.waypoint.as_deref()
    }

    fn all_dirs(&self) -> Vec<PathBuf> {
        let mut d = self.dirs.clone();
        d.extend(path_dirs());
        d
    }

    /// How plugin `name` would be started, if it is to be had.
    pub fn find(&self, name: &str) -> Option<Launch> {
        if name.is_empty() || name.contains('/') {
            return None;
        }
        if let Some(p) = self
            .all_dirs()
            .into_iter()
            .map(|d| d.join(format!("{PREFIX}{name}")))
            .find(|p| is_executable(p))
        {
            return Some(Launch {
                name: name.to_owned(),
                program: p,
                args: Vec::new(),
            });
        }
        let w = self.waypoint.as_ref()?;
        WAYPOINT_BUILTINS.contains(&name).then(|| Launch {
            name: name.to_owned(),
            program: w.clone(),
            args: vec!["plugin".into(), name.to_owned()],
        })
    }

    /// Starts `name` once and learns its components and mappers.
    async fn running(&self, name: &str) -> Result<Arc<Running>, HostError> {
        let mut running = self.running.lock().await;
        if let Some(r) = running.get(name) {
            if !r.process.exited() {
                return Ok(r.clone());
            }
            running.remove(name);
        }
        let launch = self
            .find(name)
            .ok_or_else(|| HostError::Start(format!("no Waypoint plugin `{name}` found")))?;
        let r = match start(launch, self.handshake_timeout).await {
            Ok(r) => Arc::new(r),
            Err(e) => {
                self.broken
                    .write()
                    .expect("broken lock")
                    .insert(name.to_owned());
                return Err(HostError::Start(e));
            }
        };
        running.insert(name.to_owned(), r.clone());
        Ok(r)
    }

    /// Asks every running plugin to exit (`GRPCController.Shutdown`).
    pub async fn shutdown(&self) {
        let all: Vec<Arc<Running>> = std::mem::take(&mut *self.running.lock().await)
            .into_values()
            .collect();
        for r in all {
            let _ = r.process.shutdown().await;
        }
    }

    /// The processes started so far (name, pid).
    pub async fn processes(&self) -> Vec<Arc<Process>> {
        self.running
            .lock()
            .await
            .values()
            .map(|r| r.process.clone())
            .collect()
    }
}

/// Starts a plugin and probes it: a kind is there when its `ConfigStruct` answers.
async fn start(launch: Launch, timeout: Duration) -> Result<Running, String> {
    let process = Process::start(launch, timeout).await?;
    let name = process.name().to_owned();
    let mut components = BTreeMap::new();
    for kind in KINDS {
        let client = Client::new(kind, &process.channel).expect("a served kind");
        let structure = match client.config_struct().await {
            Ok(s) => s.r#struct,
            Err(s) if s.code() == tonic::Code::Unimplemented => continue,
            Err(s) => return Err(process.failure(&format!("{kind} ConfigStruct"), &s).await),
        };
        let shape = structure
            .as_ref()
            .map(Shape::from_proto)
            .transpose()
            .map_err(|e| {
                format!("plugin `{name}` sent a config struct Wayline cannot read: {e}")
            })?;
        let docs = client.documentation().await.ok();
        let spec = match client.spec(kind.main_function()).await {
            Some(Ok(s)) => s,
            Some(Err(s)) => return Err(process.failure(&format!("{kind} spec"), &s).await),
            None => continue,
        };
        let mut capabilities = client.capabilities().await;
        let docs = docs.map(|d| {
            capabilities.insert(wayline_plugin::Capability::Documented);
            config::docs(&d, shape.as_ref())
        });
        let info = ComponentInfo {
            kind,
            name: name.clone(),
            accepts: funcspec::input_types(&spec),
            returns: spec
                .result
                .first()
                .map(|r| r.r#type.clone())
                .unwrap_or_default(),
            capabilities,
            default_release_manager: None,
            docs,
        };
        components.insert(
            kind,
            Found {
                client,
                info,
                shape,
            },
        );
    }
    let mappers = plugin_mappers(&process).await;
    Ok(Running {
        process,
        components,
        mappers,
    })
}

/// The plugin's own mappers (`Mapper.ListMappers`): those from one value type to another.
async fn plugin_mappers(process: &Arc<Process>) -> Vec<Mapper> {
    let Ok(list) = MapperClient::new(process.channel.clone())
        .list_mappers(())
        .await
    else {
        return Vec::new();
    };
    list.into_inner()
        .funcs
        .into_iter()
        .filter_map(|f| {
            let [input] = f.args.as_slice() else {
                return None;
            };
            let output = f.result.first()?;
            Some(Mapper::erased(
                format!("{}:{}", process.name(), f.name),
                input.r#type.clone(),
                output.r#type.clone(),
                Arc::new(PluginMap {
                    process: process.clone(),
                    spec: f,
                }),
            ))
        })
        .collect()
}

/// One plugin mapper, called through `Mapper.Map`.
struct PluginMap {
    process: Arc<Process>,
    spec: sdk::FuncSpec,
}

#[async_trait]
impl MapFn for PluginMap {
    async fn map(&self, input: Any) -> Result<Any, PluginError> {
        let what = format!(
            "plugin `{}` mapper `{}`",
            self.process.name(),
            self.spec.name
        );
        let args = funcspec::resolve(&what, &self.spec, &[funcspec::Provided::typed(input)], &[])
            .await
            .map_err(|m| PluginError::Input(m.0))?;
        let req = sdk::map::Request {
            args: Some(sdk::func_spec::Args { args }),
            result: self.spec.result[0].r#type.clone(),
        };
        match MapperClient::new(self.process.channel.clone())
            .map(req)
            .await
        {
            Ok(r) => r
                .into_inner()
                .result
                .map(|a| Any {
                    type_url: a.type_url,
                    value: a.value,
                })
                .ok_or_else(|| PluginError::Plugin(format!("{what} returned nothing"))),
            Err(s) => Err(PluginError::Plugin(
                self.process
                    .failure(&format!("mapper `{}`", self.spec.name), &s)
                    .await,
            )),
        }
    }
}

#[async_trait]
impl PluginProvider for WaypointPlugins {
    fn known(&self) -> Vec<(String, String)> {
        let mut out = BTreeMap::new();
        for d in self.all_dirs() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let f = e.file_name();
                if let Some(n) = f.to_str().and_then(|f| f.strip_prefix(PREFIX))
                    && !n.is_empty()
                    && is_executable(&e.path())
                {
                    out.entry(n.to_owned())
                        .or_insert_with(|| format!("Waypoint plugin `{}`", e.path().display()));
                }
            }
        }
        if let Some(w) = &self.waypoint {
            for n in WAYPOINT_BUILTINS {
                out.entry((*n).to_owned())
                    .or_insert_with(|| format!("Waypoint built-in via `{}`", w.display()));
            }
        }
        let broken = self.broken.read().expect("broken lock");
        out.into_iter()
            .filter(|(n, _)| !broken.contains(n))
            .collect()
    }

    fn source(&self, name: &str) -> Option<String> {
        let l = self.find(name)?;
        Some(if l.args.is_empty() {
            format!("Waypoint plugin `{}`", l.program.display())
        } else {
            format!("Waypoint built-in via `{}`", l.program.display())
        })
    }

    async fn component(
        &self,
        kind: ComponentKind,
        name: &str,
        mappers: Vec<Mapper>,
    ) -> Result<Option<Arc<dyn ComponentHandle>>, HostError> {
        let r = self.running(name).await?;
        let Some(f) = r.components.get(&kind) else {
            return Ok(None);
        };
        Ok(Some(Arc::new(WaypointHandle {
            plugin: r.process.clone(),
            client: f.client.clone(),
            info: f.info.clone(),
            shape: f.shape.clone(),
            mappers,
            configured: RwLock::new(false),
        })))
    }

    async fn kinds(&self, name: &str) -> Result<Vec<ComponentKind>, HostError> {
        Ok(self
            .running(name)
            .await?
            .components
            .keys()
            .copied()
            .collect())
    }

    async fn mappers(&self, name: &str) -> Result<Vec<Mapper>, HostError> {
        Ok(self.running(name).await?.mappers.clone())
    }
}

impl WaypointPlugins {
    /// The JSON Schema of each component's config (for `validate`), starting the plugin.
    pub async fn schemas(
        &self,
        name: &str,
    ) -> Result<Vec<(ComponentKind, serde_json::Value)>, HostError> {
        let r = self.running(name).await?;
        let mut out = Vec::new();
        for (k, f) in &r.components {
            let docs = f.client.documentation().await.ok();
            out.push((
                *k,
                f.shape.as_ref().map_or_else(
                    || Shape::default().schema(None),
                    |s| s.schema(docs.as_ref()),
                ),
            ));
        }
        Ok(out)
    }
}
