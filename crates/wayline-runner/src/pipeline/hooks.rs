//! Hooks (`hook { when = "before" … }`) around a stage, with `on_failure`, and the pipeline's
//! `exec` step.

use wayline_config::{EvaluatedUse, HookWhen, OnFailure};

use super::{Run, StepError, StepResult};

impl Run<'_> {
    pub(super) async fn run_hooks(&self, used: &EvaluatedUse, when: HookWhen) -> StepResult<()> {
        for hook in used.hooks.iter().filter(|h| h.when == when) {
            let Some((prog, args)) = hook.command.split_first() else {
                continue;
            };
            self.ctx.events.line(
                format!(
                    "Running {} hook: {}",
                    if when == HookWhen::Before {
                        "before"
                    } else {
                        "after"
                    },
                    hook.command.join(" ")
                ),
                "",
            );
            // kill_on_drop: a cancelled job must not leave its hook running.
            let run = tokio::process::Command::new(prog)
                .args(args)
                .current_dir(&self.source_path)
                .kill_on_drop(true)
                .output();
            let out = tokio::select! {
                out = run => out,
                () = self.ctx.cancel.cancelled() => return Err(StepError("cancelled".into())),
            };
            let failure = match out {
                Ok(o) => {
                    for line in String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .chain(String::from_utf8_lossy(&o.stderr).lines())
                    {
                        self.ctx.events.line(line.to_owned(), "");
                    }
                    (!o.status.success()).then(|| {
                        format!("hook `{}` exited with {}", hook.command.join(" "), o.status)
                    })
                }
                Err(e) => Some(format!(
                    "hook `{}` could not start: {e}",
                    hook.command.join(" ")
                )),
            };
            if let Some(msg) = failure {
                if hook.on_failure == OnFailure::Continue {
                    self.ctx
                        .events
                        .line(format!("{msg} (continuing)"), "warning");
                } else {
                    return Err(StepError(msg));
                }
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- pipeline exec steps

    /// Runs a pipeline's `exec` step: the command in the source directory, its output streamed
    /// line by line, failing the job with its exit status.
    pub(crate) async fn exec_step(&self, command: &[String]) -> StepResult<()> {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let Some((prog, args)) = command.split_first() else {
            return Err(StepError(
                "an `exec` step needs a non-empty `command`".into(),
            ));
        };
        self.ctx
            .events
            .header(format!("Running `{}`...", command.join(" ")));
        let app = self.app_ref();
        let mut child = tokio::process::Command::new(prog)
            .args(args)
            .current_dir(&self.source_path)
            .env("WAYLINE_PROJECT", &app.project)
            .env("WAYLINE_APP", &app.application)
            .env("WAYLINE_WORKSPACE", self.workspace())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| StepError(format!("`{prog}` could not start: {e}")))?;
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut err = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let (mut out_open, mut err_open) = (true, true);
        while out_open || err_open {
            tokio::select! {
                l = out.next_line(), if out_open => match l {
                    Ok(Some(line)) => self.ctx.events.line(line, ""),
                    _ => out_open = false,
                },
                l = err.next_line(), if err_open => match l {
                    Ok(Some(line)) => self.ctx.events.line(line, ""),
                    _ => err_open = false,
                },
                () = self.ctx.cancel.cancelled() => return Err(StepError("cancelled".into())),
            }
        }
        let status = tokio::select! {
            s = child.wait() => s.map_err(|e| StepError(format!("waiting for `{prog}` failed: {e}")))?,
            () = self.ctx.cancel.cancelled() => return Err(StepError("cancelled".into())),
        };
        if !status.success() {
            return Err(StepError(format!("`{}` {status}", command.join(" "))));
        }
        self.ctx
            .events
            .status("ok", format!("`{}` succeeded", command.join(" ")));
        Ok(())
    }
}
