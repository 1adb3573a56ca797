//! Turning typed components into erased, callable specs; the built-in registry and the plugin
//! builder used by external plugins both hold these.
//!
//! `call` is the erased shape of one call, `info` what the host knows about a component without
//! calling it, `spec` the erased component, `capabilities` where a component declares its
//! optional functions; [`PluginSpec`] and [`BuiltinRegistry`] (here) group components by plugin.

mod call;
mod capabilities;
mod info;
mod spec;

use std::collections::BTreeMap;
use std::sync::Arc;

#[cfg(any(feature = "host", feature = "serve"))]
pub(crate) use call::CallArgs;
pub use call::CallResult;
#[cfg(feature = "host")]
pub(crate) use call::ConfigBox;
pub use capabilities::Capabilities;
pub use info::ComponentInfo;
pub use spec::ComponentSpec;

use crate::component::{Builder, ComponentKind, ConfigSourcer, Platform, Registry, ReleaseManager};
pub use crate::config::decode_config;
use crate::mapper::Mapper;

/// One plugin: a name, at most one component per kind, and mappers.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// The plugin name (`use "<name>"`).
    pub name: String,
    pub(crate) components: BTreeMap<ComponentKind, Arc<ComponentSpec>>,
    pub(crate) mappers: Vec<Mapper>,
}

impl PluginSpec {
    /// An empty plugin.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            components: BTreeMap::new(),
            mappers: Vec::new(),
        }
    }

    /// Adds (or replaces) a component.
    pub fn add_component(&mut self, spec: ComponentSpec) {
        self.components.insert(spec.info.kind, Arc::new(spec));
    }

    /// The component of one kind.
    pub fn component(&self, kind: ComponentKind) -> Option<&Arc<ComponentSpec>> {
        self.components.get(&kind)
    }

    /// Its components' kinds.
    pub fn kinds(&self) -> Vec<ComponentKind> {
        self.components.keys().copied().collect()
    }

    /// Its mappers.
    pub fn mappers(&self) -> &[Mapper] {
        &self.mappers
    }
}

/// Plugins compiled into the host; `wayline_plugins::register_builtins` fills it.
#[derive(Debug, Clone, Default)]
pub struct BuiltinRegistry {
    plugins: BTreeMap<String, PluginSpec>,
}

impl BuiltinRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn plugin(&mut self, name: &str) -> &mut PluginSpec {
        self.plugins
            .entry(name.to_owned())
            .or_insert_with(|| PluginSpec::new(name))
    }

    /// Registers a builder under `name`.
    pub fn builder<C: Builder>(&mut self, name: &str, c: C) -> &mut Self {
        self.plugin(name)
            .add_component(ComponentSpec::builder(name, c));
        self
    }

    /// Registers a registry under `name`.
    pub fn registry<C: Registry>(&mut self, name: &str, c: C) -> &mut Self {
        self.plugin(name)
            .add_component(ComponentSpec::registry(name, c));
        self
    }

    /// Registers a platform under `name`.
    pub fn platform<C: Platform>(&mut self, name: &str, c: C) -> &mut Self {
        self.plugin(name)
            .add_component(ComponentSpec::platform(name, c));
        self
    }

    /// Registers a release manager under `name`.
    pub fn release_manager<C: ReleaseManager>(&mut self, name: &str, c: C) -> &mut Self {
        self.plugin(name)
            .add_component(ComponentSpec::release_manager(name, c));
        self
    }

    /// Registers a config sourcer under `name`.
    pub fn config_sourcer<C: ConfigSourcer>(&mut self, name: &str, c: C) -> &mut Self {
        self.plugin(name)
            .add_component(ComponentSpec::config_sourcer(name, c));
        self
    }

    /// Registers a mapper, owned by plugin `plugin`.
    pub fn mapper(&mut self, plugin: &str, m: Mapper) -> &mut Self {
        self.plugin(plugin).mappers.push(m);
        self
    }

    /// Adds a whole plugin (e.g. one built with `PluginBuilder`, feature `serve`).
    pub fn add_plugin(&mut self, p: PluginSpec) -> &mut Self {
        self.plugins.insert(p.name.clone(), p);
        self
    }

    /// A plugin by name.
    pub fn get(&self, name: &str) -> Option<&PluginSpec> {
        self.plugins.get(name)
    }

    /// Every plugin, by name.
    pub fn plugins(&self) -> impl Iterator<Item = &PluginSpec> {
        self.plugins.values()
    }
}
