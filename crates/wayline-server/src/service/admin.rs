//! Tokens, server config and snapshots.

use std::path::PathBuf;

use prost::Message;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Response, Status, Streaming};
use wayline_proto::v1 as pb;

use super::{Out, Shared, store_status};
use crate::auth::{TokenKind, Tokens, parse_expiry};

const BOOTSTRAPPED: &str = "bootstrapped";
const SERVER_CONFIG: &str = "server_config";
const SERVER_ID: &str = "server_id";
const CHUNK: usize = 64 * 1024;

pub(super) async fn bootstrap(shared: &Shared) -> Result<pb::NewTokenResponse, Status> {
    let first = shared
        .store
        .claim_state(BOOTSTRAPPED, b"1".to_vec())
        .await
        .map_err(store_status)?;
    if !first {
        return Err(Status::permission_denied(
            "the server has already been bootstrapped; ask its operator for a token (`wayline user token`)",
        ));
    }
    let token = shared.mint(Tokens::claims(TokenKind::Login, None)).await?;
    tracing::info!("server bootstrapped: first login token issued");
    Ok(pb::NewTokenResponse { token })
}

pub(super) async fn generate(
    shared: &Shared,
    kind: TokenKind,
    expires_in: &str,
) -> Result<pb::NewTokenResponse, Status> {
    let token = shared
        .mint(Tokens::claims(kind, parse_expiry(expires_in)?))
        .await?;
    Ok(pb::NewTokenResponse { token })
}

pub(super) async fn convert_invite(
    shared: &Shared,
    invite: &str,
) -> Result<pb::NewTokenResponse, Status> {
    let claims = shared.tokens.verify(invite)?;
    if claims.kind != TokenKind::Invite {
        return Err(Status::permission_denied(format!(
            "ConvertInviteToken needs an invite token, not a {} token",
            claims.kind.name()
        )));
    }
    // An invite is good for one login token.
    shared
        .store
        .revoke_token(&claims.id)
        .await
        .map_err(store_status)?;
    shared.tokens.revoke(&claims.id);
    generate(shared, TokenKind::Login, "").await
}

pub(super) async fn runner_token(
    shared: &Shared,
    req: pb::GenerateRunnerTokenRequest,
) -> Result<pb::NewTokenResponse, Status> {
    let mut claims = Tokens::claims(TokenKind::Runner, parse_expiry(&req.expires_in)?);
    claims.runner_id = req.runner_id;
    Ok(pb::NewTokenResponse {
        token: shared.mint(claims).await?,
    })
}

pub(super) async fn entrypoint_token(
    shared: &Shared,
    req: pb::GenerateEntrypointTokenRequest,
) -> Result<pb::NewTokenResponse, Status> {
    if req.deployment_id.is_empty() {
        return Err(Status::invalid_argument("deployment_id is required"));
    }
    let exists = shared
        .store
        .get_operation(
            pb::OperationKind::Deployment as i32,
            crate::store::OperationTarget::Id(req.deployment_id.clone()),
        )
        .await
        .map_err(store_status)?
        .is_some();
    if !exists {
        return Err(Status::not_found(format!(
            "deployment {} does not exist",
            req.deployment_id
        )));
    }
    let token = shared
        .mint_entrypoint_token(&req.deployment_id, parse_expiry(&req.expires_in)?)
        .await?;
    Ok(pb::NewTokenResponse { token })
}

pub(super) async fn revoke(shared: &Shared, id: &str) -> Result<(), Status> {
    if !shared.store.revoke_token(id).await.map_err(store_status)? {
        return Err(Status::not_found(format!(
            "no token with id {id} was issued by this server"
        )));
    }
    shared.tokens.revoke(id);
    for runner in shared.runners.using_token(id) {
        shared.runners.reject(
            &runner,
            &format!("the token of runner {runner} was revoked; it needs a new token to take jobs"),
            false,
        );
        shared.queue.drop_waiters(&runner);
    }
    Ok(())
}

/// The stored server config, with defaults from the server's options where unset.
pub(crate) async fn server_config(shared: &Shared) -> Result<pb::ServerConfig, Status> {
    let stored = shared
        .store
        .get_state(SERVER_CONFIG)
        .await
        .map_err(store_status)?;
    let mut c = match stored {
        Some(b) => {
            pb::ServerConfig::decode(b.as_slice()).map_err(|e| Status::internal(e.to_string()))?
        }
        None => pb::ServerConfig::default(),
    };
    if c.advertise_addr.is_empty() {
        c.advertise_addr.clone_from(&shared.settings.advertise_addr);
        c.advertise_tls = shared.settings.tls;
        // The default certificate is self-signed.
        c.advertise_tls_skip_verify = shared.settings.tls;
    }
    if c.advertise_unix_socket.is_empty()
        && let Some(p) = &shared.settings.unix_socket
    {
        c.advertise_unix_socket = p.display().to_string();
    }
    if c.url_domain.is_empty()
        && let Some(u) = &shared.settings.url
    {
        c.url_domain.clone_from(&u.domain);
    }
    c.server_id = server_id(shared).await?;
    Ok(c)
}

/// This server's id: made once, kept in the database (a restored snapshot keeps it).
async fn server_id(shared: &Shared) -> Result<String, Status> {
    shared
        .store
        .claim_state(SERVER_ID, wayline_core::id::new_id().into_bytes())
        .await
        .map_err(store_status)?;
    let id = shared
        .store
        .get_state(SERVER_ID)
        .await
        .map_err(store_status)?
        .unwrap_or_default();
    Ok(String::from_utf8_lossy(&id).into_owned())
}

pub(super) async fn set_server_config(
    shared: &Shared,
    mut c: pb::ServerConfig,
) -> Result<(), Status> {
    c.server_id.clear();
    shared
        .store
        .put_state(SERVER_CONFIG, c.encode_to_vec())
        .await
        .map_err(store_status)
}

fn temp_path(shared: &Shared, what: &str) -> PathBuf {
    shared
        .settings
        .data_dir
        .join(format!(".{what}-{}.db", wayline_core::id::new_id()))
}

fn io_status(path: &std::path::Path, e: &std::io::Error) -> Status {
    Status::internal(format!("{}: {e}", path.display()))
}

pub(super) async fn create_snapshot(shared: &Shared) -> Result<Out<pb::SnapshotChunk>, Status> {
    let path = temp_path(shared, "snapshot");
    shared
        .store
        .backup_to(path.clone())
        .await
        .map_err(store_status)?;
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| io_status(&path, &e))?;
    // Unlink now: the open handle keeps the data readable and nothing is left behind on error.
    let _ = tokio::fs::remove_file(&path).await;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = tx
                        .send(Err(Status::internal(format!("reading the snapshot: {e}"))))
                        .await;
                    return;
                }
            };
            hash.update(&buf[..n]);
            let chunk = pb::SnapshotChunk {
                event: Some(pb::snapshot_chunk::Event::Data(buf[..n].to_vec())),
            };
            if tx.send(Ok(chunk)).await.is_err() {
                return;
            }
        }
        let sum = hex::encode(hash.finalize());
        let _ = tx
            .send(Ok(pb::SnapshotChunk {
                event: Some(pb::snapshot_chunk::Event::Sha256(sum)),
            }))
            .await;
    });
    Ok(ReceiverStream::new(rx))
}

/// The file a verified restore is staged in; [`crate::start`] swaps it in before opening the DB.
pub(crate) fn staged_restore_path(db: &std::path::Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".restore");
    PathBuf::from(p)
}

/// Receives, checksums and verifies a snapshot, then stages it to replace the database at the
/// next start. The running server keeps serving its current data until restarted; the response
/// carries `wayline-restart-required: true` so clients can say so.
pub(super) async fn restore_snapshot(
    shared: &Shared,
    mut inbound: Streaming<pb::SnapshotChunk>,
) -> Result<Response<()>, Status> {
    let tmp = temp_path(shared, "restore");
    let result = async {
        let mut file = tokio::fs::File::create(&tmp).await.map_err(|e| io_status(&tmp, &e))?;
        let mut hash = Sha256::new();
        let mut expected = None;
        while let Some(chunk) = inbound.message().await? {
            match chunk.event {
                Some(pb::snapshot_chunk::Event::Data(d)) if expected.is_none() => {
                    hash.update(&d);
                    file.write_all(&d).await.map_err(|e| io_status(&tmp, &e))?;
                }
                Some(pb::snapshot_chunk::Event::Data(_)) => {
                    return Err(Status::invalid_argument("snapshot data arrived after the checksum"));
                }
                Some(pb::snapshot_chunk::Event::Sha256(s)) => expected = Some(s),
                None => {}
            }
        }
        file.sync_all().await.map_err(|e| io_status(&tmp, &e))?;
        let Some(expected) = expected else {
            return Err(Status::invalid_argument(
                "the snapshot stream ended without its sha256 checksum; nothing was restored",
            ));
        };
        let actual = hex::encode(hash.finalize());
        if !actual.eq_ignore_ascii_case(expected.trim()) {
            return Err(Status::data_loss(format!(
                "the snapshot is corrupt: its data hashes to {actual} but the checksum says {expected}; nothing was restored"
            )));
        }
        let check = tmp.clone();
        tokio::task::spawn_blocking(move || crate::store::verify_database(&check))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(store_status)?;
        let staged = staged_restore_path(&shared.settings.db_path);
        tokio::fs::rename(&tmp, &staged).await.map_err(|e| io_status(&staged, &e))?;
        tracing::warn!(staged = %staged.display(), "snapshot verified and staged; it replaces the database when the server restarts");
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result?;
    let mut resp = Response::new(());
    resp.metadata_mut()
        .insert("wayline-restart-required", "true".parse().expect("ascii"));
    Ok(resp)
}
