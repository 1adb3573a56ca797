//! The image builders: `docker` (a Dockerfile), `docker-ref` (an existing image as it is) and
//! `docker-pull` (an existing image, re-tagged with the entrypoint injected). Both inject the
//! entrypoint unless [`entrypoint::deferred`] leaves it to the `docker` platform's mount.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use async_trait::async_trait;
use hyper::body::Bytes;
use wayline_plugin::{
    Builder, Capabilities, Component, ConfigErrors, CoreValues, Ctx, Destroyer, Docs, Documented,
    FieldDoc, Outcome, PluginError, Style,
};
use wayline_proto::v1::DeclaredResource;

use super::config::{BuilderConfig, PullConfig, RefConfig};
use super::engine::buildkit::{self, BuilderKind};
use super::engine::{self, BuildSpec, LABEL_APP, LABEL_BUILDER};
use super::values::Image;
use super::{auth_fields, destroy_image_tags, entrypoint, fail, image_resource, out_fn};

/// The engine's key for Docker Hub credentials.
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// The repository built images get: `wayline.local/<app>` (lowercase, as the engine requires).
pub fn local_repository(app: &str) -> String {
    let name: String = app
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "wayline.local/{}",
        name.trim_matches(|c: char| !c.is_ascii_alphanumeric())
    )
}

/// The tag of one build: `v<sequence>` when the host knows the sequence, else the job id, else
/// `latest`; unique per build so destroying one build never removes another's tag.
pub fn build_tag(core: &CoreValues) -> String {
    if core.job.sequence > 0 {
        format!("v{}", core.job.sequence)
    } else if super::config::valid_tag(&core.job.id) {
        core.job.id.to_ascii_lowercase()
    } else {
        "latest".to_owned()
    }
}

fn template(image: &Image) -> serde_json::Value {
    serde_json::json!({ "image": image.image, "tag": image.tag })
}

fn outcome(image: Image) -> Outcome<Image> {
    let resources = image
        .created_tags
        .iter()
        .map(|t| image_resource(t, &image.id))
        .collect();
    outcome_with(image, resources)
}

fn outcome_with(image: Image, resources: Vec<DeclaredResource>) -> Outcome<Image> {
    Outcome::new(image.clone())
        .template_data(template(&image))
        .resources(resources)
}

/// The `docker` builder.
#[derive(Debug, Default, Clone, Copy)]
pub struct DockerBuilder;

impl Component for DockerBuilder {
    type Config = BuilderConfig;
    type Output = Image;

    fn capabilities(caps: &mut Capabilities<'_, Self>) {
        caps.destroyer().documented();
    }
}

#[async_trait]
impl Builder for DockerBuilder {
    async fn build(
        &self,
        ctx: &Ctx,
        config: &BuilderConfig,
    ) -> Result<Outcome<Image>, PluginError> {
        let source = &ctx.core.source_path;
        let context_dir = config
            .context
            .as_ref()
            .map_or_else(|| source.clone(), |c| source.join(c));
        let dockerfile: PathBuf = config
            .dockerfile
            .as_ref()
            .map_or_else(|| context_dir.join("Dockerfile"), |d| source.join(d));
        let context = {
            let (dir, file) = (context_dir.clone(), dockerfile.clone());
            tokio::task::spawn_blocking(move || super::context::tar_context(&dir, &file))
                .await
                .map_err(|e| PluginError::msg(format!("reading the build context: {e}")))?
                .map_err(|e| fail(e.into()))?
        };
        let deferred = !config.disable_entrypoint && entrypoint::deferred(ctx, None).await;
        let entrypoint = if config.disable_entrypoint || deferred {
            None
        } else {
            Some(engine::entrypoint_binary().map_err(fail)?)
        };
        let docker = engine::connect(None).await.map_err(fail)?;
        let choice = choose_builder(ctx, &docker, config).await.map_err(fail)?;
        let repo = local_repository(&ctx.core.job.app);
        let reference = format!("{repo}:{}", build_tag(&ctx.core));
        ctx.ui.output(
            format!(
                "Building image from {} ({} files in the context)",
                dockerfile.display(),
                context.entries
            ),
            Style::Header,
        );
        let mut labels = BTreeMap::from([(LABEL_APP.to_owned(), ctx.core.job.app.clone())]);
        let spec = build_spec(
            config,
            context.dockerfile,
            &reference,
            &labels,
            entrypoint.is_some(),
        )
        .map_err(fail)?;
        let out = out_fn(&ctx.ui);
        let (mut id, kind) = run_build(ctx, &docker, choice.kind, context.tar.into(), spec)
            .await
            .map_err(fail)?;
        labels.insert(LABEL_BUILDER.to_owned(), kind.as_str().to_owned());
        if let Some(binary) = entrypoint {
            id = engine::inject_entrypoint(&docker, &id, &reference, &binary, &labels, &out)
                .await
                .map_err(fail)?;
        } else if deferred {
            entrypoint::say_deferred(ctx);
        }
        ctx.ui
            .output(format!("Image built: {reference}"), Style::Success);
        let named = engine::ImageReference::parse(&reference).map_err(fail)?;
        let (image, tag) = (named.repository().to_owned(), named.tag().to_owned());
        let mut outcome = outcome(Image {
            image,
            tag,
            id,
            local: true,
            created_tags: vec![reference],
            entrypoint_deferred: deferred,
            ..Image::default()
        });
        outcome.template_data["builder"] = kind.as_str().into();
        Ok(outcome)
    }
}

/// Chooses the builder (see [`buildkit::choose`]) and says which, first.
async fn choose_builder(
    ctx: &Ctx,
    docker: &bollard::Docker,
    config: &BuilderConfig,
) -> Result<buildkit::Choice, engine::DockerError> {
    let env = std::env::var("DOCKER_BUILDKIT").ok();
    let facts = if config.buildkit == Some(false) {
        // No need to ask the engine.
        buildkit::EngineFacts {
            api: buildkit::choice::MIN_API,
            os: "linux".to_owned(),
        }
    } else {
        buildkit::EngineFacts::of(docker).await?
    };
    let choice = buildkit::choose(config.buildkit, env.as_deref(), &facts);
    if let Some(warning) = &choice.warning {
        ctx.ui.output(warning, Style::Warning);
    }
    ctx.ui.output(&choice.line, Style::Header);
    Ok(choice)
}

/// The engine's build options from the config.
fn build_spec(
    config: &BuilderConfig,
    dockerfile: String,
    reference: &str,
    labels: &BTreeMap<String, String>,
    injecting: bool,
) -> Result<BuildSpec, engine::DockerError> {
    let credentials = engine::credentials(None, config.auth.as_ref(), None, None)?;
    Ok(BuildSpec {
        dockerfile,
        // With injection the user's image stays untagged: it becomes the parent of the tagged
        // one and goes away with it.
        tag: (!injecting).then(|| reference.to_owned()),
        build_args: config.build_args.clone().into_iter().collect(),
        target: config.target.clone(),
        platform: config.platform.clone(),
        no_cache: config.no_cache,
        // Without injection the image gets the labels here; the injection's commit labels the
        // tagged image otherwise (the classic builder applies build labels as one more step, a
        // container committed, about 250 ms; `run_build` adds them for BuildKit, where they are
        // free).
        labels: if injecting {
            HashMap::new()
        } else {
            labels.clone().into_iter().collect()
        },
        credentials: credentials.map(|c| {
            // Keyed by registry; without a named one the credentials are Docker Hub's.
            let host = c
                .serveraddress
                .clone()
                .unwrap_or_else(|| DOCKER_HUB.to_owned());
            HashMap::from([(host, c)])
        }),
    })
}

/// Runs the build with `kind` (BuildKit labels the image with the builder); an engine that refuses
/// BuildKit for lack of it gets one classic build instead, and the user is told. Returns the
/// image id and the builder that made it.
async fn run_build(
    ctx: &Ctx,
    docker: &bollard::Docker,
    kind: BuilderKind,
    tar: Bytes,
    spec: BuildSpec,
) -> Result<(String, BuilderKind), engine::DockerError> {
    let out = out_fn(&ctx.ui);
    if kind == BuilderKind::BuildKit {
        let mut bk = spec.clone();
        bk.labels
            .insert(LABEL_APP.to_owned(), ctx.core.job.app.clone());
        bk.labels.insert(
            LABEL_BUILDER.to_owned(),
            BuilderKind::BuildKit.as_str().to_owned(),
        );
        let endpoint = engine::Endpoint::resolve(None, |k| std::env::var(k).ok());
        let api = docker.client_version().to_string();
        match buildkit::build(&endpoint, &api, tar.clone(), &bk, &out).await {
            Err(engine::DockerError::BuildKitRefused { message, .. }) => {
                ctx.ui.output(
                    format!(
                        "The engine refused the BuildKit build ({message}); building with the classic builder"
                    ),
                    Style::Warning,
                );
            }
            other => return other.map(|id| (id, BuilderKind::BuildKit)),
        }
    }
    // No `wayline.builder` label here: the classic builder applies each label as a step of its
    // own (a committed container); the artifact's `builder` and an injection's labels say it.
    let id = engine::build(docker, tar.to_vec(), spec, &out).await?;
    Ok((id, BuilderKind::Classic))
}

#[async_trait]
impl Destroyer for DockerBuilder {
    async fn destroy(
        &self,
        ctx: &Ctx,
        _config: &BuilderConfig,
        value: Image,
        resources: Vec<DeclaredResource>,
    ) -> Result<Vec<DeclaredResource>, PluginError> {
        destroy_image_tags(&ctx.ui, &value, resources).await
    }
}

impl Documented for DockerBuilder {
    fn docs() -> Docs {
        Docs {
            description: "Builds a Dockerfile through the Docker Engine API (BuildKit when the engine offers it, \
                else the classic builder; the first line says which), honouring \
                `.dockerignore`, and injects `wayline-entrypoint` in front of the image's ENTRYPOINT. \
                The image is tagged `wayline.local/<app>:v<build>`; destroying the build removes the tag."
                .into(),
            example: "build {\n  use \"docker\" {\n    build_args = { VERSION = \"1\" }\n  }\n}".into(),
            fields: vec![
                FieldDoc::new("build_args", "map(string)", "Build-time variables (`ARG`)."),
                FieldDoc::new("buildkit", "bool", "Build with BuildKit (`true`) or the classic builder (`false`). \
                    `true` on an engine without BuildKit warns and uses the classic builder.")
                    .default_value("BuildKit when the engine offers it (API 1.39+, linux) and `DOCKER_BUILDKIT` is not `0`"),
                FieldDoc::new("context", "string", "Build context directory, relative to the app.").default_value("the app directory"),
                FieldDoc::new("disable_entrypoint", "bool", "Do not inject `wayline-entrypoint`.").default_value("false"),
                FieldDoc::new("dockerfile", "string", "Dockerfile path, relative to the app.").default_value("Dockerfile in the context"),
                FieldDoc::new("no_cache", "bool", "Do not use the build cache.").default_value("false"),
                FieldDoc::new("platform", "string", "Target platform, e.g. `linux/amd64`."),
                FieldDoc::new("target", "string", "Build stage to stop at."),
                FieldDoc::block("auth", "Credentials for pulling base images.", auth_fields()),
            ],
            template_fields: vec![
                ("image".into(), "the image repository".into()),
                ("tag".into(), "the image tag".into()),
            ],
        }
    }
}

/// The `docker-ref` builder: an existing image, unchanged.
#[derive(Debug, Default, Clone, Copy)]
pub struct DockerRef;

impl Component for DockerRef {
    type Config = RefConfig;
    type Output = Image;

    fn validate(config: &RefConfig) -> Result<(), ConfigErrors> {
        let mut errs = ConfigErrors::default();
        if config.image.is_empty() {
            errs.push("image", "must not be empty");
        }
        if !super::config::valid_tag(&config.tag) {
            errs.push("tag", format!("`{}` is not a valid tag", config.tag));
        }
        errs.into_result()
    }

    fn capabilities(caps: &mut Capabilities<'_, Self>) {
        caps.documented();
    }
}

#[async_trait]
impl Builder for DockerRef {
    async fn build(&self, ctx: &Ctx, config: &RefConfig) -> Result<Outcome<Image>, PluginError> {
        let reference = format!("{}:{}", config.image, config.tag);
        let docker = engine::connect(None).await.map_err(fail)?;
        let id = engine::local_image(&docker, &reference)
            .await
            .map_err(fail)?;
        ctx.ui
            .output(format!("Using image {reference}"), Style::Plain);
        let local = id.is_some();
        Ok(outcome(Image {
            image: config.image.clone(),
            tag: config.tag.clone(),
            id: id.unwrap_or_default(),
            local,
            created_tags: Vec::new(),
            ..Image::default()
        }))
    }
}

impl Documented for DockerRef {
    fn docs() -> Docs {
        Docs {
            description: "Uses an existing image as the artifact, unchanged (no entrypoint).".into(),
            example: "build {\n  use \"docker-ref\" {\n    image = \"nginx\"\n    tag   = \"1.27\"\n  }\n}".into(),
            fields: vec![
                FieldDoc::new("image", "string", "Image name.").required(),
                FieldDoc::new("tag", "string", "Image tag.").required(),
            ],
            template_fields: vec![("image".into(), "the image".into()), ("tag".into(), "the tag".into())],
        }
    }
}

/// The `docker-pull` builder: an existing image (pulled when the engine lacks it), re-tagged as
/// `wayline.local/<app>:v<build>` with the entrypoint injected.
#[derive(Debug, Default, Clone, Copy)]
pub struct DockerPull;

impl Component for DockerPull {
    type Config = PullConfig;
    type Output = Image;

    fn validate(config: &PullConfig) -> Result<(), ConfigErrors> {
        DockerRef::validate(&RefConfig {
            image: config.image.clone(),
            tag: config.tag.clone(),
        })
    }

    fn capabilities(caps: &mut Capabilities<'_, Self>) {
        caps.destroyer().documented();
    }
}

#[async_trait]
impl Builder for DockerPull {
    async fn build(&self, ctx: &Ctx, config: &PullConfig) -> Result<Outcome<Image>, PluginError> {
        let source = format!("{}:{}", config.image, config.tag);
        let deferred = !config.disable_entrypoint && entrypoint::deferred(ctx, None).await;
        let entrypoint = if config.disable_entrypoint || deferred {
            None
        } else {
            Some(engine::entrypoint_binary().map_err(fail)?)
        };
        let docker = engine::connect(None).await.map_err(fail)?;
        let out = out_fn(&ctx.ui);
        let mut pulled = None;
        if engine::local_image(&docker, &source)
            .await
            .map_err(fail)?
            .is_none()
        {
            ctx.ui.output(format!("Pulling {source}"), Style::Header);
            let credentials = engine::credentials(
                config.encoded_auth.as_deref(),
                config.auth.as_ref(),
                None,
                None,
            )
            .map_err(fail)?;
            engine::pull(&docker, &source, credentials, &out)
                .await
                .map_err(fail)?;
            // Pulled here, so destroying the build removes it again.
            let id = engine::local_image(&docker, &source)
                .await
                .map_err(fail)?
                .unwrap_or_default();
            pulled = Some(id);
        }
        let reference = format!(
            "{}:{}",
            local_repository(&ctx.core.job.app),
            build_tag(&ctx.core)
        );
        let id = match entrypoint {
            Some(binary) => {
                let labels = BTreeMap::from([(LABEL_APP.to_owned(), ctx.core.job.app.clone())]);
                engine::inject_entrypoint(&docker, &source, &reference, &binary, &labels, &out)
                    .await
                    .map_err(fail)?
            }
            None => {
                if deferred {
                    entrypoint::say_deferred(ctx);
                }
                engine::tag_image(&docker, &source, &reference)
                    .await
                    .map_err(fail)?;
                engine::local_image(&docker, &reference)
                    .await
                    .map_err(fail)?
                    .unwrap_or_default()
            }
        };
        ctx.ui
            .output(format!("Image ready: {reference}"), Style::Success);
        let named = engine::ImageReference::parse(&reference).map_err(fail)?;
        let (image, tag) = (named.repository().to_owned(), named.tag().to_owned());
        // The re-tagged image first: the pulled source goes after it, once nothing names it.
        let mut resources = vec![image_resource(&reference, &id)];
        let mut created_tags = vec![reference];
        if let Some(source_id) = pulled {
            resources.push(image_resource(&source, &source_id));
            created_tags.push(source);
        }
        Ok(outcome_with(
            Image {
                image,
                tag,
                id,
                local: true,
                created_tags,
                entrypoint_deferred: deferred,
                ..Image::default()
            },
            resources,
        ))
    }
}

#[async_trait]
impl Destroyer for DockerPull {
    async fn destroy(
        &self,
        ctx: &Ctx,
        _config: &PullConfig,
        value: Image,
        resources: Vec<DeclaredResource>,
    ) -> Result<Vec<DeclaredResource>, PluginError> {
        destroy_image_tags(&ctx.ui, &value, resources).await
    }
}

impl Documented for DockerPull {
    fn docs() -> Docs {
        Docs {
            description: "Uses an existing image (pulled when the engine lacks it), re-tagged as \
                `wayline.local/<app>:v<build>` with `wayline-entrypoint` injected."
                .into(),
            example: "build {\n  use \"docker-pull\" {\n    image = \"nginx\"\n    tag   = \"1.27\"\n  }\n}".into(),
            fields: vec![
                FieldDoc::new("image", "string", "Image name.").required(),
                FieldDoc::new("tag", "string", "Image tag.").required(),
                FieldDoc::new("disable_entrypoint", "bool", "Do not inject `wayline-entrypoint`.").default_value("false"),
                FieldDoc::new("encoded_auth", "string", "Base64 JSON auth config for the pull."),
                FieldDoc::block("auth", "Credentials for the pull.", auth_fields()),
            ],
            template_fields: vec![("image".into(), "the image".into()), ("tag".into(), "the tag".into())],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wayline_plugin::JobInfo;

    #[test]
    fn repository_names_are_engine_safe() {
        assert_eq!(local_repository("web"), "wayline.local/web");
        assert_eq!(local_repository("My App"), "wayline.local/my-app");
        assert_eq!(local_repository("_api_"), "wayline.local/api");
    }

    #[test]
    fn each_build_gets_its_own_tag() {
        let core = |id: &str, sequence| CoreValues {
            job: JobInfo {
                id: id.into(),
                sequence,
                ..JobInfo::default()
            },
            ..CoreValues::default()
        };
        assert_eq!(build_tag(&core("01JOB", 7)), "v7");
        assert_eq!(build_tag(&core("01JOB", 0)), "01job");
        assert_eq!(build_tag(&core("", 0)), "latest");
        assert_eq!(build_tag(&core("bad/id", 0)), "latest");
    }
}
