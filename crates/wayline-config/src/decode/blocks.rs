//! Decoding `runner`, `plugin`, `config` and label-selector scopes.

use super::*;

impl Decoder<'_> {
    pub(super) fn runner(&mut self, body: &Body, ctx: &str) -> RunnerBlock {
        self.check(
            body,
            ctx,
            &["enabled", "profile"],
            &[("data_source", 1), ("poll", 0)],
        );
        let data_source = self.single(body, "data_source", ctx).map(|b| {
            let kind = Self::label(b);
            let dctx = format!("data_source \"{kind}\"");
            if !b.labels.is_empty() && kind != "git" && kind != "local" {
                self.error_help(
                    block_head_span(b),
                    format!("unknown data source `{kind}`"),
                    did_you_mean(&kind, ["git", "local"]),
                );
            }
            const GIT: &[&str] = &[
                "url",
                "ref",
                "path",
                "username",
                "password",
                "key",
                "key_password",
                "recurse_submodules",
                "ignore_changes_outside_path",
            ];
            self.check(&b.body, &dctx, GIT, &[]);
            let attrs = GIT
                .iter()
                .filter_map(|k| self.expr(&b.body, k).map(|e| ((*k).to_owned(), e)))
                .collect();
            DataSourceBlock { kind, attrs }
        });
        let poll = self.single(body, "poll", ctx).map(|b| {
            self.check(&b.body, "`poll`", &["enabled", "interval"], &[]);
            let interval = self.literal_string(&b.body, "interval", "`poll`");
            if let (Some(i), Some(a)) = (&interval, b.body.get_attribute("interval"))
                && humantime_like(i).is_none()
            {
                self.error(
                    span_of(&a.value),
                    format!(
                        "`interval` must be a duration such as \"30s\" or \"5m\", found \"{i}\""
                    ),
                );
            }
            PollBlock {
                enabled: self.literal_bool(&b.body, "enabled", "`poll`"),
                interval,
            }
        });
        let profile = body.get_attribute("profile").map(|a| match &a.value {
            EditExpr::String(s) => s.as_str().to_owned(),
            // Like `project`: `"odr-${workspace.name}"` is common.
            other => self.scoped_string(other, "profile"),
        });
        RunnerBlock {
            enabled: self.literal_bool(body, "enabled", ctx),
            profile,
            data_source,
            poll,
        }
    }

    pub(super) fn plugin(&mut self, b: &Block) -> PluginDecl {
        let name = Self::label(b);
        let ctx = format!("plugin \"{name}\"");
        self.check(&b.body, &ctx, &["checksum"], &[("type", 0)]);
        let mut types = PluginTypes::default();
        if let Some(t) = self.single(&b.body, "type", &ctx) {
            let kinds = ["mapper", "build", "registry", "deploy", "release"];
            self.check(&t.body, "plugin `type`", &kinds, &[]);
            let get = |d: &mut Self, k: &str| {
                d.literal_bool(&t.body, k, "plugin `type`").unwrap_or(false)
            };
            types = PluginTypes {
                mapper: get(self, "mapper"),
                build: get(self, "build"),
                registry: get(self, "registry"),
                deploy: get(self, "deploy"),
                release: get(self, "release"),
            };
        }
        let checksum = self.literal_string(&b.body, "checksum", &ctx);
        if let (Some(c), Some(a)) = (&checksum, b.body.get_attribute("checksum"))
            && (c.len() != 64 || !c.chars().all(|ch| ch.is_ascii_hexdigit()))
        {
            self.error(
                span_of(&a.value),
                "`checksum` must be a SHA-256 hex digest (64 hex characters)",
            );
        }
        PluginDecl {
            name,
            types,
            checksum,
        }
    }

    pub(super) fn config_block(
        &mut self,
        body: &Body,
        ctx: &str,
        allow_runner: bool,
    ) -> ConfigBlock {
        let mut blocks = vec![("workspace", 1), ("label", 1)];
        if allow_runner {
            blocks.push(("runner", 0));
        }
        self.check(
            body,
            ctx,
            &["env", "internal", "file", "file_change_signal"],
            &blocks,
        );
        for name in ["env", "internal", "file"] {
            if let Some(a) = body.get_attribute(name)
                && !matches!(
                    a.value,
                    EditExpr::Object(_)
                        | EditExpr::FuncCall(_)
                        | EditExpr::Variable(_)
                        | EditExpr::Traversal(_)
                )
            {
                self.error(
                    span_of(&a.value),
                    format!(
                        "`{name}` in {ctx} must be a map, e.g. `{name} = {{ NAME = \"value\" }}`"
                    ),
                );
            }
        }
        let workspaces = body
            .get_blocks("workspace")
            .filter(|b| b.labels.len() == 1)
            .map(|b| {
                let name = Self::label(b);
                (
                    name.clone(),
                    self.config_block(&b.body, &format!("config workspace \"{name}\""), false),
                )
            })
            .collect();
        let labels = body
            .get_blocks("label")
            .filter(|b| b.labels.len() == 1)
            .filter_map(|b| {
                let scope = self.label_scope(b)?;
                let inner = self.config_block(
                    &b.body,
                    &format!("config label \"{}\"", scope.source),
                    false,
                );
                Some((scope, inner))
            })
            .collect();
        let runner = if allow_runner {
            self.single(body, "runner", ctx).map(|b| {
                // `runner {}` has the same shape, with its own workspace/label scopes.
                Box::new(self.config_block(&b.body, "config `runner`", false))
            })
        } else {
            None
        };
        ConfigBlock {
            env: self.expr(body, "env"),
            internal: self.expr(body, "internal"),
            file: self.expr(body, "file"),
            file_change_signal: self.expr(body, "file_change_signal"),
            workspaces,
            labels,
            runner,
        }
    }

    pub(super) fn label_scope(&mut self, b: &Block) -> Option<LabelScope> {
        let source = Self::label(b);
        match wayline_core::selector::parse(&source) {
            Ok(selector) => Some(LabelScope { source, selector }),
            Err(e) => {
                // Point inside the quoted label: +1 for the opening quote.
                let base = span_of(&b.labels[0]).start + 1;
                let offset = source
                    .char_indices()
                    .nth(e.column - 1)
                    .map_or(source.len(), |(i, _)| i);
                let at = base + offset;
                self.error(at..at + 1, format!("invalid label selector: {}", e.message));
                None
            }
        }
    }
}
