//! `wayline url-service status`: the URL service's open tunnels — deployment, app, the
//! hostnames they serve, instance, when they connected, requests in flight (`-json` for
//! scripts).

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use wayline_core::id::format_sequence;
use wayline_core::pb;

use super::{Env, describe_status};
use crate::render::{self, say};
use crate::session;

/// Prints the tunnels.
pub(crate) async fn status(env: &Env) -> Result<ExitCode> {
    let mut session = session::connect().await?;
    let r = session
        .client
        .list_url_tunnels(pb::ListUrlTunnelsRequest {})
        .await
        .map_err(|s| anyhow::anyhow!(describe_status(&s)))?
        .into_inner();
    if env.global.json {
        let tunnels: Vec<_> = r.tunnels.iter().map(json).collect();
        render::json(&serde_json::json!({ "serving": r.serving, "tunnels": tunnels }));
    } else if !r.serving {
        say!("The server runs no URL service (it was started with `-url-service=false`).");
    } else if r.tunnels.is_empty() {
        say!("No tunnels are open: no deployment's entrypoint is connected to the URL service.");
    } else {
        let rows: Vec<Vec<String>> = r.tunnels.iter().map(row).collect();
        render::table(
            &[
                "DEPLOYMENT",
                "APP",
                "HOSTNAMES",
                "INSTANCE",
                "CONNECTED",
                "IN FLIGHT",
            ],
            &rows,
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn app_name(t: &pb::UrlTunnel) -> String {
    t.application
        .as_ref()
        .map(|a| format!("{}/{}", a.project, a.application))
        .unwrap_or_default()
}

fn row(t: &pb::UrlTunnel) -> Vec<String> {
    vec![
        format_sequence(t.sequence),
        app_name(t),
        t.hosts.join(", "),
        t.instance_id.clone(),
        since(t.connected_ms),
        t.in_flight.to_string(),
    ]
}

/// When a tunnel connected, as UTC to the second.
fn since(ms: i64) -> String {
    let at: SystemTime = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// One tunnel as JSON.
fn json(t: &pb::UrlTunnel) -> serde_json::Value {
    let app = t.application.clone().unwrap_or_default();
    serde_json::json!({
        "deployment_id": t.deployment_id,
        "sequence": t.sequence,
        "project": app.project,
        "app": app.application,
        "workspace": t.workspace,
        "hosts": t.hosts,
        "instance_id": t.instance_id,
        "connected_ms": t.connected_ms,
        "in_flight": t.in_flight,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tunnel_row_names_its_deployment_hosts_and_start() {
        let t = pb::UrlTunnel {
            deployment_id: "01D".into(),
            application: Some(pb::r#ref::Application {
                project: "shop".into(),
                application: "web".into(),
            }),
            workspace: "default".into(),
            sequence: 2,
            hosts: vec!["web.localhost".into(), "web--v2.localhost".into()],
            instance_id: "i-1".into(),
            connected_ms: 1_700_000_000_000,
            in_flight: 3,
        };
        assert_eq!(
            row(&t),
            [
                "v2",
                "shop/web",
                "web.localhost, web--v2.localhost",
                "i-1",
                "2023-11-14T22:13:20Z",
                "3"
            ]
        );
        assert_eq!(json(&t)["hosts"][1], "web--v2.localhost");
    }
}
