//! The `files` plugin: a builder whose artifact is a path, and a registry that copies that path
//! into a directory.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::Deserialize;
use wayline_plugin::{
    Builder, BuiltinRegistry, Capabilities, Component, ConfigErrors, Ctx, DeclaredResource,
    Destroyer, Docs, Documented, FieldDoc, Outcome, PluginError, Registry, ResourceKind,
    ResourceManager, Value,
};

/// A path on the runner's filesystem (a file or a directory).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Files {
    /// Absolute path.
    #[prost(string, tag = "1")]
    pub path: String,
}

impl Value for Files {
    const TYPE_NAME: &'static str = "wayline.files.Files";
}

fn template(f: &Files) -> serde_json::Value {
    serde_json::json!({ "path": f.path })
}

/// `build { use "files" { path = "…" } }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesBuilderConfig {
    /// The path, relative to the app's source directory; default: the source directory itself.
    #[serde(default)]
    pub path: Option<String>,
}

/// The `files` builder.
#[derive(Debug, Clone, Copy)]
pub struct FilesBuilder;

impl Component for FilesBuilder {
    type Config = FilesBuilderConfig;
    type Output = Files;

    fn validate(c: &FilesBuilderConfig) -> Result<(), ConfigErrors> {
        match &c.path {
            Some(p) if p.trim().is_empty() => Err(ConfigErrors::one("path", "must not be empty")),
            _ => Ok(()),
        }
    }

    fn capabilities(caps: &mut Capabilities<'_, Self>) {
        caps.documented();
    }
}

#[async_trait]
impl Builder for FilesBuilder {
    async fn build(
        &self,
        ctx: &Ctx,
        cfg: &FilesBuilderConfig,
    ) -> Result<Outcome<Files>, PluginError> {
        let path = match &cfg.path {
            Some(p) => ctx.core.source_path.join(p),
            None => ctx.core.source_path.clone(),
        };
        if !path.exists() {
            return Err(PluginError::msg(format!(
                "`{}` does not exist",
                path.display()
            )));
        }
        let files = Files {
            path: path.to_string_lossy().into_owned(),
        };
        Ok(Outcome::new(files.clone()).template_data(template(&files)))
    }
}

impl Documented for FilesBuilder {
    fn docs() -> Docs {
        Docs {
            description: "Uses a path (file or directory) as the artifact, unchanged.".into(),
            example: "build {\n  use \"files\" {\n    path = \"dist\"\n  }\n}".into(),
            fields: vec![
                FieldDoc::new(
                    "path",
                    "string",
                    "Path relative to the app's source directory.",
                )
                .default_value("the source directory"),
            ],
            template_fields: vec![("path".into(), "Absolute path of the artifact.".into())],
        }
    }
}

/// `registry { use "files" { path = "…" } }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesRegistryConfig {
    /// Directory to copy the artifact into (created if missing).
    pub path: String,
}

/// The `files` registry.
#[derive(Debug, Clone, Copy)]
pub struct FilesRegistry;

impl Component for FilesRegistry {
    type Config = FilesRegistryConfig;
    type Output = Files;

    fn validate(c: &FilesRegistryConfig) -> Result<(), ConfigErrors> {
        if c.path.trim().is_empty() {
            return Err(ConfigErrors::one("path", "must not be empty"));
        }
        Ok(())
    }

    fn capabilities(caps: &mut Capabilities<'_, Self>) {
        caps.destroyer().documented();
    }
}

/// A copied file or directory.
struct CopiedPath;

#[async_trait]
impl ResourceKind for CopiedPath {
    fn type_name(&self) -> &'static str {
        "path"
    }

    async fn destroy(
        &self,
        _: &Ctx,
        _: &str,
        state: &serde_json::Value,
    ) -> Result<(), PluginError> {
        let Some(p) = state["path"].as_str() else {
            return Ok(());
        };
        remove_path(Path::new(p)).await
    }
}

/// Removes a file or directory; already gone is fine.
pub(crate) async fn remove_path(p: &Path) -> Result<(), PluginError> {
    let r = match tokio::fs::symlink_metadata(p).await {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => tokio::fs::remove_dir_all(p).await,
        Ok(_) => tokio::fs::remove_file(p).await,
    };
    r.map_err(|e| PluginError::io(format!("cannot remove `{}`", p.display()), e))
}

fn resources() -> ResourceManager {
    ResourceManager::new("files").kind(CopiedPath)
}

/// Copies a file or a directory tree.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let m = fs_err::metadata(from)?;
    if m.is_dir() {
        fs_err::create_dir_all(to)?;
        for e in fs_err::read_dir(from)? {
            let e = e?;
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        }
    } else {
        fs_err::copy(from, to)?;
    }
    Ok(())
}

#[async_trait]
impl Registry for FilesRegistry {
    type Input = Files;

    async fn push(
        &self,
        ctx: &Ctx,
        cfg: &FilesRegistryConfig,
        input: Files,
    ) -> Result<Outcome<Files>, PluginError> {
        let from = PathBuf::from(&input.path);
        let name = from
            .file_name()
            .ok_or_else(|| PluginError::msg(format!("`{}` has no file name", input.path)))?;
        let dir = ctx.core.source_path.join(&cfg.path);
        let to = dir.join(name);
        let mut rm = resources();
        let state = serde_json::json!({ "path": to });
        rm.create(ctx, &to.to_string_lossy(), "path", async {
            let (from, to, dir) = (from.clone(), to.clone(), dir.clone());
            tokio::task::spawn_blocking(move || {
                fs_err::create_dir_all(&dir)?;
                copy_tree(&from, &to)
            })
            .await
            .map_err(|e| PluginError::msg(format!("copy task failed: {e}")))?
            .map_err(|e| PluginError::io("copy failed", e))?;
            Ok(state)
        })
        .await?;
        ctx.ui.output(
            format!("Copied `{}` to `{}`", from.display(), to.display()),
            wayline_plugin::Style::Success,
        );
        let files = Files {
            path: to.to_string_lossy().into_owned(),
        };
        Ok(Outcome::new(files.clone())
            .template_data(template(&files))
            .resources(rm.into_declared()))
    }
}

#[async_trait]
impl Destroyer for FilesRegistry {
    async fn destroy(
        &self,
        ctx: &Ctx,
        _: &FilesRegistryConfig,
        _: Files,
        stored: Vec<DeclaredResource>,
    ) -> Result<Vec<DeclaredResource>, PluginError> {
        resources().destroy_all(ctx, stored).await
    }
}

impl Documented for FilesRegistry {
    fn docs() -> Docs {
        Docs {
            description: "Copies the artifact (a file or directory) into a directory.".into(),
            example: "registry {\n  use \"files\" {\n    path = \"/srv/releases\"\n  }\n}".into(),
            fields: vec![
                FieldDoc::new(
                    "path",
                    "string",
                    "Destination directory, relative to the source directory.",
                )
                .required(),
            ],
            template_fields: vec![("path".into(), "Absolute path of the copy.".into())],
        }
    }
}

/// Registers the `files` builder and registry.
pub fn register(r: &mut BuiltinRegistry) {
    r.builder("files", FilesBuilder)
        .registry("files", FilesRegistry);
}
