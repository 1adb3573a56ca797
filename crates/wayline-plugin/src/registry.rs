//! Turning typed components into erased, callable specs; the built-in registry and the plugin
//! builder used by external plugins both hold these.

use std::any::Any as StdAny;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::future::BoxFuture;
use prost_types::Any;
use wayline_proto::plugin::v1 as pp;
use wayline_proto::v1::{DeclaredResource, Health};

use crate::component::*;
use crate::mapper::Mapper;
use crate::value::type_name;
use crate::{ConfigErrors, Ctx, Docs, PluginError, Value};

/// A decoded config, type-erased.
pub(crate) type ConfigBox = Arc<dyn StdAny + Send + Sync>;

/// The arguments of one call besides the context.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallArgs {
    pub(crate) inputs: Vec<Any>,
    pub(crate) resources: Vec<DeclaredResource>,
}

impl CallArgs {
    fn take<T: Value>(&mut self, component: &str, function: Function) -> Result<T, PluginError> {
        let found = if T::TYPE_NAME == crate::value::ANY_TYPE {
            (!self.inputs.is_empty()).then_some(0)
        } else {
            self.inputs
                .iter()
                .position(|a| type_name(a) == T::TYPE_NAME)
        };
        match found {
            Some(i) => T::from_any(&self.inputs.remove(i)),
            None => {
                let got: Vec<&str> = self.inputs.iter().map(type_name).collect();
                Err(PluginError::Input(format!(
                    "{component} `{function}` needs a `{}` input, got {}",
                    T::TYPE_NAME,
                    if got.is_empty() {
                        "none".to_owned()
                    } else {
                        got.iter()
                            .map(|g| format!("`{g}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )))
            }
        }
    }
}

/// What a call returns, in the host's terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallResult {
    /// The typed value, packed (none for destroy).
    pub value: Option<Any>,
    /// Template data (`artifact.*`, `deploy.*`), a JSON object or null.
    pub template_data: serde_json::Value,
    /// Declared resources (after deploy), or the same marked destroyed (after destroy), or with
    /// per-resource health (after status).
    pub resources: Vec<DeclaredResource>,
    /// URL of a release or deployment.
    pub url: Option<String>,
    /// Overall health (after status).
    pub health: Option<Health>,
    /// Explains `health`.
    pub health_message: String,
}

impl<T: Value> From<Outcome<T>> for CallResult {
    fn from(o: Outcome<T>) -> Self {
        CallResult {
            value: Some(o.value.to_any()),
            template_data: o.template_data,
            resources: o.resources,
            url: o.url,
            health: None,
            health_message: String::new(),
        }
    }
}

pub(crate) type Dispatch = Arc<
    dyn Fn(ConfigBox, Ctx, CallArgs) -> BoxFuture<'static, Result<CallResult, PluginError>>
        + Send
        + Sync,
>;
type DecodeFn = Arc<dyn Fn(&serde_json::Value) -> Result<ConfigBox, ConfigErrors> + Send + Sync>;

/// What the host knows about a component without calling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInfo {
    /// Its kind.
    pub kind: ComponentKind,
    /// The plugin name (`use "<name>"`).
    pub name: String,
    /// Full type names its main function accepts (empty for a builder).
    pub accepts: Vec<String>,
    /// Full type name it returns.
    pub returns: String,
    /// Optional capabilities.
    pub capabilities: BTreeSet<Capability>,
    /// For a platform: the release manager used when the app has none.
    pub default_release_manager: Option<String>,
    /// Docs, when [`Documented`].
    pub docs: Option<Docs>,
}

impl ComponentInfo {
    /// `platform "exec"`, for messages.
    pub fn label(&self) -> String {
        format!("{} \"{}\"", self.kind, self.name)
    }

    #[cfg(feature = "serve")]
    pub(crate) fn to_proto(&self) -> pp::ComponentInfo {
        pp::ComponentInfo {
            r#type: self.kind.to_proto() as i32,
            accepts: self.accepts.clone(),
            returns: self.returns.clone(),
            capabilities: self
                .capabilities
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            docs: self
                .docs
                .as_ref()
                .map(|d| d.to_markdown(&self.name))
                .unwrap_or_default(),
            config_schema_json: self
                .docs
                .as_ref()
                .map(|d| d.config_schema().to_string())
                .unwrap_or_default(),
            default_release_manager: self.default_release_manager.clone().unwrap_or_default(),
            docs_json: self
                .docs
                .as_ref()
                .map(|d| serde_json::to_string(d).unwrap_or_default())
                .unwrap_or_default(),
        }
    }

    #[cfg(feature = "host")]
    pub(crate) fn from_proto(name: &str, c: &pp::ComponentInfo) -> Option<Self> {
        let kind = ComponentKind::from_proto(c.r#type())?;
        Some(ComponentInfo {
            kind,
            name: name.to_owned(),
            accepts: c.accepts.clone(),
            returns: c.returns.clone(),
            capabilities: c
                .capabilities
                .iter()
                .filter_map(|s| Capability::parse(s))
                .collect(),
            default_release_manager: Some(c.default_release_manager.clone())
                .filter(|s| !s.is_empty()),
            docs: serde_json::from_str(&c.docs_json).ok(),
        })
    }
}

/// One component, erased: its info, a config decoder, and its callable functions.
#[derive(Clone)]
pub struct ComponentSpec {
    pub(crate) info: ComponentInfo,
    #[cfg_attr(
        not(any(feature = "host", feature = "serve")),
        allow(dead_code, reason = "the host and serve features call this")
    )]
    decode: DecodeFn,
    functions: BTreeMap<Function, Dispatch>,
}

impl std::fmt::Debug for ComponentSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentSpec")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

pub use crate::config::decode_config;

impl ComponentSpec {
    fn new<C: Component>(kind: ComponentKind, name: &str, accepts: Vec<String>) -> Self {
        Self {
            info: ComponentInfo {
                kind,
                name: name.to_owned(),
                accepts,
                returns: C::Output::TYPE_NAME.to_owned(),
                capabilities: BTreeSet::new(),
                default_release_manager: None,
                docs: None,
            },
            decode: Arc::new(|json| {
                let cfg: C::Config = decode_config(json)?;
                C::validate(&cfg)?;
                Ok(Arc::new(cfg) as ConfigBox)
            }),
            functions: BTreeMap::new(),
        }
    }

    /// Its info.
    pub fn info(&self) -> &ComponentInfo {
        &self.info
    }

    /// Decodes and validates a config.
    #[cfg_attr(
        not(any(feature = "host", feature = "serve")),
        allow(dead_code, reason = "the host and serve features call this")
    )]
    pub(crate) fn decode(&self, json: &serde_json::Value) -> Result<ConfigBox, ConfigErrors> {
        (self.decode)(json)
    }

    /// Runs one function.
    #[cfg_attr(
        not(any(feature = "host", feature = "serve")),
        allow(dead_code, reason = "the host and serve features call this")
    )]
    pub(crate) async fn call(
        &self,
        config: ConfigBox,
        function: Function,
        ctx: Ctx,
        args: CallArgs,
    ) -> Result<CallResult, PluginError> {
        let Some(f) = self.functions.get(&function) else {
            return Err(PluginError::Unsupported {
                component: self.info.label(),
                function: function.as_str().to_owned(),
            });
        };
        ctx.check_cancelled()?;
        f(config, ctx, args).await
    }

    fn insert<C: Component, F>(&mut self, c: &Arc<C>, function: Function, f: F)
    where
        F: Fn(
                Arc<C>,
                Arc<C::Config>,
                Ctx,
                CallArgs,
                String,
            ) -> BoxFuture<'static, Result<CallResult, PluginError>>
            + Send
            + Sync
            + 'static,
    {
        let c = c.clone();
        let label = self.info.label();
        self.functions.insert(
            function,
            Arc::new(
                move |cfg: ConfigBox, ctx, args| match cfg.downcast::<C::Config>() {
                    Ok(cfg) => f(c.clone(), cfg, ctx, args, label.clone()),
                    Err(_) => Box::pin(async {
                        Err(PluginError::msg("internal error: config of the wrong type"))
                    }),
                },
            ),
        );
    }
}

/// Where a component declares its optional capabilities (see [`Component::capabilities`]).
pub struct Capabilities<'a, C: Component> {
    spec: &'a mut ComponentSpec,
    component: Arc<C>,
}

impl<C: Component> std::fmt::Debug for Capabilities<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capabilities")
            .field("info", &self.spec.info)
            .finish()
    }
}

impl<C: Component> Capabilities<'_, C> {
    fn add(&mut self, cap: Capability) {
        self.spec.info.capabilities.insert(cap);
    }

    /// The component implements [`Destroyer`].
    pub fn destroyer(&mut self) -> &mut Self
    where
        C: Destroyer,
    {
        self.add(Capability::Destroyer);
        self.spec.insert(
            &self.component,
            Function::Destroy,
            |c, cfg, ctx, mut a, l| {
                Box::pin(async move {
                    let v = a.take::<C::Output>(&l, Function::Destroy)?;
                    let resources = c.destroy(&ctx, &cfg, v, a.resources).await?;
                    Ok(CallResult {
                        resources,
                        ..CallResult::default()
                    })
                })
            },
        );
        self
    }

    /// The component implements [`WorkspaceDestroyer`].
    pub fn workspace_destroyer(&mut self) -> &mut Self
    where
        C: WorkspaceDestroyer,
    {
        self.add(Capability::WorkspaceDestroyer);
        self.spec.insert(
            &self.component,
            Function::DestroyWorkspace,
            |c, cfg, ctx, a, _| {
                Box::pin(async move {
                    let values = a
                        .inputs
                        .iter()
                        .filter(|v| type_name(v) == C::Output::TYPE_NAME)
                        .map(C::Output::from_any)
                        .collect::<Result<Vec<_>, _>>()?;
                    c.destroy_workspace(&ctx, &cfg, values).await?;
                    Ok(CallResult::default())
                })
            },
        );
        self
    }

    /// The component implements [`Status`].
    pub fn status(&mut self) -> &mut Self
    where
        C: Status,
    {
        self.add(Capability::Status);
        self.spec.insert(
            &self.component,
            Function::Status,
            |c, cfg, ctx, mut a, l| {
                Box::pin(async move {
                    let v = a.take::<C::Output>(&l, Function::Status)?;
                    let r = c.status(&ctx, &cfg, v, a.resources).await?;
                    Ok(CallResult {
                        resources: r.resources,
                        health: Some(r.health),
                        health_message: r.message,
                        ..CallResult::default()
                    })
                })
            },
        );
        self
    }

    /// The component implements [`Execer`].
    pub fn execer(&mut self) -> &mut Self
    where
        C: Execer,
    {
        self.add(Capability::Execer);
        self.spec
            .insert(&self.component, Function::Exec, |c, cfg, ctx, mut a, l| {
                Box::pin(async move {
                    let v = a.take::<C::Output>(&l, Function::Exec)?;
                    let req = a.take::<pp::ExecRequest>(&l, Function::Exec)?;
                    let r = c.exec(&ctx, &cfg, v, req).await?;
                    Ok(CallResult {
                        value: Some(r.to_any()),
                        ..CallResult::default()
                    })
                })
            });
        self
    }

    /// The component implements [`LogPlatform`].
    pub fn log_platform(&mut self) -> &mut Self
    where
        C: LogPlatform,
    {
        self.add(Capability::LogPlatform);
        self.spec
            .insert(&self.component, Function::Logs, |c, cfg, ctx, mut a, l| {
                Box::pin(async move {
                    let v = a.take::<C::Output>(&l, Function::Logs)?;
                    let req = a.take::<pp::LogsRequest>(&l, Function::Logs)?;
                    let r = c.logs(&ctx, &cfg, v, req).await?;
                    Ok(CallResult {
                        value: Some(r.to_any()),
                        ..CallResult::default()
                    })
                })
            });
        self
    }

    /// The component implements [`Generation`].
    pub fn generation(&mut self) -> &mut Self
    where
        C: Generation,
    {
        self.add(Capability::Generation);
        self.spec.insert(
            &self.component,
            Function::Generation,
            |c, cfg, ctx, _, _| {
                Box::pin(async move {
                    let id = c.generation(&ctx, &cfg).await?.unwrap_or_default();
                    Ok(CallResult {
                        value: Some(pp::GenerationId { id }.to_any()),
                        ..CallResult::default()
                    })
                })
            },
        );
        self
    }

    /// The component implements [`Documented`].
    pub fn documented(&mut self) -> &mut Self
    where
        C: Documented,
    {
        self.add(Capability::Documented);
        self.spec.info.docs = Some(C::docs());
        self
    }
}

fn finish<C: Component>(mut spec: ComponentSpec, c: Arc<C>) -> ComponentSpec {
    C::capabilities(&mut Capabilities {
        spec: &mut spec,
        component: c,
    });
    spec
}

impl ComponentSpec {
    /// Erases a [`Builder`].
    pub fn builder<C: Builder>(name: &str, c: C) -> Self {
        let c = Arc::new(c);
        let mut s = Self::new::<C>(ComponentKind::Builder, name, Vec::new());
        s.insert(&c, Function::Build, |c, cfg, ctx, _, _| {
            Box::pin(async move { Ok(c.build(&ctx, &cfg).await?.into()) })
        });
        finish(s, c)
    }

    /// Erases a [`Registry`].
    pub fn registry<C: Registry>(name: &str, c: C) -> Self {
        let c = Arc::new(c);
        let mut s = Self::new::<C>(
            ComponentKind::Registry,
            name,
            vec![C::Input::TYPE_NAME.into()],
        );
        s.insert(&c, Function::Push, |c, cfg, ctx, mut a, l| {
            Box::pin(async move {
                let input = a.take::<C::Input>(&l, Function::Push)?;
                Ok(c.push(&ctx, &cfg, input).await?.into())
            })
        });
        finish(s, c)
    }

    /// Erases a [`Platform`].
    pub fn platform<C: Platform>(name: &str, c: C) -> Self {
        let c = Arc::new(c);
        let mut s = Self::new::<C>(
            ComponentKind::Platform,
            name,
            vec![C::Input::TYPE_NAME.into()],
        );
        s.info.default_release_manager = c.default_release_manager().map(str::to_owned);
        s.insert(&c, Function::Deploy, |c, cfg, ctx, mut a, l| {
            Box::pin(async move {
                let input = a.take::<C::Input>(&l, Function::Deploy)?;
                Ok(c.deploy(&ctx, &cfg, input).await?.into())
            })
        });
        finish(s, c)
    }

    /// Erases a [`ReleaseManager`].
    pub fn release_manager<C: ReleaseManager>(name: &str, c: C) -> Self {
        let c = Arc::new(c);
        let mut s = Self::new::<C>(
            ComponentKind::ReleaseManager,
            name,
            vec![C::Input::TYPE_NAME.into()],
        );
        s.insert(&c, Function::Release, |c, cfg, ctx, mut a, l| {
            Box::pin(async move {
                let input = a.take::<C::Input>(&l, Function::Release)?;
                Ok(c.release(&ctx, &cfg, input).await?.into())
            })
        });
        finish(s, c)
    }

    /// Erases a [`ConfigSourcer`].
    pub fn config_sourcer<C: ConfigSourcer>(name: &str, c: C) -> Self {
        let c = Arc::new(c);
        let mut s = Self::new::<C>(
            ComponentKind::ConfigSourcer,
            name,
            vec![pp::ConfigRequests::TYPE_NAME.into()],
        );
        s.insert(&c, Function::ReadConfig, |c, cfg, ctx, mut a, l| {
            Box::pin(async move {
                let input = a.take::<pp::ConfigRequests>(&l, Function::ReadConfig)?;
                Ok(c.read(&ctx, &cfg, input).await?.into())
            })
        });
        finish(s, c)
    }
}

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
