//! The plugin host the runner drives (cargo feature `host`): finds plugins, built-in first then
//! external executables, starts the external ones and hands out [`ComponentHandle`]s.
//!
//! Module layering, one way only: [`PluginHost`] (here) uses `external` (the process manager
//! and gRPC client of one external plugin) and `discover` (search path and checksums); both of
//! those use only `handle` (the handle trait, the call and the errors).

mod discover;
mod external;
mod handle;
mod spawn;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use prost_types::Any;

pub use discover::{PluginChecksumError, sha256_file};
pub use handle::{Call, ComponentHandle, HostError, UnknownPlugin};
pub(crate) use handle::{LocalHandle, suggest};
pub use spawn::spawn_executable;

use crate::PluginError;
use crate::component::ComponentKind;
use crate::mapper::{Chain, Mapper, MapperRegistry, NoChain};
use crate::registry::{BuiltinRegistry, ComponentInfo};

/// Plugins another protocol provides (Waypoint's, in `wayline-waypoint`), consulted for names
/// no built-in and no `wayline-plugin-<name>` executable has. The SDK holds only this seam: a
/// provider's protocol, processes and discovery live in its own crate.
#[async_trait::async_trait]
pub trait PluginProvider: Send + Sync {
    /// Every plugin name it provides, with where it comes from (for `wayline plugin list`).
    fn known(&self) -> Vec<(String, String)>;

    /// Where `name` comes from, when this provider has it.
    fn source(&self, name: &str) -> Option<String>;

    /// A fresh handle on component `kind` of `name` (`Ok(None)`: the plugin has no such
    /// component); `mappers` are every mapper the host knows, for the plugin's argument
    /// matching. Starts the plugin if needed.
    async fn component(
        &self,
        kind: ComponentKind,
        name: &str,
        mappers: Vec<Mapper>,
    ) -> Result<Option<Arc<dyn ComponentHandle>>, HostError>;

    /// The component kinds `name` has (starting it if needed).
    async fn kinds(&self, name: &str) -> Result<Vec<ComponentKind>, HostError>;

    /// The mappers plugin `name` brings (starting it if needed).
    async fn mappers(&self, name: &str) -> Result<Vec<Mapper>, HostError>;
}

/// Finds plugins (built-in first, then external executables, then providers) and hands out
/// component handles.
pub struct PluginHost {
    builtins: BuiltinRegistry,
    search_dirs: Vec<PathBuf>,
    mappers: RwLock<MapperRegistry>,
    external: external::Externals,
    providers: Vec<Arc<dyn PluginProvider>>,
    /// Provider plugins whose mappers joined the registry.
    provider_loaded: std::sync::Mutex<BTreeSet<String>>,
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
            external: external::Externals::default(),
            providers: Vec::new(),
            provider_loaded: std::sync::Mutex::new(BTreeSet::new()),
        }
    }

    /// Adds a provider of plugins of another protocol, asked after built-ins and
    /// `wayline-plugin-*` executables.
    pub fn add_provider(&mut self, p: Arc<dyn PluginProvider>) {
        self.providers.push(p);
    }

    /// The provider that has `name`, when no built-in or Wayline executable does.
    fn provider_of(&self, name: &str) -> Option<&Arc<dyn PluginProvider>> {
        if self.builtins.get(name).is_some() || discover::find(&self.search_dirs, name).is_some() {
            return None;
        }
        self.providers.iter().find(|p| p.source(name).is_some())
    }

    /// Where plugin `name` comes from: `built-in`, `external` (a `wayline-plugin-*`
    /// executable), or what its provider says (e.g. "Waypoint plugin `path`").
    pub fn source_of(&self, name: &str) -> Option<String> {
        if self.builtins.get(name).is_some() {
            return Some("built-in".to_owned());
        }
        if discover::find(&self.search_dirs, name).is_some() {
            return Some("external".to_owned());
        }
        self.providers.iter().find_map(|p| p.source(name))
    }

    /// Registers the mappers of provider plugin `name` once.
    async fn load_provided(
        &self,
        p: &Arc<dyn PluginProvider>,
        name: &str,
    ) -> Result<(), HostError> {
        if self
            .provider_loaded
            .lock()
            .expect("provider lock")
            .contains(name)
        {
            return Ok(());
        }
        let ms = p.mappers(name).await?;
        self.provider_loaded
            .lock()
            .expect("provider lock")
            .insert(name.to_owned());
        let mut reg = self.mappers.write().expect("mapper lock");
        for m in ms {
            reg.add(m);
        }
        Ok(())
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
        if let Some(p) = self.provider_of(name) {
            let p = p.clone();
            return self.load_provided(&p, name).await;
        }
        let p = self
            .external
            .load(name, checksum, &self.search_dirs, || self.not_found(name))
            .await?;
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
        if let Some(p) = self.provider_of(name) {
            let p = p.clone();
            self.load_provided(&p, name).await?;
            return match p.component(kind, name, self.mappers()).await? {
                Some(h) => Ok(h),
                None => {
                    let kinds = p.kinds(name).await?;
                    Err(UnknownPlugin::new(
                        kind,
                        name,
                        &[],
                        &format!(
                            "plugin `{name}` has no {kind} (it has: {})",
                            kinds_list(&kinds)
                        ),
                    )
                    .into())
                }
            };
        }
        match discover::find(&self.search_dirs, name) {
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

    /// The error for an external plugin with no executable, with the closest known name.
    fn not_found(&self, name: &str) -> HostError {
        let hint = suggest(name, &self.known_plugins())
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        HostError::Start(format!(
            "plugin `{name}` not found: no `wayline-plugin-{name}` or `waypoint-plugin-{name}` executable in {}{hint}",
            self.search_description()
        ))
    }

    /// "`dir1`, `dir2`, PATH", for messages.
    fn search_description(&self) -> String {
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
        v.extend(discover::discover_names(&self.search_dirs));
        for p in &self.providers {
            v.extend(p.known().into_iter().map(|(n, _)| n));
        }
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
        } else if let Some(p) = self.provider_of(name) {
            let mut v = Vec::new();
            for k in p.kinds(name).await? {
                if let Some(h) = p.component(k, name, self.mappers()).await? {
                    v.push(h.info().clone());
                }
            }
            v
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
