//! `ListUrlTunnels`: the URL service's open tunnels, each with its deployment (app, workspace,
//! `vN`), the hosts it serves, its instance, since when, and its requests in flight. The tunnels
//! come from the URL service beside the server (plugged in by the process running it), the rest
//! from the catalog and the current routes.

use std::sync::Arc;

use tonic::Status;
use wayline_core::url::{TunnelInfo, deployment_label};
use wayline_proto::v1 as pb;

use crate::service::Shared;
use crate::store::OperationTarget;

/// The URL service's open tunnels, which the process running it plugs in.
pub trait UrlTunnels: Send + Sync + 'static {
    /// Every open tunnel.
    fn tunnels(&self) -> Vec<TunnelInfo>;
}

/// `ListUrlTunnels`: `serving: false` without a URL service.
pub(crate) async fn list(
    shared: &Shared,
    _req: pb::ListUrlTunnelsRequest,
) -> Result<pb::ListUrlTunnelsResponse, Status> {
    let (Some(view), Some(opts)) = (shared.urls.tunnels.get(), &shared.urls.opts) else {
        return Ok(pb::ListUrlTunnelsResponse::default());
    };
    let routes = Arc::clone(&shared.urls.subscribe().borrow());
    let mut out = Vec::new();
    for t in view.tunnels() {
        let op = shared
            .store
            .get_operation(
                pb::OperationKind::Deployment as i32,
                OperationTarget::Id(t.deployment_id.clone()),
            )
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .unwrap_or_default();
        let mut hosts = Vec::new();
        if let Some(r) = routes.iter().find(|r| r.deployment_id == t.deployment_id) {
            if r.weight > 0 {
                hosts.push(format!("{}.{}", r.host, opts.domain));
            }
            let label = deployment_label(&r.host, r.sequence);
            hosts.push(format!("{label}.{}", opts.domain));
        }
        out.push(pb::UrlTunnel {
            deployment_id: t.deployment_id,
            application: op.application,
            workspace: op.workspace,
            sequence: op.sequence,
            hosts,
            instance_id: t.instance_id,
            connected_ms: t.connected_ms,
            in_flight: u32::try_from(t.in_flight).unwrap_or(u32::MAX),
        });
    }
    let key = |t: &pb::UrlTunnel| {
        let app = t.application.clone().unwrap_or_default();
        (
            app.project,
            app.application,
            t.sequence,
            t.instance_id.clone(),
        )
    };
    out.sort_by_key(key);
    Ok(pb::ListUrlTunnelsResponse {
        serving: true,
        tunnels: out,
    })
}
