//! The handle the runner drives for every component, built-in or external: [`Call`],
//! [`ComponentHandle`], the in-process [`LocalHandle`], and the host's errors.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use prost_types::Any;
use tokio_util::sync::CancellationToken;
use wayline_proto::v1::DeclaredResource;

use crate::component::{Capability, ComponentKind, Function};
use crate::registry::{CallArgs, CallResult, ComponentInfo, ComponentSpec, ConfigBox};
use crate::{ConfigErrors, CoreValues, Ctx, Declare, PluginError, Ui};

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
    /// Where the component declares resources before it creates them (deploys).
    pub declare: Option<Declare>,
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
            declare: None,
        }
    }

    /// Sets where resources are declared before they are created.
    pub fn declare(mut self, declare: Declare) -> Self {
        self.declare = Some(declare);
        self
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
        ctx.declare = call.declare;
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
