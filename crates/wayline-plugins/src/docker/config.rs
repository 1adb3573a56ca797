//! Config of every docker component: the attributes Waypoint's docker plugins documented, with the
//! same meaning, decoded from the HCL `use` body. Validation here is pure; IO happens later.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Registry credentials, Waypoint's `auth {}` block (field names kept, including camelCase ones).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// Registry host name the credentials are for.
    #[serde(default)]
    pub hostname: Option<String>,
    /// User name.
    #[serde(default)]
    pub username: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: Option<String>,
    /// E-mail (legacy registries).
    #[serde(default)]
    pub email: Option<String>,
    /// Base64 of `user:password`.
    #[serde(default)]
    pub auth: Option<String>,
    /// Registry address as the engine knows it.
    #[serde(default, rename = "serverAddress")]
    pub server_address: Option<String>,
    /// OAuth identity token.
    #[serde(default, rename = "identityToken")]
    pub identity_token: Option<String>,
    /// Bearer token for the registry.
    #[serde(default, rename = "registryToken")]
    pub registry_token: Option<String>,
}

/// Config of the `docker` builder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BuilderConfig {
    /// Build-time variables (`ARG`) passed to the Dockerfile.
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    /// Build with BuildKit (`true`) or the classic builder (`false`). Unset: BuildKit when the
    /// engine offers it (API 1.39 or later, a linux engine) and `DOCKER_BUILDKIT` is not `0`.
    #[serde(default)]
    pub buildkit: Option<bool>,
    /// Build context directory, relative to the app's source directory (default: that directory).
    #[serde(default)]
    pub context: Option<String>,
    /// Do not inject `wayline-entrypoint` into the image.
    #[serde(default)]
    pub disable_entrypoint: bool,
    /// Path of the Dockerfile, relative to the app's source directory (default: `Dockerfile` in the
    /// context).
    #[serde(default)]
    pub dockerfile: Option<String>,
    /// Do not use the build cache.
    #[serde(default)]
    pub no_cache: bool,
    /// Target platform, e.g. `linux/amd64`.
    #[serde(default)]
    pub platform: Option<String>,
    /// Build stage to stop at.
    #[serde(default)]
    pub target: Option<String>,
    /// Credentials for pulling base images from a private registry.
    #[serde(default)]
    pub auth: Option<Auth>,
}

/// Config of the `docker` registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Image name to push as, e.g. `registry.example.com/team/web`.
    pub image: String,
    /// Tag to push as.
    pub tag: String,
    /// Only tag the image in the local engine; do not push.
    #[serde(default)]
    pub local: bool,
    /// The registry speaks plain HTTP or has an untrusted certificate. The engine decides this from
    /// its own `insecure-registries` setting (loopback registries are always allowed); accepted for
    /// compatibility.
    #[serde(default)]
    pub insecure: bool,
    /// User name for the registry.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for the registry.
    #[serde(default)]
    pub password: Option<String>,
    /// Engine-ready credentials: base64 of the JSON auth config (`X-Registry-Auth`).
    #[serde(default)]
    pub encoded_auth: Option<String>,
    /// Credentials as a block.
    #[serde(default)]
    pub auth: Option<Auth>,
}

/// How to reach the Docker engine, Waypoint's `client_config {}` block. Unset fields come from
/// `DOCKER_HOST` and the engine's defaults; the API version is always negotiated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Engine address: `unix:///path` or `tcp://host:port`.
    #[serde(default)]
    pub host: Option<String>,
    /// Directory with `ca.pem`, `cert.pem` and `key.pem` for a TLS engine (default
    /// `DOCKER_CERT_PATH`, else `~/.docker`); setting it turns TLS on.
    #[serde(default)]
    pub cert_path: Option<String>,
    /// `1`: TLS, the engine's certificate verified against `ca.pem` (default `DOCKER_TLS_VERIFY`);
    /// `0`: plain tcp.
    #[serde(default)]
    pub tls_verify: Option<String>,
    /// Engine API version; ignored because the version is negotiated.
    #[serde(default)]
    pub api_version: Option<String>,
}

/// The default port an app listens on inside its container.
pub const DEFAULT_SERVICE_PORT: u16 = 3000;

fn default_service_port() -> u16 {
    DEFAULT_SERVICE_PORT
}

/// Config of the `docker` platform.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// Port the app listens on inside the container; exported as `PORT`.
    #[serde(default = "default_service_port")]
    pub service_port: u16,
    /// Host port on 127.0.0.1 that reaches `service_port`. Unset: the engine picks a free port.
    /// (Waypoint always picked a random port, its issue #687; this makes a fixed one possible.)
    #[serde(default)]
    pub host_port: Option<u16>,
    /// Extra environment variables, set before the deployment's own.
    #[serde(default)]
    pub static_environment: BTreeMap<String, String>,
    /// Command to run instead of the image's CMD (not through a shell).
    #[serde(default)]
    pub command: Vec<String>,
    /// Bind mounts, `host-path:container-path[:ro]`.
    #[serde(default)]
    pub binds: Vec<String>,
    /// More container ports to publish on 127.0.0.1, each on a port the engine picks.
    #[serde(default)]
    pub extra_ports: Vec<u16>,
    /// Pull the image even when the engine already has it.
    #[serde(default)]
    pub force_pull: bool,
    /// Extra container labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Networks to attach the container to; missing ones are created (and removed on destroy).
    #[serde(default)]
    pub networks: Vec<String>,
    /// Limits: `memory` (MB) and `cpu` (relative CPU shares).
    #[serde(default)]
    pub resources: BTreeMap<String, String>,
    /// A directory inside the container for temporary data (a tmpfs, gone with the container).
    #[serde(default)]
    pub scratch_path: Option<String>,
    /// Credentials for pulling the image.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// How to reach the engine.
    #[serde(default)]
    pub client_config: Option<ClientConfig>,
}

impl Default for PlatformConfig {
    fn default() -> Self {
        Self {
            service_port: DEFAULT_SERVICE_PORT,
            host_port: None,
            static_environment: BTreeMap::new(),
            command: Vec::new(),
            binds: Vec::new(),
            extra_ports: Vec::new(),
            force_pull: false,
            labels: BTreeMap::new(),
            networks: Vec::new(),
            resources: BTreeMap::new(),
            scratch_path: None,
            auth: None,
            client_config: None,
        }
    }
}

/// Config of the `docker-ref` builder: an existing image used as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RefConfig {
    /// Image name.
    pub image: String,
    /// Image tag.
    pub tag: String,
}

/// Config of the `docker-pull` builder: an existing image re-tagged with the entrypoint injected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PullConfig {
    /// Image name.
    pub image: String,
    /// Image tag.
    pub tag: String,
    /// Do not inject `wayline-entrypoint`.
    #[serde(default)]
    pub disable_entrypoint: bool,
    /// Engine-ready credentials (base64 JSON) for pulling.
    #[serde(default)]
    pub encoded_auth: Option<String>,
    /// Credentials for pulling.
    #[serde(default)]
    pub auth: Option<Auth>,
}

/// Config of the `docker` release manager (no attributes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseConfig {}

/// Container limits decoded from `resources`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Memory limit in bytes.
    pub memory_bytes: Option<i64>,
    /// Relative CPU shares.
    pub cpu_shares: Option<i64>,
}

/// A config value that passed serde but makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{attribute}: {message}")]
pub struct Invalid {
    /// The attribute, e.g. `resources.memory`.
    pub attribute: String,
    /// What is wrong, in a sentence.
    pub message: String,
}

fn invalid(attribute: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        attribute: attribute.into(),
        message: message.into(),
    }
}

impl PlatformConfig {
    /// Checks everything serde can't; returns every problem at once.
    pub fn validate(&self) -> Vec<Invalid> {
        let mut out = Vec::new();
        if self.service_port == 0 {
            out.push(invalid("service_port", "must be between 1 and 65535"));
        }
        if self.host_port == Some(0) {
            out.push(invalid(
                "host_port",
                "must be between 1 and 65535; leave it unset for a random port",
            ));
        }
        for (i, port) in self.extra_ports.iter().enumerate() {
            if *port == 0 {
                out.push(invalid(
                    format!("extra_ports[{i}]"),
                    "must be between 1 and 65535",
                ));
            } else if *port == self.service_port {
                out.push(invalid(
                    format!("extra_ports[{i}]"),
                    format!("{port} is already the service_port"),
                ));
            }
        }
        for (i, bind) in self.binds.iter().enumerate() {
            let parts: Vec<&str> = bind.split(':').collect();
            if parts.len() < 2 || parts.len() > 3 || parts[0].is_empty() || parts[1].is_empty() {
                out.push(invalid(
                    format!("binds[{i}]"),
                    format!("`{bind}` is not `host-path:container-path[:options]`"),
                ));
            }
        }
        if let Err(e) = self.limits() {
            out.push(e);
        }
        if let Some(path) = &self.scratch_path
            && !path.starts_with('/')
        {
            out.push(invalid(
                "scratch_path",
                format!("`{path}` is not an absolute path"),
            ));
        }
        if let Some(cc) = &self.client_config {
            out.extend(cc.validate());
        }
        out
    }

    /// Decodes `resources`: `memory` in MB, `cpu` in relative shares.
    pub fn limits(&self) -> Result<Limits, Invalid> {
        let mut limits = Limits::default();
        for (key, value) in &self.resources {
            let number = |what: &str| {
                value
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        invalid(
                            format!("resources.{key}"),
                            format!("`{value}` is not a positive number of {what}"),
                        )
                    })
            };
            match key.as_str() {
                "memory" => limits.memory_bytes = Some(number("megabytes")? * 1024 * 1024),
                "cpu" => limits.cpu_shares = Some(number("CPU shares")?),
                other => {
                    return Err(invalid(
                        format!("resources.{other}"),
                        "unknown resource; the docker platform knows `memory` (MB) and `cpu` (shares)",
                    ));
                }
            }
        }
        Ok(limits)
    }
}

impl ClientConfig {
    /// Rejects what this engine client can't do rather than silently ignoring it.
    pub fn validate(&self) -> Vec<Invalid> {
        let mut out = Vec::new();
        if let Some(host) = &self.host
            && !(host.starts_with("unix://")
                || host.starts_with("tcp://")
                || host.starts_with("http://"))
        {
            out.push(invalid(
                "client_config.host",
                format!("`{host}` must start with unix:// or tcp://"),
            ));
        }
        if let Some(v) = &self.tls_verify
            && !["", "0", "1", "true", "false"].contains(&v.to_ascii_lowercase().as_str())
        {
            out.push(invalid(
                "client_config.tls_verify",
                format!("`{v}` must be \"1\" (TLS, the engine's certificate verified) or \"0\""),
            ));
        }
        if self.cert_path.is_some()
            && self
                .host
                .as_deref()
                .is_some_and(|h| h.starts_with("unix://"))
        {
            out.push(invalid(
                "client_config.cert_path",
                "TLS is for a tcp:// engine; a unix socket takes no certificates",
            ));
        }
        out
    }
}

impl RegistryConfig {
    /// Checks everything serde can't; returns every problem at once.
    pub fn validate(&self) -> Vec<Invalid> {
        let mut out = Vec::new();
        if self.image.is_empty() {
            out.push(invalid("image", "must not be empty"));
        }
        if !valid_tag(&self.tag) {
            out.push(invalid(
                "tag",
                format!(
                    "`{}` is not a valid tag (letters, digits, `_`, `.`, `-`; at most 128)",
                    self.tag
                ),
            ));
        }
        if self.password.is_some() && self.username.is_none() {
            out.push(invalid("password", "is set but `username` is not"));
        }
        out
    }
}

/// A docker tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() || c == '_' => {}
        _ => return false,
    }
    tag.len() <= 128 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_attribute_is_rejected_by_name() {
        let err = serde_json::from_str::<PlatformConfig>(r#"{"service_prot": 80}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown field `service_prot`, expected one of `service_port`"),
            "{err}"
        );
    }

    #[test]
    fn waypoint_attributes_decode() {
        let cfg: PlatformConfig = serde_json::from_str(
            r#"{"service_port": 8080, "static_environment": {"A": "1"}, "command": ["x"], "binds": ["/a:/b"],
                "extra_ports": [9090], "force_pull": true, "labels": {"l": "v"}, "networks": ["n"],
                "resources": {"memory": "64", "cpu": "512"}, "scratch_path": "/scratch",
                "auth": {"username": "u", "serverAddress": "r"}, "client_config": {"host": "unix:///x"}}"#,
        )
        .unwrap();
        assert_eq!(cfg.validate(), vec![]);
        assert_eq!(
            cfg.limits().unwrap(),
            Limits {
                memory_bytes: Some(64 * 1024 * 1024),
                cpu_shares: Some(512)
            }
        );
        assert_eq!(cfg.auth.unwrap().server_address.as_deref(), Some("r"));
        let b: BuilderConfig = serde_json::from_str(
            r#"{"build_args": {"A": "b"}, "buildkit": false, "context": ".", "disable_entrypoint": true,
                "dockerfile": "Dockerfile", "no_cache": true, "platform": "linux/amd64", "target": "t", "auth": {}}"#,
        )
        .unwrap();
        assert!(b.disable_entrypoint);
        let r: RegistryConfig = serde_json::from_str(
            r#"{"image": "i", "tag": "t", "local": true, "insecure": true, "username": "u", "password": "p",
                "encoded_auth": "e", "auth": {"hostname": "h"}}"#,
        )
        .unwrap();
        assert_eq!(r.validate(), vec![]);
    }

    #[test]
    fn bad_values_are_all_reported() {
        let cfg = PlatformConfig {
            service_port: 0,
            host_port: Some(0),
            extra_ports: vec![0],
            binds: vec!["nocolon".into()],
            resources: BTreeMap::from([("memory".into(), "lots".into())]),
            scratch_path: Some("tmp".into()),
            ..PlatformConfig::default()
        };
        let msgs: Vec<String> = cfg.validate().iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            vec![
                "service_port: must be between 1 and 65535",
                "host_port: must be between 1 and 65535; leave it unset for a random port",
                "extra_ports[0]: must be between 1 and 65535",
                "binds[0]: `nocolon` is not `host-path:container-path[:options]`",
                "resources.memory: `lots` is not a positive number of megabytes",
                "scratch_path: `tmp` is not an absolute path",
            ]
        );
        let unknown = PlatformConfig {
            resources: BTreeMap::from([("gpu".into(), "1".into())]),
            ..PlatformConfig::default()
        };
        assert_eq!(
            unknown.limits().unwrap_err().to_string(),
            "resources.gpu: unknown resource; the docker platform knows `memory` (MB) and `cpu` (shares)"
        );
    }

    #[test]
    fn tags() {
        assert!(valid_tag("v1.2-rc_3"));
        assert!(!valid_tag(""));
        assert!(!valid_tag(".x"));
        assert!(!valid_tag("a:b"));
        let r = RegistryConfig {
            image: "i".into(),
            tag: "a:b".into(),
            ..RegistryConfig::default()
        };
        assert_eq!(
            r.validate()[0].to_string(),
            "tag: `a:b` is not a valid tag (letters, digits, `_`, `.`, `-`; at most 128)"
        );
    }
}
