//! TLS to a TCP server address: the default self-signed certificate with skip-verify, and a
//! verified one through `WAYLINE_SERVER_TLS_CA`.

use std::sync::Arc;

use crate::common::*;
use crate::harness::{Harness, StaticResolver, serve_tls};
use crate::hub::{EntrypointHub, HubOptions};

#[tokio::test]
async fn connects_over_tls_with_skip_verify_and_with_a_ca() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    let hub = EntrypointHub::new(HubOptions::default());
    let harness = Harness {
        hub: hub.clone(),
        resolver: Arc::new(StaticResolver::default()),
    };
    let (port, task) = serve_tls(harness, &cert_pem, &key_pem);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert_pem).unwrap();

    let instances = async |n: usize| {
        wait_for_async(PATIENCE, || async {
            let seen = hub.list_instances(&[]);
            if seen.len() == n { Ok(()) } else { Err(seen) }
        })
        .await
        .unwrap_or_else(|last| panic!("never saw {n} instances; last: {last:?}"));
    };

    let mut skip = entrypoint(None, &["sleep", "60"]);
    skip.env("WAYLINE_SERVER_ADDR", format!("127.0.0.1:{port}"))
        .env("WAYLINE_SERVER_TLS", "1")
        .env("WAYLINE_SERVER_TLS_SKIP_VERIFY", "1");
    let skip = skip.spawn().unwrap();
    instances(1).await;

    let mut verified = entrypoint(None, &["sleep", "60"]);
    verified
        .env("WAYLINE_SERVER_ADDR", format!("https://localhost:{port}"))
        .env("WAYLINE_SERVER_TLS_CA", &ca);
    let verified = verified.spawn().unwrap();
    instances(2).await;
    drop((skip, verified));
    task.abort();
}
