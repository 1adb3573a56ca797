//! The built-in `docker`, `docker-ref` and `docker-pull` plugins, over the Docker Engine API.
//!
//! | plugin | component | accepts → returns | capabilities |
//! |---|---|---|---|
//! | `docker` | builder | → `wayline.docker.Image` | destroy (its tag), docs |
//! | `docker` | registry | `wayline.docker.Image` → `wayline.docker.Image` | destroy (the local tag), docs |
//! | `docker` | platform (default release manager `docker`) | `wayline.docker.Image` → `wayline.docker.Deployment` | destroy, status, exec, logs, docs |
//! | `docker` | release manager | `wayline.docker.Deployment` → `wayline.docker.Release` | docs |
//! | `docker-ref` | builder | → `wayline.docker.Image` | docs |
//! | `docker-pull` | builder | → `wayline.docker.Image` | destroy, docs |
//!
//! Every value is the same `Image` from build to push, so no mapper is needed between them; two
//! mappers turn it into Waypoint's `hashicorp.waypoint.builtin.docker.Image` and back
//! (`waypoint`), for Waypoint-protocol plugins before or after a docker stage. The engine is
//! reached like the Docker CLI reaches it (`DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`,
//! or the platform's `client_config`), else the local socket; a `tcp://` engine may use TLS with
//! client certificates. The API version is negotiated, so older engines work. Images are labelled
//! `wayline.app=<app>`; containers and networks carry their owner's server id, project, app,
//! workspace and deployment id, and the platform touches only those whose owner labels match
//! its own (`owner`).

pub mod builder;
pub mod config;
pub mod context;
pub mod deploy;
pub mod engine;
mod entrypoint;
pub mod owner;
pub mod platform;
pub mod registry;
pub mod release;
pub mod runtime;
pub mod values;
pub mod waypoint;

use wayline_plugin::{
    BuiltinRegistry, ConfigError, ConfigErrors, FieldDoc, PluginError, Style, Ui,
};
use wayline_proto::v1::DeclaredResource;

pub use builder::{DockerBuilder, DockerPull, DockerRef};
pub use deploy::DockerPlatform;
pub use engine::DockerError;
pub use registry::DockerRegistry;
pub use release::DockerRelease;
pub use values::{Deployment, Image, Release};

/// Registers `docker` (builder, registry, platform, release manager, and the mappers to and from
/// Waypoint's docker image), `docker-ref` and `docker-pull` (builders).
pub fn register(registry: &mut BuiltinRegistry) {
    for m in waypoint::mappers() {
        registry.mapper("docker", m);
    }
    registry
        .builder("docker", DockerBuilder)
        .registry("docker", DockerRegistry)
        .platform("docker", DockerPlatform)
        .release_manager("docker", DockerRelease)
        .builder("docker-ref", DockerRef)
        .builder("docker-pull", DockerPull);
}

/// A docker error as the SDK's failure, its message unchanged.
pub(crate) fn fail(e: DockerError) -> PluginError {
    match e {
        DockerError::Invalid(list) => {
            errors(list).map_or_else(PluginError::Config, |()| PluginError::msg("invalid config"))
        }
        other => PluginError::msg(other.to_string()),
    }
}

/// Pure validation results as the SDK's config errors.
pub(crate) fn errors(list: Vec<config::Invalid>) -> Result<(), ConfigErrors> {
    ConfigErrors(
        list.into_iter()
            .map(|i| ConfigError::new(i.attribute, i.message))
            .collect(),
    )
    .into_result()
}

/// Engine output lines into the UI.
fn out_fn(ui: &Ui) -> impl Fn(&str) + Send + Sync + use<> {
    let ui = ui.clone();
    move |line: &str| ui.output(line, Style::Plain)
}

/// An image tag a component created (pointing at image `id`), as a declared resource.
fn image_resource(reference: &str, id: &str) -> DeclaredResource {
    DeclaredResource {
        name: reference.to_owned(),
        r#type: "image".to_owned(),
        platform: "docker".to_owned(),
        state_json: serde_json::json!({ "tag": reference, "id": id }).to_string(),
        ..DeclaredResource::default()
    }
}

/// Removes the image tags a builder or registry created: the stored resources, or (for a record
/// without them) the value's `created_tags`. A tag now naming another image is left alone.
async fn destroy_image_tags(
    ui: &Ui,
    image: &Image,
    mut resources: Vec<DeclaredResource>,
) -> Result<Vec<DeclaredResource>, PluginError> {
    let docker = engine::connect(None).await.map_err(fail)?;
    if resources.is_empty() {
        resources = image
            .created_tags
            .iter()
            .map(|t| image_resource(t, &image.id))
            .collect();
    }
    for r in &mut resources {
        if r.r#type != "image" || r.destroyed {
            continue;
        }
        let state: serde_json::Value = serde_json::from_str(&r.state_json).unwrap_or_default();
        let expected = state.get("id").and_then(serde_json::Value::as_str);
        if engine::remove_tag(&docker, &r.name, expected)
            .await
            .map_err(fail)?
        {
            ui.output(format!("Removed image tag {}", r.name), Style::Plain);
        }
        r.destroyed = true;
    }
    Ok(resources)
}

/// The docs of the `auth {}` block.
pub(crate) fn auth_fields() -> Vec<FieldDoc> {
    vec![
        FieldDoc::new("hostname", "string", "Registry host name."),
        FieldDoc::new("username", "string", "User name."),
        FieldDoc::new("password", "string", "Password."),
        FieldDoc::new("email", "string", "E-mail."),
        FieldDoc::new("auth", "string", "Base64 of `user:password`."),
        FieldDoc::new("serverAddress", "string", "Registry address."),
        FieldDoc::new("identityToken", "string", "OAuth identity token."),
        FieldDoc::new("registryToken", "string", "Registry bearer token."),
    ]
}

/// The docs of the `client_config {}` block (the `docker` and `docker-swarm` platforms).
pub(crate) fn client_fields() -> Vec<FieldDoc> {
    vec![
        FieldDoc::new("host", "string", "`unix:///path` or `tcp://host:port`."),
        FieldDoc::new(
            "cert_path",
            "string",
            "Directory with `ca.pem`, `cert.pem`, `key.pem` for a TLS engine; setting it turns TLS on (default `DOCKER_CERT_PATH`, else `~/.docker`).",
        ),
        FieldDoc::new(
            "tls_verify",
            "string",
            "`1`: TLS, the engine's certificate verified against `ca.pem`; `0`: plain tcp (default `DOCKER_TLS_VERIFY`).",
        ),
        FieldDoc::new(
            "api_version",
            "string",
            "Ignored: the version is negotiated.",
        ),
    ]
}
