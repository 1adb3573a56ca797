//! One component, erased: [`ComponentSpec`] turns a typed component into its info, a config
//! decoder and one callable per function.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::future::BoxFuture;
use wayline_proto::plugin::v1 as pp;

use super::call::{CallArgs, CallResult, ConfigBox, Dispatch};
use super::capabilities::Capabilities;
use super::info::ComponentInfo;
use crate::component::{
    Builder, Component, ComponentKind, ConfigSourcer, Function, Platform, Registry, ReleaseManager,
};
use crate::config::decode_config;
use crate::{ConfigErrors, Ctx, PluginError, Value};

type DecodeFn = Arc<dyn Fn(&serde_json::Value) -> Result<ConfigBox, ConfigErrors> + Send + Sync>;

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

    pub(super) fn insert<C: Component, F>(&mut self, c: &Arc<C>, function: Function, f: F)
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
