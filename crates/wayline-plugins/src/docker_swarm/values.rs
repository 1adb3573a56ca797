//! The values the `docker-swarm` components return, as protobuf messages named by their full type
//! name (`wayline.docker_swarm.<Name>`).

macro_rules! swarm_value {
    ($ty:ident) => {
        impl wayline_plugin::Value for $ty {
            const TYPE_NAME: &'static str = concat!("wayline.docker_swarm.", stringify!($ty));
        }
    };
}

/// One deployment: a Swarm service of its own.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Service {
    /// Wayline's deployment id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// Service name, `<app>-v<N>`.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Swarm's service id.
    #[prost(string, tag = "3")]
    pub service_id: String,
    /// The image the tasks run (`repo@sha256:…` when deployed by digest).
    #[prost(string, tag = "4")]
    pub image: String,
    /// Tasks asked for.
    #[prost(uint64, tag = "5")]
    pub replicas: u64,
    /// Where it answers, e.g. `http://10.77.0.11:18080` (empty without published ports).
    #[prost(string, tag = "6")]
    pub url: String,
    /// The tasks' health check as Swarm's JSON (empty: none). Kept here because the engine
    /// returns it as `Healthcheck`, which bollard does not read back from an inspected service.
    #[prost(string, tag = "7")]
    pub health_check_json: String,
}
swarm_value!(Service);

/// A release: the app's stable service running a deployment's task template.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Release {
    /// The released deployment's id.
    #[prost(string, tag = "1")]
    pub deployment_id: String,
    /// The stable service's name.
    #[prost(string, tag = "2")]
    pub service: String,
    /// Where it answers.
    #[prost(string, tag = "3")]
    pub url: String,
}
swarm_value!(Release);
