//! `wayline release -deployment vN -weight W`: a canary through the URL service's router.
//! Below 100 the server splits the app host's traffic (after the deployment's health check);
//! 100 is an ordinary release, which ends the canary; 0 ends it too, all traffic back on the
//! live release. Also how `status` and `release list` show a canary in force.

use std::process::ExitCode;

use anyhow::{Result, bail};
use wayline_core::id::format_sequence;
use wayline_core::pb;

use super::Env;
use super::ops;
use crate::render::say;
use crate::session::{self, Session};

/// Why the app cannot have a canary, from its config: a `release` stanza of its own releases
/// through a plugin, not the router.
fn release_plugin(t: &ops::Target) -> Result<Option<String>> {
    let config = match wayline_config::load_file(&t.config_path) {
        Ok(c) => c,
        Err(diags) => bail!("{diags}"),
    };
    let Some(app) = config.app(&t.app) else {
        return Ok(None);
    };
    let Some(stage) = &app.release else {
        return Ok(None);
    };
    let scoped = stage
        .workspaces
        .iter()
        .find(|(w, _)| *w == t.workspace)
        .and_then(|(_, s)| s.use_block.as_ref());
    Ok(scoped
        .or(stage.use_block.as_ref())
        .map(|u| u.plugin.clone()))
}

/// The app's `url { health_path }`, empty when unset.
fn health_path(t: &ops::Target) -> String {
    wayline_config::load_file(&t.config_path)
        .ok()
        .and_then(|c| {
            c.app(&t.app)
                .and_then(|a| a.url.as_ref())
                .and_then(|u| u.health_path.clone())
        })
        .unwrap_or_default()
}

/// Sets (or with 0 ends) the app's canary.
pub(crate) async fn set(env: &Env, deployment: Option<String>, weight: u32) -> Result<ExitCode> {
    if deployment.is_none() && weight > 0 {
        bail!(
            "`-weight {weight}` needs `-deployment vN`: the deployment that takes {weight}% of the app's traffic"
        );
    }
    let target = ops::target(env)?;
    if let Some(plugin) = release_plugin(&target)? {
        bail!(
            "`-weight` splits traffic in the URL service's router, but app `{}` releases through its `release` stanza (`{plugin}`)",
            target.app
        );
    }
    let mut session = session::connect().await?;
    let deployment_id = match &deployment {
        Some(d) => {
            ops::resolve_deployment(
                &mut session,
                &target.project,
                &target.app,
                &target.workspace,
                d,
            )
            .await?
        }
        None => String::new(),
    };
    if let Some(d) = deployment.filter(|_| weight > 0 && !env.global.json) {
        say!(
            "Checking that {} {d} is healthy before it takes {weight}% of the traffic...",
            target.app
        );
    }
    let canary = session
        .client
        .set_canary(pb::SetCanaryRequest {
            application: Some(pb::r#ref::Application {
                project: target.project.clone(),
                application: target.app.clone(),
            }),
            workspace: target.workspace.clone(),
            deployment_id,
            weight,
            health_path: health_path(&target),
        })
        .await
        .map_err(|s| anyhow::anyhow!(super::describe_status(&s)))?
        .into_inner();
    if env.global.json {
        crate::render::json(&json(&canary));
    } else if canary.weight == 0 {
        say!(
            "No canary: all of {}'s traffic goes to its live release.",
            target.app
        );
    } else {
        say!("{}", line(&target.app, &canary));
    }
    Ok(ExitCode::SUCCESS)
}

/// The app's canary in force, if any (none from a server that knows no canaries).
pub(crate) async fn of(
    session: &mut Session,
    app: &pb::r#ref::Application,
    workspace: &str,
) -> Option<pb::Canary> {
    session
        .client
        .list_canaries(pb::ListCanariesRequest {
            application: Some(app.clone()),
            workspace: workspace.to_owned(),
        })
        .await
        .ok()?
        .into_inner()
        .canaries
        .into_iter()
        .next()
}

/// `Canary: v2 takes 10% of http://web.localhost:9702/, v1 the other 90%.`
pub(crate) fn line(app: &str, c: &pb::Canary) -> String {
    format!(
        "Canary: {app} {} takes {}% of {}, {} (the live release) the other {}%.",
        format_sequence(c.sequence),
        c.weight,
        c.public_url,
        format_sequence(c.release_sequence),
        100 - c.weight.min(100)
    )
}

/// A canary as JSON.
pub(crate) fn json(c: &pb::Canary) -> serde_json::Value {
    serde_json::json!({
        "deployment_id": c.deployment_id,
        "sequence": c.sequence,
        "weight": c.weight,
        "release_id": c.release_id,
        "release_deployment_id": c.release_deployment_id,
        "release_sequence": c.release_sequence,
        "public_url": c.public_url,
        "updated_ms": c.updated_ms,
    })
}
