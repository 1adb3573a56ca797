//! Mapper insertion: when a component does not accept the previous step's output type, the
//! shortest chain of registered mappers between them is found and run.

use prost_types::Any;
use wayline_plugin::ComponentHandle;

use super::{Run, StepError, StepResult};

impl Run<'_> {
    /// Maps `value` to a type `handle` accepts, inserting the shortest mapper chain.
    pub(super) async fn adapt(&self, handle: &dyn ComponentHandle, value: Any) -> StepResult<Any> {
        let accepts = handle.accepts();
        let have = wayline_plugin::type_name(&value).to_owned();
        if accepts.is_empty() || accepts.iter().any(|a| a == &have || a == "*") {
            return Ok(value);
        }
        let mut best: Option<wayline_plugin::Chain> = None;
        let mut last_err = None;
        for want in accepts {
            match self.host.find_chain(&have, want) {
                Ok(chain) => {
                    if best.as_ref().is_none_or(|b| chain.len() < b.len()) {
                        best = Some(chain);
                    }
                }
                Err(e) => last_err = Some(e),
            }
        }
        match best {
            Some(chain) => {
                self.ctx.events.line(
                    format!("Mapping {have} with {}", chain.names().join(" → ")),
                    "",
                );
                self.host
                    .map(&chain, value)
                    .await
                    .map_err(|e| StepError(format!("mapper failed: {e}")))
            }
            None => Err(StepError(match last_err {
                Some(e) => format!(
                    "{} `{}` cannot take the previous step's output: {e}",
                    handle.kind(),
                    handle.name()
                ),
                None => format!("{} `{}` accepts no types", handle.kind(), handle.name()),
            })),
        }
    }
}
