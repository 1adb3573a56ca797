//! Where a component declares its optional capabilities: each adds the capability to the
//! component's info and the function it implements to its spec.

use std::sync::Arc;

use wayline_proto::plugin::v1 as pp;

use super::call::CallResult;
use super::spec::ComponentSpec;
use crate::Value;
use crate::component::{
    Capability, Component, Destroyer, Documented, Execer, Function, Generation, LogPlatform,
    Status, WorkspaceDestroyer,
};
use crate::value::type_name;

/// Where a component declares its optional capabilities (see [`Component::capabilities`]).
pub struct Capabilities<'a, C: Component> {
    pub(super) spec: &'a mut ComponentSpec,
    pub(super) component: Arc<C>,
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
