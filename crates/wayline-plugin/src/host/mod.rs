//! The plugin host the runner drives (cargo feature `host`): finds plugins, built-in first then
//! external executables, starts the external ones and hands out [`ComponentHandle`]s.
//!
//! Module layering, one way only: [`PluginHost`] (here) uses `external` (the process manager
//! and gRPC client of one external plugin) and `discover` (search path and checksums); both of
//! those use only `handle` (the handle trait, the call and the errors).

mod discover;
mod external;
mod handle;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use prost_types::Any;

pub use discover::{PluginChecksumError, sha256_file};
pub use handle::{Call, ComponentHandle, HostError, UnknownPlugin};
pub(crate) use handle::{LocalHandle, suggest};

use crate::PluginError;
use crate::component::ComponentKind;
use crate::mapper::{Chain, Mapper, MapperRegistry, NoChain};
use crate::registry::{BuiltinRegistry, ComponentInfo};

/// Finds plugins (built-in first, then external executables) and hands out component handles.
pub struct PluginHost {
    builtins: BuiltinRegistry,
    search_dirs: Vec<PathBuf>,
    mappers: RwLock<MapperRegistry>,
    external: external::Externals,
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
