//! The values the docker components hand to each other, as protobuf messages named by their full
//! type name so the host can store them and find mappers between them.

/// Declares a message's full protobuf type name (`wayline.docker.<Name>`).
macro_rules! docker_value {
    ($ty:ident) => {
        impl wayline_plugin::Value for $ty {
            const TYPE_NAME: &'static str = concat!("wayline.docker.", stringify!($ty));
        }
    };
}

/// A container image: what the builders return and what the registry returns after the push.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Image {
    /// Repository part, e.g. `wayline.local/web` or `127.0.0.1:5000/web`.
    #[prost(string, tag = "1")]
    pub image: String,
    /// Tag part, e.g. `v3`.
    #[prost(string, tag = "2")]
    pub tag: String,
    /// The engine's image id (`sha256:…`), empty when only a remote reference is known.
    #[prost(string, tag = "3")]
    pub id: String,
    /// True when the image exists only in the local engine (built, or `local = true` registry).
    #[prost(bool, tag = "4")]
    pub local: bool,
    /// The reference's tags that this component created and its Destroyer removes.
    #[prost(string, repeated, tag = "5")]
    pub created_tags: Vec<String>,
    /// The registry's manifest digest (`sha256:…`) of the pushed image; platforms on other hosts
    /// run `image@digest`, so a tag moved since can't swap the image.
    #[prost(string, tag = "6")]
    pub digest: String,
    /// The builder left the entrypoint out for the platform to add: set only when the image's
    /// one consumer is the `docker` platform on the local engine, which mounts the binary into
    /// the container (no layer committed per build). Whatever else gets such an image (a push,
    /// another engine, another platform) injects it first: [`super::engine::ensure_entrypoint`].
    #[prost(bool, tag = "7")]
    pub entrypoint_deferred: bool,
}
docker_value!(Image);

impl Image {
    /// `image:tag`, the reference the engine understands.
    pub fn reference(&self) -> String {
        if self.tag.is_empty() {
            self.image.clone()
        } else {
            format!("{}:{}", self.image, self.tag)
        }
    }
}

/// One running container: what the docker platform returns.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Deployment {
    /// Wayline's deployment id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// Container name, `<app>-<deployment id>`.
    #[prost(string, tag = "2")]
    pub name: String,
    /// The engine's container id.
    #[prost(string, tag = "3")]
    pub container_id: String,
    /// The image reference the container runs.
    #[prost(string, tag = "4")]
    pub image: String,
    /// Port the app listens on inside the container (`service_port`).
    #[prost(uint32, tag = "5")]
    pub service_port: u32,
    /// Host port on 127.0.0.1 that reaches `service_port`.
    #[prost(uint32, tag = "6")]
    pub host_port: u32,
    /// `http://127.0.0.1:<host_port>`.
    #[prost(string, tag = "7")]
    pub url: String,
    /// Networks this deployment created (removed on destroy when no other container uses them).
    #[prost(string, repeated, tag = "8")]
    pub created_networks: Vec<String>,
}
docker_value!(Deployment);

/// A released deployment: what the docker release manager returns.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Release {
    /// The released deployment's id.
    #[prost(string, tag = "1")]
    pub deployment_id: String,
    /// The released container's id.
    #[prost(string, tag = "2")]
    pub container_id: String,
    /// Where the release answers: `http://127.0.0.1:<host_port>`.
    #[prost(string, tag = "3")]
    pub url: String,
}
docker_value!(Release);
