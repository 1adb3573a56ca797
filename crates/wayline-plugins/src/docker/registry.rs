//! The `docker` registry: tags the image as `image:tag` and pushes it (or only tags it, with
//! `local = true`).

use async_trait::async_trait;
use wayline_plugin::{
    Capabilities, Component, ConfigErrors, Ctx, Destroyer, Docs, Documented, FieldDoc, Outcome,
    PluginError, Registry, Style,
};
use wayline_proto::v1::DeclaredResource;

use super::config::RegistryConfig;
use super::engine;
use super::values::Image;
use super::{auth_fields, destroy_image_tags, entrypoint, errors, fail, image_resource, out_fn};

/// The `docker` registry.
#[derive(Debug, Default, Clone, Copy)]
pub struct DockerRegistry;

impl Component for DockerRegistry {
    type Config = RegistryConfig;
    type Output = Image;

    fn validate(config: &RegistryConfig) -> Result<(), ConfigErrors> {
        errors(config.validate())
    }

    fn capabilities(caps: &mut Capabilities<'_, Self>) {
        caps.destroyer().documented();
    }
}

#[async_trait]
impl Registry for DockerRegistry {
    type Input = Image;

    async fn push(
        &self,
        ctx: &Ctx,
        config: &RegistryConfig,
        artifact: Image,
    ) -> Result<Outcome<Image>, PluginError> {
        let target = format!("{}:{}", config.image, config.tag);
        let credentials = engine::credentials(
            config.encoded_auth.as_deref(),
            config.auth.as_ref(),
            config.username.as_deref(),
            config.password.as_deref(),
        )
        .map_err(fail)?;
        let docker = engine::connect(None).await.map_err(fail)?;
        let source = if artifact.id.is_empty() {
            artifact.reference()
        } else {
            artifact.id.clone()
        };
        // An image the builder left for the local platform keeps that for a local tag; a push
        // takes it where the platform can't mount the binary, so it gets the entrypoint first.
        let deferred = artifact.entrypoint_deferred && config.local;
        let source = if deferred {
            source
        } else {
            entrypoint::injected(ctx, &docker, &artifact, source, &target).await?
        };
        let created = target != artifact.reference();
        if created {
            engine::tag_image(&docker, &source, &target)
                .await
                .map_err(fail)?;
        }
        let mut created_tags = if created {
            vec![target.clone()]
        } else {
            Vec::new()
        };
        if config.local {
            ctx.ui.output(
                format!("Tagged {target} (local, not pushed)"),
                Style::Success,
            );
        } else {
            ctx.ui.output(format!("Pushing {target}"), Style::Header);
            let out = out_fn(&ctx.ui);
            if let Err(e) = engine::push(&docker, &target, credentials, &out).await {
                // A failed push leaves nothing behind.
                if created {
                    let _ = engine::remove_tag(&docker, &target, None).await;
                    created_tags.clear();
                }
                return Err(fail(e));
            }
            ctx.ui.output(format!("Pushed {target}"), Style::Success);
        }
        let id = engine::local_image(&docker, &target)
            .await
            .map_err(fail)?
            .unwrap_or(artifact.id);
        let digest = if config.local {
            String::new()
        } else {
            pushed_digest(&docker, &target, &config.image).await
        };
        if !digest.is_empty() {
            ctx.ui.output(format!("Digest {digest}"), Style::Plain);
        }
        let resources: Vec<DeclaredResource> = created_tags
            .iter()
            .map(|t| image_resource(t, &id))
            .collect();
        let image = Image {
            image: config.image.clone(),
            tag: config.tag.clone(),
            id,
            local: config.local,
            created_tags,
            digest,
            entrypoint_deferred: deferred,
        };
        let data =
            serde_json::json!({ "image": image.image, "tag": image.tag, "digest": image.digest });
        Ok(Outcome::new(image).template_data(data).resources(resources))
    }
}

/// The registry's digest of the image just pushed as `target`: the engine records it among the
/// image's `RepoDigests` as `repo@sha256:…`.
async fn pushed_digest(docker: &bollard::Docker, target: &str, repo: &str) -> String {
    let Ok(inspect) = docker.inspect_image(target).await else {
        return String::new();
    };
    inspect
        .repo_digests
        .unwrap_or_default()
        .iter()
        .find_map(|d| {
            d.strip_prefix(repo)
                .and_then(|r| r.strip_prefix('@'))
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

#[async_trait]
impl Destroyer for DockerRegistry {
    /// Removes the local tag made for the push; what the remote registry holds stays there.
    async fn destroy(
        &self,
        ctx: &Ctx,
        _config: &RegistryConfig,
        value: Image,
        resources: Vec<DeclaredResource>,
    ) -> Result<Vec<DeclaredResource>, PluginError> {
        destroy_image_tags(&ctx.ui, &value, resources).await
    }
}

impl Documented for DockerRegistry {
    fn docs() -> Docs {
        Docs {
            description: "Tags the image as `image:tag` and pushes it to its registry with the given \
                credentials; `local = true` only tags it in the local engine."
                .into(),
            example: "registry {\n  use \"docker\" {\n    image = \"registry.example.com/web\"\n    tag   = \"1\"\n  }\n}".into(),
            fields: vec![
                FieldDoc::new("image", "string", "Image name to push as.").required(),
                FieldDoc::new("tag", "string", "Tag to push as.").required(),
                FieldDoc::new("local", "bool", "Only tag locally; do not push.").default_value("false"),
                FieldDoc::new("insecure", "bool", "Accepted for compatibility; the engine's `insecure-registries` decides.")
                    .default_value("false"),
                FieldDoc::new("username", "string", "Registry user name."),
                FieldDoc::new("password", "string", "Registry password."),
                FieldDoc::new("encoded_auth", "string", "Base64 JSON auth config (`X-Registry-Auth`)."),
                FieldDoc::block("auth", "Registry credentials.", auth_fields()),
            ],
            template_fields: vec![("image".into(), "the pushed image".into()), ("tag".into(), "the pushed tag".into())],
        }
    }
}
