//! The gRPC listener's certificate: the operator's, or a self-signed one made once per data dir
//! (in `tls/`, 0700, both files 0600). A key file open to other users is refused.

use std::path::{Path, PathBuf};

use crate::Error;
use crate::datadir;

/// PEM certificate and key.
#[derive(Debug, Clone)]
pub(crate) struct Pem {
    pub(crate) cert: Vec<u8>,
    pub(crate) key: Vec<u8>,
    pub(crate) cert_path: PathBuf,
}

/// The self-signed certificate's file in a data dir (its presence marks a previous life).
pub(crate) fn self_signed_cert_path(data_dir: &Path) -> PathBuf {
    data_dir.join("tls").join("server.crt")
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
            datadir::refuse_if_shared(k, "600")?;
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
    let cert_path = self_signed_cert_path(data_dir);
    let dir = cert_path.parent().expect("in tls/").to_owned();
    let key_path = dir.join("server.key");
    if cert_path.exists() && key_path.exists() {
        datadir::refuse_if_shared(&key_path, "600")?;
        return Ok(Pem {
            cert: read(&cert_path)?,
            key: read(&key_path)?,
            cert_path,
        });
    }
    datadir::create_private_dir(&dir)?;
    let generated = rcgen::generate_simple_self_signed(names)
        .map_err(|e| Error::Config(format!("generating a self-signed certificate: {e}")))?;
    let cert = generated.cert.pem().into_bytes();
    let key = generated.signing_key.serialize_pem().into_bytes();
    datadir::write_private(&key_path, &key)?;
    datadir::write_private(&cert_path, &cert)?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed TLS certificate");
    Ok(Pem {
        cert,
        key,
        cert_path,
    })
}
