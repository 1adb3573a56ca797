//! Decoding `app` blocks and their stages: `build` (with `registry`), `deploy`, `release`,
//! their workspace and label scopes, `use` and `hook`.

use super::*;

impl Decoder<'_> {
    pub(super) fn app(&mut self, b: &Block) -> Option<App> {
        let name = Self::label(b);
        let ctx = format!("app \"{name}\"");
        check_name(self, &name, block_head_span(b), "app name");
        self.check(
            &b.body,
            &ctx,
            &["path", "labels"],
            &[
                ("url", 0),
                ("config", 0),
                ("runner", 0),
                ("build", 0),
                ("deploy", 0),
                ("release", 0),
            ],
        );
        let url = self.single(&b.body, "url", &ctx).map(|u| {
            self.check(
                &u.body,
                "`url`",
                &["auto_hostname", "health_path"],
                &[("limits", 0)],
            );
            UrlBlock {
                auto_hostname: self.literal_bool(&u.body, "auto_hostname", "`url`"),
                health_path: self.health_path(&u.body),
                limits: self.url_limits(&u.body),
            }
        });
        let config = self
            .single(&b.body, "config", &ctx)
            .map(|c| self.config_block(&c.body, &format!("the `config` of app \"{name}\""), true));
        let runner = self
            .single(&b.body, "runner", &ctx)
            .map(|r| self.runner(&r.body, &format!("the `runner` of app \"{name}\"")));
        let build = self.required_stage(b, StageKind::Build, &name);
        let deploy = self.required_stage(b, StageKind::Deploy, &name);
        let release = self
            .single(&b.body, "release", &ctx)
            .map(|r| self.stage(r, StageKind::Release, &name, true));
        Some(App {
            path: self.expr(&b.body, "path"),
            labels: self.expr(&b.body, "labels"),
            url,
            config,
            runner,
            build,
            deploy,
            release,
            name_span: block_head_span(b),
            name,
        })
    }

    /// `health_path`: an absolute path of printable characters, at most 1024 of them.
    fn health_path(&mut self, body: &Body) -> Option<String> {
        let p = self.literal_string(body, "health_path", "`url`")?;
        let ok = p.starts_with('/') && p.len() <= 1024 && p.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            let span = body
                .get_attribute("health_path")
                .map(|a| span_of(&a.value))
                .unwrap_or_default();
            let shown: String = p.chars().take(40).collect();
            self.error(
                span,
                format!("`health_path` must be a path such as \"/up\" (a `/`, no spaces, at most 1024 characters), found {shown:?}"),
            );
            return None;
        }
        Some(p)
    }

    pub(super) fn required_stage(&mut self, app: &Block, kind: StageKind, app_name: &str) -> Stage {
        let key = kind.as_str();
        let missing = |file: &Source| Stage {
            kind,
            use_block: None,
            labels: None,
            hooks: Vec::new(),
            registry: None,
            workspaces: Vec::new(),
            label_scopes: Vec::new(),
            span: block_head_span(app),
            file: file.clone(),
        };
        // A missing stage is reported; the app stays so that the rest of it (its `config`) is
        // still checked.
        match self.single(&app.body, key, &format!("app \"{app_name}\"")) {
            Some(b) => self.stage(b, kind, app_name, true),
            // A misspelt `deplyo {}` was already reported with "did you mean `deploy`?".
            None if app.body.blocks().any(|b| {
                b.ident.as_str() != key && did_you_mean(b.ident.as_str(), [key]).is_some()
            }) =>
            {
                missing(self.file)
            }
            None => {
                self.error_help(
                    block_head_span(app),
                    format!(
                        "app \"{app_name}\" has no `{key}` block; `build` and `deploy` are required"
                    ),
                    Some(format!(
                        "add `{key} {{ use \"<plugin>\" {{}} }}` to the app"
                    )),
                );
                missing(self.file)
            }
        }
    }

    pub(super) fn stage(&mut self, b: &Block, kind: StageKind, app: &str, top: bool) -> Stage {
        let key = kind.as_str();
        let ctx = format!("`{key}` of app \"{app}\"");
        let mut blocks = vec![("use", 1), ("hook", 0)];
        if top {
            blocks.extend([("workspace", 1), ("label", 1)]);
        }
        if kind == StageKind::Build && top {
            blocks.push(("registry", 0));
        }
        self.check(&b.body, &ctx, &["labels"], &blocks);
        let use_block = self
            .single(&b.body, "use", &ctx)
            .filter(|u| u.labels.len() == 1)
            .map(|u| self.use_block(u));
        if top && use_block.is_none() && b.body.get_blocks("use").next().is_none() {
            // Waypoint loads such a file; the operation then says the plugin is missing.
            let d = Diagnostic::at(
                self.file,
                span_of(&b.ident),
                format!("{ctx} has no `use` block; operations that need it will fail"),
            )
            .with_help("say which plugin to use, e.g. `use \"docker\" {}`")
            .warning();
            self.diags.push(d);
        }
        let hooks = b
            .body
            .get_blocks("hook")
            .filter(|h| h.labels.is_empty())
            .filter_map(|h| self.hook(h))
            .collect();
        let registry = if kind == StageKind::Build && top {
            self.single(&b.body, "registry", &ctx)
                .map(|r| Box::new(self.stage(r, StageKind::Registry, app, true)))
        } else {
            None
        };
        let (workspaces, label_scopes) = if top {
            let ws = b
                .body
                .get_blocks("workspace")
                .filter(|w| w.labels.len() == 1)
                .map(|w| (Self::label(w), self.stage(w, kind, app, false)))
                .collect();
            let ls = b
                .body
                .get_blocks("label")
                .filter(|l| l.labels.len() == 1)
                .filter_map(|l| {
                    let scope = self.label_scope(l)?;
                    Some((scope, self.stage(l, kind, app, false)))
                })
                .collect();
            (ws, ls)
        } else {
            (Vec::new(), Vec::new())
        };
        Stage {
            kind,
            use_block,
            labels: self.expr(&b.body, "labels"),
            hooks,
            registry,
            workspaces,
            label_scopes,
            span: span_of(&b.ident),
            file: self.file.clone(),
        }
    }

    pub(super) fn use_block(&self, u: &Block) -> UseBlock {
        UseBlock {
            plugin: Self::label(u),
            body: u.body.clone(),
            span: block_head_span(u),
            file: self.file.clone(),
        }
    }

    pub(super) fn hook(&mut self, h: &Block) -> Option<HookBlock> {
        self.check(&h.body, "`hook`", &["when", "command", "on_failure"], &[]);
        let when = match self.literal_string(&h.body, "when", "`hook`").as_deref() {
            Some("before") => HookWhen::Before,
            Some("after") => HookWhen::After,
            Some(other) => {
                let span = span_of(&h.body.get_attribute("when")?.value);
                self.error(
                    span,
                    format!("`when` must be \"before\" or \"after\", found \"{other}\""),
                );
                return None;
            }
            None => {
                if h.body.get_attribute("when").is_none() {
                    self.error(
                        span_of(&h.ident),
                        "`hook` needs `when = \"before\"` or `when = \"after\"`",
                    );
                }
                return None;
            }
        };
        let on_failure = match self
            .literal_string(&h.body, "on_failure", "`hook`")
            .as_deref()
        {
            None | Some("fail") => OnFailure::Fail,
            Some("continue") => OnFailure::Continue,
            Some(other) => {
                let span = span_of(&h.body.get_attribute("on_failure")?.value);
                self.error(
                    span,
                    format!("`on_failure` must be \"fail\" or \"continue\", found \"{other}\""),
                );
                OnFailure::Fail
            }
        };
        let command = self.expr(&h.body, "command");
        if command.is_none() {
            self.error(
                span_of(&h.ident),
                "`hook` needs `command = [\"program\", \"arg\"]`",
            );
        }
        Some(HookBlock {
            when,
            command,
            on_failure,
        })
    }
}
