//! The gRPC listener's certificate: the operator's, or a self-signed one made once per data dir.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::Error;

/// PEM certificate and key.
#[derive(Debug, Clone)]
pub(crate) struct Pem {
    pub(crate) cert: Vec<u8>,
    pub(crate) key: Vec<u8>,
    pub(crate) cert_path: PathBuf,
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

/// Loads the given pair, or the self-signed pair in `data_dir/tls`, generating it on first use.
pub(crate) fn load_or_generate(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
    names: Vec<String>,
) -> Result<Pem, Error> {
    match (cert, key) {
        (Some(c), Some(k)) => {
            return Ok(Pem {
                cert: read(c)?,
                key: read(k)?,
                cert_path: c.to_owned(),
            });
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(Error::Config(
                "give both a TLS certificate file and a key file, or neither (for a self-signed certificate)".into(),
            ));
        }
        (None, None) => {}
    }
    let dir = data_dir.join("tls");
    let cert_path = dir.join("server.crt");
    let key_path = dir.join("server.key");
    if cert_path.exists() && key_path.exists() {
        return Ok(Pem {
            cert: read(&cert_path)?,
            key: read(&key_path)?,
            cert_path,
        });
    }
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        path: dir.clone(),
        source,
    })?;
    let generated = rcgen::generate_simple_self_signed(names)
        .map_err(|e| Error::Config(format!("generating a self-signed certificate: {e}")))?;
    let cert = generated.cert.pem().into_bytes();
    let key = generated.signing_key.serialize_pem().into_bytes();
    write_private(&key_path, &key)?;
    std::fs::write(&cert_path, &cert).map_err(|source| Error::Io {
        path: cert_path.clone(),
        source,
    })?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed TLS certificate");
    Ok(Pem {
        cert,
        key,
        cert_path,
    })
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)
}
