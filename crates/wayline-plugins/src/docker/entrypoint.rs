//! Where `wayline-entrypoint` goes for a docker image. The builders inject it (a layer committed
//! on the parent image), unless the image goes only to `docker` components on this engine:
//! then the builder leaves it out ([`Image::entrypoint_deferred`]) and the `docker` platform
//! bind-mounts the binary into the container, which saves the commit on every build. Whatever
//! takes such an image off this engine (a push, a platform on another engine) injects it first.

use std::collections::BTreeMap;

use bollard::Docker;
use wayline_plugin::{Ctx, PluginError, Style};

use super::config::ClientConfig;
use super::engine::{self, EntrypointMount, LABEL_APP};
use super::values::Image;
use super::{fail, out_fn};

/// Whether a builder leaves the entrypoint to the platform: every consumer of the build is a
/// `docker` component (the registry, which injects it before a push, and the platform) and the
/// engine sees this process's files, so the platform can mount the binary.
pub(crate) async fn deferred(ctx: &Ctx, client: Option<&ClientConfig>) -> bool {
    !ctx.core.consumers.is_empty()
        && ctx.core.consumers.iter().all(|c| c == "docker")
        && engine::shares_files(client).await
}

/// Says in the build's output that the entrypoint was left to the platform.
pub(crate) fn say_deferred(ctx: &Ctx) {
    ctx.ui.output(
        "wayline-entrypoint: mounted into the container by the docker platform (no layer injected)",
        Style::Plain,
    );
}

/// Injects the entrypoint into a deferred image `source` (an id or reference), tagged `tag`;
/// returns the id to use. Other images come back as they are.
pub(crate) async fn injected(
    ctx: &Ctx,
    docker: &Docker,
    image: &Image,
    source: String,
    tag: &str,
) -> Result<String, PluginError> {
    if !image.entrypoint_deferred {
        return Ok(source);
    }
    let binary = engine::entrypoint_binary().map_err(fail)?;
    let labels = BTreeMap::from([(LABEL_APP.to_owned(), ctx.core.job.app.clone())]);
    engine::inject_entrypoint(docker, &source, tag, &binary, &labels, &out_fn(&ctx.ui))
        .await
        .map_err(fail)
}

/// How the platform's container gets the entrypoint of `artifact`, to run as `run_image`: a
/// mount on an engine that shares this process's files, else an injection now (tagged as the
/// artifact's reference), whose image is the one to run. Images that carry it, or were built
/// without it, need neither.
pub(crate) async fn for_container(
    ctx: &Ctx,
    docker: &Docker,
    client: Option<&ClientConfig>,
    artifact: &Image,
    run_image: String,
) -> Result<(String, Option<EntrypointMount>), PluginError> {
    if !artifact.entrypoint_deferred {
        return Ok((run_image, None));
    }
    if engine::shares_files(client).await {
        let mount = engine::entrypoint_mount(docker, &run_image, &ctx.core.data_dir)
            .await
            .map_err(fail)?;
        return Ok((run_image, mount));
    }
    let id = injected(ctx, docker, artifact, run_image, &artifact.reference()).await?;
    Ok((id, None))
}
