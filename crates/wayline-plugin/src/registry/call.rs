//! The erased shape of one call: its arguments, what it returns, and the dispatch function a
//! component spec holds per function.

use std::any::Any as StdAny;
use std::sync::Arc;

use futures::future::BoxFuture;
use prost_types::Any;
use wayline_proto::v1::{DeclaredResource, Health};

use crate::component::{Function, Outcome};
use crate::value::type_name;
use crate::{Ctx, PluginError, Value};

/// A decoded config, type-erased.
pub(crate) type ConfigBox = Arc<dyn StdAny + Send + Sync>;

/// The arguments of one call besides the context.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallArgs {
    pub(crate) inputs: Vec<Any>,
    pub(crate) resources: Vec<DeclaredResource>,
}

impl CallArgs {
    pub(super) fn take<T: Value>(
        &mut self,
        component: &str,
        function: Function,
    ) -> Result<T, PluginError> {
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
