//! Reaching the engine the way the Docker CLI does: `client_config` first, then `DOCKER_HOST`,
//! `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`, else the local socket. A `tcp://` engine with TLS
//! gets the client certificate and key from the cert directory (`ca.pem`, `cert.pem`, `key.pem`)
//! and its own certificate is verified against that `ca.pem` (and the system's roots).

use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::errors::Error as BollardError;

use super::{DockerError, message};
use crate::docker::config::ClientConfig;

/// The files a TLS engine connection needs in the cert directory, as the Docker CLI names them.
const TLS_FILES: [&str; 3] = ["ca.pem", "cert.pem", "key.pem"];

/// Where the engine is and, for TLS, the directory with its CA and our client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix:///…` or `tcp://host:port`; `None` is the platform's local default.
    pub host: Option<String>,
    /// The cert directory when the connection uses TLS.
    pub tls: Option<PathBuf>,
}

/// `1`, `true`, … (Docker's own test is "non-empty"; `0` and `false` read as off here).
fn truthy(v: &str) -> bool {
    !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")
}

impl Endpoint {
    /// Resolves `client` over the environment (`env` reads a variable).
    pub fn resolve(client: Option<&ClientConfig>, env: impl Fn(&str) -> Option<String>) -> Self {
        let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
        let host =
            nonempty(client.and_then(|c| c.host.clone())).or_else(|| nonempty(env("DOCKER_HOST")));
        let cert_path = nonempty(client.and_then(|c| c.cert_path.clone()));
        let tls = match client.and_then(|c| c.tls_verify.as_deref()) {
            Some(v) if !v.is_empty() => truthy(v),
            _ => {
                cert_path.is_some()
                    || nonempty(env("DOCKER_TLS_VERIFY")).is_some_and(|v| truthy(&v))
            }
        };
        let is_tcp = host
            .as_deref()
            .is_some_and(|h| h.starts_with("tcp://") || h.starts_with("https://"));
        let dir = || {
            cert_path
                .clone()
                .or_else(|| nonempty(env("DOCKER_CERT_PATH")))
                .map(PathBuf::from)
                .or_else(|| nonempty(env("HOME")).map(|h| Path::new(&h).join(".docker")))
                .unwrap_or_else(|| PathBuf::from(".docker"))
        };
        Self {
            tls: (tls && is_tcp).then(dir),
            host,
        }
    }

    /// How the address reads in messages.
    pub fn addr(&self) -> String {
        self.host
            .clone()
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned())
    }
}

/// Connects to the engine `client` names (over the environment, see [`Endpoint`]) and
/// negotiates the API version (the engine may be older than the client).
pub async fn connect(client: Option<&ClientConfig>) -> Result<Docker, DockerError> {
    let endpoint = Endpoint::resolve(client, |k| std::env::var(k).ok());
    let addr = endpoint.addr();
    let connect_err = |e: BollardError| DockerError::Connect {
        addr: addr.clone(),
        message: message(&e),
    };
    let docker = match (endpoint.host.as_deref(), &endpoint.tls) {
        (Some(h), Some(dir)) => {
            let [ca, cert, key] = TLS_FILES.map(|f| dir.join(f));
            if let Some(missing) = [&ca, &cert, &key].into_iter().find(|p| !p.is_file()) {
                return Err(DockerError::Connect {
                    addr,
                    message: format!(
                        "TLS needs {} in `{}` (client_config.cert_path or DOCKER_CERT_PATH): `{}` is missing",
                        TLS_FILES.join(", "),
                        dir.display(),
                        missing.display()
                    ),
                });
            }
            Docker::connect_with_ssl(h, &key, &cert, &ca, 120, bollard::API_DEFAULT_VERSION)
        }
        (Some(h), None) if h.starts_with("tcp://") || h.starts_with("http://") => {
            Docker::connect_with_http(h, 120, bollard::API_DEFAULT_VERSION)
        }
        (Some(h), None) => Docker::connect_with_unix(h, 120, bollard::API_DEFAULT_VERSION),
        (None, _) => Docker::connect_with_local_defaults(),
    }
    .map_err(connect_err)?;
    let docker = docker.negotiate_version().await.map_err(connect_err)?;
    tracing::debug!(addr = %addr, tls = endpoint.tls.is_some(), version = ?docker.client_version(), "connected to docker engine");
    Ok(docker)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn client(host: Option<&str>, cert_path: Option<&str>, verify: Option<&str>) -> ClientConfig {
        ClientConfig {
            host: host.map(str::to_owned),
            cert_path: cert_path.map(str::to_owned),
            tls_verify: verify.map(str::to_owned),
            api_version: None,
        }
    }

    #[test]
    fn the_docker_cli_s_environment_turns_tls_on_for_tcp_hosts() {
        let vars = [
            ("DOCKER_HOST", "tcp://10.0.0.5:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", "/certs"),
        ];
        let e = Endpoint::resolve(None, env(&vars));
        assert_eq!(e.host.as_deref(), Some("tcp://10.0.0.5:2376"));
        assert_eq!(e.tls, Some(PathBuf::from("/certs")));
        // Without a cert path: ~/.docker, like the CLI.
        let e = Endpoint::resolve(None, env(&[vars[0], vars[1], ("HOME", "/home/u")]));
        assert_eq!(e.tls, Some(PathBuf::from("/home/u/.docker")));
        // Without DOCKER_TLS_VERIFY: plain tcp.
        assert_eq!(Endpoint::resolve(None, env(&[vars[0], vars[2]])).tls, None);
        // A unix socket never uses TLS.
        let unix = [("DOCKER_HOST", "unix:///run/d.sock"), vars[1], vars[2]];
        assert_eq!(Endpoint::resolve(None, env(&unix)).tls, None);
    }

    #[test]
    fn client_config_wins_over_the_environment() {
        let vars = [
            ("DOCKER_HOST", "tcp://a:2375"),
            ("DOCKER_CERT_PATH", "/env-certs"),
        ];
        // cert_path alone means TLS, from that directory.
        let c = client(Some("tcp://b:2376"), Some("/cfg-certs"), None);
        let e = Endpoint::resolve(Some(&c), env(&vars));
        assert_eq!(e.host.as_deref(), Some("tcp://b:2376"));
        assert_eq!(e.tls, Some(PathBuf::from("/cfg-certs")));
        // tls_verify = "1" takes the environment's directory.
        let c = client(None, None, Some("1"));
        let e = Endpoint::resolve(Some(&c), env(&vars));
        assert_eq!(
            (e.addr(), e.tls),
            ("tcp://a:2375".to_owned(), Some(PathBuf::from("/env-certs")))
        );
        // tls_verify = "false" turns it off even with DOCKER_TLS_VERIFY set.
        let c = client(None, Some("/cfg-certs"), Some("false"));
        let on = [vars[0], ("DOCKER_TLS_VERIFY", "1")];
        assert_eq!(Endpoint::resolve(Some(&c), env(&on)).tls, None);
        assert_eq!(
            Endpoint::resolve(None, env(&[])).addr(),
            "unix:///var/run/docker.sock"
        );
    }

    #[tokio::test]
    async fn a_missing_client_certificate_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "x").unwrap();
        let c = client(
            Some("tcp://127.0.0.1:1"),
            Some(dir.path().to_str().unwrap()),
            None,
        );
        let err = connect(Some(&c)).await.unwrap_err().to_string();
        assert!(
            err.starts_with("cannot reach the Docker engine at `tcp://127.0.0.1:1`: TLS needs ca.pem, cert.pem, key.pem in"),
            "{err}"
        );
        assert!(err.ends_with("cert.pem` is missing"), "{err}");
    }
}
