//! `wayline-plugin-hello`: an external Wayline plugin, written with nothing but trait impls and
//! `main`.
//!
//! - Platform `hello`: writes `<message> from <app> v<sequence>` into the file named by `path`
//!   (relative to the app's source directory); destroy removes it; status checks it exists.
//! - Mapper `null-to-greeting`: `wayline.null.Value` (what the built-in `null` builder makes) →
//!   `wayline.hello.Greeting`, so `build { use "null" }` + `deploy { use "hello" }` just works.
//!
//! Put the binary in `<project>/.wayline/plugins/`, `~/.config/wayline/plugins/` or PATH.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;
use wayline_plugin::{
    Capabilities, Component, ConfigErrors, Ctx, DeclaredResource, Destroyer, Docs, Documented,
    FieldDoc, Health, Mapper, Outcome, Platform, PluginBuilder, PluginError, Status, StatusReport,
    Style, Value, async_trait,
};

/// The built-in `null` plugin's value (same fields and type name, so it decodes here).
#[derive(Clone, PartialEq, Eq, prost::Message)]
struct NullValue {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(map = "string, string", tag = "2")]
    labels: HashMap<String, String>,
}

impl Value for NullValue {
    const TYPE_NAME: &'static str = "wayline.null.Value";
}

/// What the `hello` platform deploys.
#[derive(Clone, PartialEq, Eq, prost::Message)]
struct Greeting {
    /// Where it came from.
    #[prost(string, tag = "1")]
    source: String,
}

impl Value for Greeting {
    const TYPE_NAME: &'static str = "wayline.hello.Greeting";
}

/// A written file.
#[derive(Clone, PartialEq, Eq, prost::Message)]
struct Written {
    /// Absolute path of the file.
    #[prost(string, tag = "1")]
    path: String,
}

impl Value for Written {
    const TYPE_NAME: &'static str = "wayline.hello.Written";
}

/// `deploy { use "hello" { … } }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HelloConfig {
    /// The file to write, relative to the source directory.
    path: String,
    /// The greeting.
    #[serde(default = "default_message")]
    message: String,
    /// For tests: the plugin process exits in the middle of the deploy.
    #[serde(default)]
    crash: bool,
    /// Wait this long (with the file holding `pending`) before writing; a cancelled job removes
    /// the file, showing how a component cleans up when `ctx.cancel` fires.
    #[serde(default)]
    delay_ms: u64,
}

fn default_message() -> String {
    "hello".into()
}

struct Hello;

impl Component for Hello {
    type Config = HelloConfig;
    type Output = Written;

    fn validate(c: &HelloConfig) -> Result<(), ConfigErrors> {
        if c.path.is_empty() {
            return Err(ConfigErrors::one("path", "must not be empty"));
        }
        Ok(())
    }

    fn capabilities(caps: &mut Capabilities<'_, Self>) {
        caps.destroyer().status().documented();
    }
}

#[async_trait]
impl Platform for Hello {
    type Input = Greeting;

    async fn deploy(
        &self,
        ctx: &Ctx,
        cfg: &HelloConfig,
        g: Greeting,
    ) -> Result<Outcome<Written>, PluginError> {
        // stderr reaches the job output through the host.
        eprintln!("hello: deploying greeting from {}", g.source);
        if cfg.crash {
            eprintln!("hello: crashing on purpose");
            std::process::exit(3);
        }
        let path: PathBuf = ctx.core.source_path.join(&cfg.path);
        if cfg.delay_ms > 0 {
            std::fs::write(&path, "pending\n")
                .map_err(|e| PluginError::io(format!("cannot write `{}`", path.display()), e))?;
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_millis(cfg.delay_ms)) => {}
                () = ctx.cancel.cancelled() => {
                    let _ = std::fs::remove_file(&path);
                    eprintln!("hello: cancelled, removed {}", path.display());
                    return Err(PluginError::Cancelled);
                }
            }
        }
        let text = format!(
            "{} from {} v{}\n",
            cfg.message, ctx.core.job.app, ctx.core.job.sequence
        );
        std::fs::write(&path, text)
            .map_err(|e| PluginError::io(format!("cannot write `{}`", path.display()), e))?;
        ctx.ui
            .output(format!("Wrote `{}`", path.display()), Style::Success);
        let w = Written {
            path: path.to_string_lossy().into_owned(),
        };
        Ok(Outcome::new(w.clone())
            .template_data(wayline_plugin::serde_json::json!({ "path": w.path })))
    }
}

#[async_trait]
impl Destroyer for Hello {
    async fn destroy(
        &self,
        ctx: &Ctx,
        _: &HelloConfig,
        w: Written,
        resources: Vec<DeclaredResource>,
    ) -> Result<Vec<DeclaredResource>, PluginError> {
        match std::fs::remove_file(&w.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(PluginError::io(format!("cannot remove `{}`", w.path), e));
            }
            _ => {}
        }
        ctx.ui
            .output(format!("Removed `{}`", w.path), Style::Success);
        Ok(resources)
    }
}

#[async_trait]
impl Status for Hello {
    async fn status(
        &self,
        _: &Ctx,
        _: &HelloConfig,
        w: Written,
        resources: Vec<DeclaredResource>,
    ) -> Result<StatusReport, PluginError> {
        let (health, message) = if std::path::Path::new(&w.path).exists() {
            (Health::Ready, format!("`{}` exists", w.path))
        } else {
            (Health::Missing, format!("`{}` is missing", w.path))
        };
        Ok(StatusReport {
            health,
            message,
            resources,
        })
    }
}

impl Documented for Hello {
    fn docs() -> Docs {
        Docs {
            description: "Writes a greeting into a file.".into(),
            example: "deploy {\n  use \"hello\" {\n    path = \"greeting.txt\"\n  }\n}".into(),
            fields: vec![
                FieldDoc::new(
                    "path",
                    "string",
                    "File to write, relative to the source directory.",
                )
                .required(),
                FieldDoc::new("message", "string", "The greeting.").default_value("hello"),
                FieldDoc::new("crash", "bool", "For tests: exit the plugin mid-deploy.")
                    .default_value("false"),
                FieldDoc::new(
                    "delay_ms",
                    "number",
                    "Wait before writing; cancelling removes the file.",
                )
                .default_value("0"),
            ],
            template_fields: vec![("path".into(), "Absolute path of the file.".into())],
        }
    }
}

fn main() -> std::process::ExitCode {
    wayline_plugin::serve(
        PluginBuilder::new("hello")
            .platform(Hello)
            .mapper(Mapper::new("null-to-greeting", |v: NullValue| {
                Ok(Greeting { source: v.id })
            })),
    )
}
