//! The uniform handle the runner drives, for built-in and external plugins alike.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use prost_types::Any;
use tokio_util::sync::CancellationToken;
use wayline_proto::v1::DeclaredResource;

use crate::component::{Capability, ComponentKind, Function};
use crate::mapper::{Chain, Mapper, MapperRegistry, NoChain};
use crate::registry::{
    BuiltinRegistry, CallArgs, CallResult, ComponentInfo, ComponentSpec, ConfigBox,
};
use crate::{ConfigErrors, CoreValues, Ctx, PluginError, Ui};

/// One call of a component function.
#[derive(Debug, Clone)]
pub struct Call {
    /// Which function.
    pub function: Function,
    /// Job info, source, labels, deployment env, data dir.
    pub core: CoreValues,
    /// Input values (already mapped to a type the component accepts).
    pub inputs: Vec<Any>,
    /// Resources stored with the value (for destroy and status).
    pub resources: Vec<DeclaredResource>,
    /// Where output goes.
    pub ui: Ui,
    /// Cancels the call.
    pub cancel: CancellationToken,
    /// Template data of the input (`artifact.*` for deploy), used by templating components.
    pub input_template_data: serde_json::Value,
}

impl Call {
    /// A call with no inputs.
    pub fn new(function: Function, core: CoreValues, ui: Ui, cancel: CancellationToken) -> Self {
        Self {
            function,
            core,
            inputs: Vec::new(),
            resources: Vec::new(),
            ui,
            cancel,
            input_template_data: serde_json::Value::Null,
        }
    }

    /// Sets the input's template data.
    pub fn input_template_data(mut self, data: serde_json::Value) -> Self {
        self.input_template_data = data;
        self
    }

    /// Adds an input value.
    pub fn input(mut self, value: Any) -> Self {
        self.inputs.push(value);
        self
    }

    /// Sets the stored resources.
    pub fn resources(mut self, resources: Vec<DeclaredResource>) -> Self {
        self.resources = resources;
        self
    }
}

/// A component the runner can configure and call, whether built in or external.
#[async_trait]
pub trait ComponentHandle: Send + Sync {
    /// Kind, name, accepted and returned types, capabilities, docs.
    fn info(&self) -> &ComponentInfo;

    /// Its kind.
    fn kind(&self) -> ComponentKind {
        self.info().kind
    }

    /// The plugin name.
    fn name(&self) -> &str {
        &self.info().name
    }

    /// Full type names the main function accepts.
    fn accepts(&self) -> &[String] {
        &self.info().accepts
    }

    /// Full type name it returns.
    fn returns(&self) -> &str {
        &self.info().returns
    }

    /// Optional capabilities.
    fn capabilities(&self) -> &BTreeSet<Capability> {
        &self.info().capabilities
    }

    /// Decodes and validates the `use` body (JSON); errors carry field paths. Later calls use
    /// this config; a handle never configured uses `{}`.
    async fn configure(&self, config: serde_json::Value) -> Result<(), ConfigErrors>;

    /// Runs one function.
    async fn call(&self, call: Call) -> Result<CallResult, PluginError>;
}

/// A handle on an in-process component.
pub(crate) struct LocalHandle {
    spec: Arc<ComponentSpec>,
    config: RwLock<Option<ConfigBox>>,
}

impl LocalHandle {
    pub(crate) fn new(spec: Arc<ComponentSpec>) -> Self {
        Self {
            spec,
            config: RwLock::new(None),
        }
    }
}

#[async_trait]
impl ComponentHandle for LocalHandle {
    fn info(&self) -> &ComponentInfo {
        self.spec.info()
    }

    async fn configure(&self, config: serde_json::Value) -> Result<(), ConfigErrors> {
        let cfg = self.spec.decode(&config)?;
        *self.config.write().expect("config lock") = Some(cfg);
        Ok(())
    }

    async fn call(&self, call: Call) -> Result<CallResult, PluginError> {
        let cfg = self.config.read().expect("config lock").clone();
        let cfg = match cfg {
            Some(c) => c,
            None => self.spec.decode(&serde_json::Value::Null)?,
        };
        let mut ctx = Ctx::new(call.core, call.ui, call.cancel.clone());
        ctx.input_template_data = call.input_template_data;
        let args = CallArgs {
            inputs: call.inputs,
            resources: call.resources,
        };
        tokio::select! {
            r = self.spec.call(cfg, call.function, ctx, args) => r,
            () = call.cancel.cancelled() => Err(PluginError::Cancelled),
        }
    }
}

/// No plugin provides the requested component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UnknownPlugin {
    /// The kind asked for.
    pub kind: ComponentKind,
    /// The name asked for.
    pub name: String,
    /// The closest known plugin name, if any is close.
    pub suggestion: Option<String>,
    message: String,
}

impl UnknownPlugin {
    pub(crate) fn new(kind: ComponentKind, name: &str, known: &[String], why: &str) -> Self {
        let suggestion = suggest(name, known);
        let mut message = format!("unknown {kind} plugin `{name}`: {why}");
        if let Some(s) = &suggestion {
            let _ = write!(message, "; did you mean `{s}`?");
        }
        Self {
            kind,
            name: name.to_owned(),
            suggestion,
            message,
        }
    }
}

/// The known name closest to `name`, if one is close enough to be a likely typo.
pub(crate) fn suggest(name: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .filter(|k| *k != name)
        .map(|k| (strsim::jaro_winkler(name, k), k))
        .filter(|(s, _)| *s >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.clone())
}

/// Errors from the host itself (finding and starting plugins).
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// No such plugin, or it lacks the component kind.
    #[error(transparent)]
    Unknown(#[from] UnknownPlugin),
    /// An external plugin could not be verified or started.
    #[error("{0}")]
    Start(String),
}

/// Finds plugins (built-in first, then external executables) and hands out component handles.
pub struct PluginHost {
    builtins: BuiltinRegistry,
    search_dirs: Vec<PathBuf>,
    mappers: RwLock<MapperRegistry>,
    pub(crate) external: crate::external::Externals,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("search_dirs", &self.search_dirs)
            .finish_non_exhaustive()
    }
}

impl PluginHost {
    /// A host with these built-ins that looks for external plugins in `search_dirs`, then PATH.
    pub fn new(builtins: BuiltinRegistry, search_dirs: Vec<PathBuf>) -> Self {
        let mut mappers = MapperRegistry::new();
        for p in builtins.plugins() {
            for m in p.mappers() {
                mappers.add(m.clone());
            }
        }
        Self {
            builtins,
            search_dirs,
            mappers: RwLock::new(mappers),
            external: crate::external::Externals::default(),
        }
    }

    /// The standard search dirs for a project: `<project>/.wayline/plugins`, then
    /// `$XDG_CONFIG_HOME/wayline/plugins` (default `~/.config/wayline/plugins`). PATH is always
    /// searched last.
    pub fn default_search_dirs(project_dir: &std::path::Path) -> Vec<PathBuf> {
        let mut v = vec![project_dir.join(".wayline").join("plugins")];
        let xdg = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
        if let Some(x) = xdg {
            v.push(x.join("wayline").join("plugins"));
        }
        v
    }

    /// The built-ins.
    pub fn builtins(&self) -> &BuiltinRegistry {
        &self.builtins
    }

    /// The external plugin search dirs (PATH comes after these).
    pub fn search_dirs(&self) -> &[PathBuf] {
        &self.search_dirs
    }

    /// Starts external plugin `name` now (checking its sha256 `checksum` when given) so its
    /// mappers join the registry. Called for each HCL `plugin` block; a plugin already started is
    /// not started again.
    pub async fn load_plugin(&self, name: &str, checksum: Option<&str>) -> Result<(), HostError> {
        let p = crate::external::load(self, name, checksum).await?;
        let mut reg = self.mappers.write().expect("mapper lock");
        for m in p.mappers() {
            reg.add(m);
        }
        Ok(())
    }

    /// A fresh handle on component `kind` of plugin `name`: a built-in if there is one, else an
    /// external plugin (started on first use).
    pub async fn component(
        &self,
        kind: ComponentKind,
        name: &str,
    ) -> Result<Arc<dyn ComponentHandle>, HostError> {
        if let Some(p) = self.builtins.get(name) {
            return match p.component(kind) {
                Some(spec) => Ok(Arc::new(LocalHandle::new(spec.clone()))),
                None => Err(UnknownPlugin::new(
                    kind,
                    name,
                    &[],
                    &format!(
                        "plugin `{name}` has no {kind} (it has: {})",
                        kinds_list(&p.kinds())
                    ),
                )
                .into()),
            };
        }
        match crate::external::find(self, name) {
            Some(_) => {
                self.load_plugin(name, None).await?;
                let p = self.external.get(name).expect("loaded above");
                p.handle(kind).ok_or_else(|| {
                    UnknownPlugin::new(
                        kind,
                        name,
                        &[],
                        &format!(
                            "plugin `{name}` has no {kind} (it has: {})",
                            kinds_list(&p.kinds())
                        ),
                    )
                    .into()
                })
            }
            None => {
                let known = self.known_plugins();
                Err(UnknownPlugin::new(
                    kind,
                    name,
                    &known,
                    &format!(
                        "no built-in plugin has that name and no `wayline-plugin-{name}` executable was found in {}",
                        self.search_description()
                    ),
                )
                .into())
            }
        }
    }

    /// "`dir1`, `dir2`, PATH", for messages.
    pub(crate) fn search_description(&self) -> String {
        self.search_dirs
            .iter()
            .map(|d| format!("`{}`", d.display()))
            .chain(std::iter::once("PATH".to_owned()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every plugin name known: built-ins, and executables in the search dirs and PATH.
    pub fn known_plugins(&self) -> Vec<String> {
        let mut v: BTreeSet<String> = self.builtins.plugins().map(|p| p.name.clone()).collect();
        v.extend(crate::external::discover_names(self));
        v.into_iter().collect()
    }

    /// The docs of every documented component of plugin `name` (built-in, or external: started
    /// if needed), for `wayline plugin docs`. Render one with [`Docs::to_markdown`](crate::Docs::to_markdown).
    pub async fn plugin_docs(
        &self,
        name: &str,
    ) -> Result<Vec<(ComponentKind, crate::Docs)>, HostError> {
        let infos: Vec<ComponentInfo> = if let Some(p) = self.builtins.get(name) {
            p.kinds()
                .into_iter()
                .filter_map(|k| p.component(k).map(|c| c.info().clone()))
                .collect()
        } else {
            self.load_plugin(name, None).await?;
            let p = self.external.get(name).expect("loaded above");
            p.kinds()
                .into_iter()
                .filter_map(|k| p.handle(k).map(|h| h.info().clone()))
                .collect()
        };
        Ok(infos
            .into_iter()
            .filter_map(|i| Some((i.kind, i.docs?)))
            .collect())
    }

    /// External plugins started so far: name, executable, pid. They are killed when the host
    /// is dropped.
    pub fn running_plugins(&self) -> Vec<(String, PathBuf, u32)> {
        self.external.all().iter().map(|p| p.describe()).collect()
    }

    /// Every mapper known (built-in and loaded external plugins'), in name order.
    pub fn mappers(&self) -> Vec<Mapper> {
        self.mappers
            .read()
            .expect("mapper lock")
            .iter()
            .cloned()
            .collect()
    }

    /// The shortest mapper chain from type `from` to type `to`.
    pub fn find_chain(&self, from: &str, to: &str) -> Result<Chain, NoChain> {
        self.mappers
            .read()
            .expect("mapper lock")
            .find_chain(from, to)
    }

    /// Runs a chain on a value.
    pub async fn map(&self, chain: &Chain, value: Any) -> Result<Any, PluginError> {
        chain.apply(value).await
    }
}

fn kinds_list(kinds: &[ComponentKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
