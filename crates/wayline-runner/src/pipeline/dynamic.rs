//! `dynamic()` variable defaults, resolved through the config sourcer they name before the
//! operation evaluates anything (Waypoint's `LoadDynamicDefaults`), so `var.subnets[0]` works.

use std::collections::BTreeMap;

use wayline_plugin::{Call, ComponentKind, Function, Value as _};
use wayline_proto::plugin::v1::{ConfigRequest, ConfigRequests, ConfigValues};

use super::{Run, StepError, StepResult};

impl Run<'_> {
    /// Reads each `dynamic()` default from its config sourcer and sets the variable to it.
    pub(crate) async fn resolve_dynamic_defaults(&mut self) -> StepResult<()> {
        for (name, from, config) in self.eval.dynamic_defaults() {
            let what = format!("variable `{name}` (`dynamic(\"{from}\", …)`)");
            let handle = self
                .host
                .component(ComponentKind::ConfigSourcer, &from)
                .await
                .map_err(|e| StepError(format!("{what}: {e}")))?;
            handle
                .configure(serde_json::json!({}))
                .await
                .map_err(|e| StepError(format!("{what}: config sourcer `{from}`: {e}")))?;
            let requests = ConfigRequests {
                requests: vec![ConfigRequest {
                    name: name.clone(),
                    config: config.into_iter().collect(),
                }],
            };
            let call = Call::new(
                Function::ReadConfig,
                self.core(&from, 0, "", BTreeMap::new()),
                self.ui(),
                self.ctx.cancel.clone(),
            )
            .input(requests.to_any());
            let out = handle
                .call(call)
                .await
                .map_err(|e| StepError(format!("{what}: {e}")))?;
            let value = out
                .value
                .as_ref()
                .and_then(|v| ConfigValues::from_any(v).ok())
                .and_then(|v| v.values.into_iter().next())
                .ok_or_else(|| {
                    StepError(format!("{what}: the config sourcer returned no value"))
                })?;
            if !value.error.is_empty() {
                return Err(StepError(format!("{what}: {}", value.error)));
            }
            self.eval
                .resolve_dynamic(&name, &value.value)
                .map_err(|d| StepError(d.to_string()))?;
        }
        Ok(())
    }
}
