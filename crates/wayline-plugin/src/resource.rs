//! The resource manager: create resources in order, roll back in reverse on failure, and record
//! them (with the state needed to destroy them) so `destroy` never leaves anything behind.
//!
//! ```text
//! let mut rm = ResourceManager::new("exec").kind(ProcessKind);
//! let state = rm.create(&ctx, "app", "process", async { Ok(json!({"pid": 42})) }).await?;
//! // …on a later failure: `return Err(rm.rollback(&ctx, err).await);`
//! Ok(Outcome::new(value).resources(rm.into_declared()))
//! // destroy (another job, another process):
//! ResourceManager::new("exec").kind(ProcessKind).destroy_all(&ctx, stored).await
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use wayline_proto::v1::{DeclaredResource, Health};

use crate::{Ctx, PluginError, StatusReport};

/// How to destroy and inspect one type of resource from its recorded state.
#[async_trait]
pub trait ResourceKind: Send + Sync {
    /// The type name stored in `DeclaredResource.type`.
    fn type_name(&self) -> &str;

    /// Destroys the resource. Must succeed when it is already gone.
    async fn destroy(
        &self,
        ctx: &Ctx,
        name: &str,
        state: &serde_json::Value,
    ) -> Result<(), PluginError>;

    /// Its health and a sentence; the default says UNKNOWN.
    async fn status(
        &self,
        _ctx: &Ctx,
        _name: &str,
        _state: &serde_json::Value,
    ) -> Result<(Health, String), PluginError> {
        Ok((Health::Unknown, "no status check".to_owned()))
    }
}

/// Creates, records, destroys and checks a component's resources.
#[derive(Clone)]
pub struct ResourceManager {
    platform: String,
    kinds: BTreeMap<String, Arc<dyn ResourceKind>>,
    created: Vec<DeclaredResource>,
}

impl std::fmt::Debug for ResourceManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceManager")
            .field("platform", &self.platform)
            .field("kinds", &self.kinds.keys().collect::<Vec<_>>())
            .field("created", &self.created)
            .finish()
    }
}

impl ResourceManager {
    /// A manager for resources of plugin `platform`.
    pub fn new(platform: impl Into<String>) -> Self {
        Self {
            platform: platform.into(),
            kinds: BTreeMap::new(),
            created: Vec::new(),
        }
    }

    /// Registers a resource kind (needed to roll back, destroy and check it).
    pub fn kind(mut self, k: impl ResourceKind + 'static) -> Self {
        self.kinds.insert(k.type_name().to_owned(), Arc::new(k));
        self
    }

    /// Runs `create` for resource `name` of type `kind`. On success records its state (JSON),
    /// declares it (see [`Ctx::declare`]) and returns it; on failure destroys everything created
    /// so far, in reverse order, and returns the error (with any rollback failures appended).
    /// Where the state needed to destroy the resource is known before it exists, prefer
    /// [`Self::declare_then_create`].
    pub async fn create<F>(
        &mut self,
        ctx: &Ctx,
        name: &str,
        kind: &str,
        create: F,
    ) -> Result<serde_json::Value, PluginError>
    where
        F: Future<Output = Result<serde_json::Value, PluginError>>,
    {
        self.check_kind(name, kind)?;
        match create.await {
            Ok(state) => {
                self.created.push(self.resource(name, kind, &state));
                if let Err(e) = ctx.declare_resources(&self.created).await {
                    return Err(self.rollback(ctx, e).await);
                }
                Ok(state)
            }
            Err(e) => Err(self.rollback(ctx, e).await),
        }
    }

    /// Like [`Self::create`], but the resource is first declared with `planned`, a state that
    /// destroys it (a name the engine knows it by), and created only once the declaration is
    /// stored: a job that dies while `create` runs leaves a record `destroy` finds it by. The
    /// state `create` returns then replaces `planned`. A failed `create` rolls back the planned
    /// resource too (destroying one that does not exist must succeed).
    pub async fn declare_then_create<F>(
        &mut self,
        ctx: &Ctx,
        name: &str,
        kind: &str,
        planned: serde_json::Value,
        create: F,
    ) -> Result<serde_json::Value, PluginError>
    where
        F: Future<Output = Result<serde_json::Value, PluginError>>,
    {
        self.check_kind(name, kind)?;
        self.created.push(self.resource(name, kind, &planned));
        if let Err(e) = ctx.declare_resources(&self.created).await {
            // Not stored, so not created: nothing of this one to roll back.
            self.created.pop();
            return Err(self.rollback(ctx, e).await);
        }
        match create.await {
            Ok(state) => {
                let last = self.created.last_mut().expect("pushed above");
                if state != planned {
                    last.state_json = state.to_string();
                    if let Err(e) = ctx.declare_resources(&self.created).await {
                        return Err(self.rollback(ctx, e).await);
                    }
                }
                Ok(state)
            }
            Err(e) => Err(self.rollback(ctx, e).await),
        }
    }

    fn check_kind(&self, name: &str, kind: &str) -> Result<(), PluginError> {
        if self.kinds.contains_key(kind) {
            Ok(())
        } else {
            Err(PluginError::msg(format!(
                "resource `{name}`: no resource kind `{kind}` is registered"
            )))
        }
    }

    fn resource(&self, name: &str, kind: &str, state: &serde_json::Value) -> DeclaredResource {
        DeclaredResource {
            name: name.to_owned(),
            r#type: kind.to_owned(),
            platform: self.platform.clone(),
            state_json: state.to_string(),
            health: Health::Unknown as i32,
            health_message: String::new(),
            destroyed: false,
        }
    }

    /// Destroys every resource created so far, newest first, and returns `err` (extended with
    /// any rollback failure, so nothing is silently left behind). The outcome is declared, so
    /// the server's record marks what is gone and keeps what could not be removed.
    pub async fn rollback(&mut self, ctx: &Ctx, err: PluginError) -> PluginError {
        let mut created = std::mem::take(&mut self.created);
        if created.is_empty() {
            return err;
        }
        let failures = self.destroy_each(ctx, &mut created).await;
        let err = if failures.is_empty() {
            err
        } else {
            PluginError::msg(format!(
                "{err}; rolling back also failed: could not destroy {}",
                failures.join("; ")
            ))
        };
        match ctx.declare_resources(&created).await {
            Ok(()) => err,
            Err(e) => PluginError::msg(format!("{err}; {e}")),
        }
    }

    /// The resources created, to store with the value.
    pub fn into_declared(self) -> Vec<DeclaredResource> {
        self.created
    }

    /// The resources created so far.
    pub fn declared(&self) -> &[DeclaredResource] {
        &self.created
    }

    /// Destroys stored resources newest first, skipping those already destroyed. Returns them
    /// all marked `destroyed`; on failure keeps going and then errors naming every resource
    /// that could not be destroyed.
    pub async fn destroy_all(
        &self,
        ctx: &Ctx,
        mut resources: Vec<DeclaredResource>,
    ) -> Result<Vec<DeclaredResource>, PluginError> {
        let failures = self.destroy_each(ctx, &mut resources).await;
        if failures.is_empty() {
            Ok(resources)
        } else {
            Err(PluginError::msg(format!(
                "could not destroy {}",
                failures.join("; ")
            )))
        }
    }

    /// Destroys `resources` newest first, marking each destroyed; returns the failures.
    async fn destroy_each(&self, ctx: &Ctx, resources: &mut [DeclaredResource]) -> Vec<String> {
        let mut failures = Vec::new();
        for r in resources.iter_mut().rev() {
            if r.destroyed {
                continue;
            }
            let Some(k) = self.kinds.get(&r.r#type) else {
                failures.push(format!("{} `{}`: unknown resource kind", r.r#type, r.name));
                continue;
            };
            let state: serde_json::Value = serde_json::from_str(&r.state_json).unwrap_or_default();
            match k.destroy(ctx, &r.name, &state).await {
                Ok(()) => r.destroyed = true,
                Err(e) => failures.push(format!("{} `{}`: {e}", r.r#type, r.name)),
            }
        }
        failures
    }

    /// Checks each stored resource and rolls the health up.
    pub async fn status_all(
        &self,
        ctx: &Ctx,
        mut resources: Vec<DeclaredResource>,
    ) -> StatusReport {
        for r in &mut resources {
            let (h, msg) = if r.destroyed {
                (Health::Missing, "destroyed".to_owned())
            } else {
                match self.kinds.get(&r.r#type) {
                    None => (Health::Unknown, "unknown resource kind".to_owned()),
                    Some(k) => {
                        let state: serde_json::Value =
                            serde_json::from_str(&r.state_json).unwrap_or_default();
                        k.status(ctx, &r.name, &state)
                            .await
                            .unwrap_or_else(|e| (Health::Unknown, e.to_string()))
                    }
                }
            };
            r.health = h as i32;
            r.health_message = msg;
        }
        StatusReport::from_resources(resources)
    }
}

#[cfg(test)]
mod tests;
