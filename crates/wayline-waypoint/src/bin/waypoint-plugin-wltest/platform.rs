//! The test plugin's platform: deploys an artifact as a file in the source dir.

use tonic::{Request, Response, Status};
use wayline_waypoint::pb::sdk::{self, args, func_spec, platform_server::Platform};

use super::{ARTIFACT, Artifact, CallArgs, DEPLOYMENT, Deployment, Plugin, log, pack, spec};

type Args = Request<func_spec::Args>;

fn no<T>(what: &str) -> Result<Response<T>, Status> {
    Err(Status::unimplemented(format!(
        "plugin does not implement: {what}"
    )))
}

fn implements(yes: bool) -> Result<Response<sdk::ImplementsResp>, Status> {
    Ok(Response::new(sdk::ImplementsResp { implements: yes }))
}

#[tonic::async_trait]
impl Platform for Plugin {
    async fn is_authenticator(
        &self,
        _: Request<()>,
    ) -> Result<Response<sdk::ImplementsResp>, Status> {
        implements(false)
    }
    async fn auth(&self, _: Args) -> Result<Response<sdk::auth::AuthResponse>, Status> {
        no("auth")
    }
    async fn auth_spec(&self, _: Request<()>) -> Result<Response<sdk::FuncSpec>, Status> {
        no("auth")
    }
    async fn validate_auth(&self, _: Args) -> Result<Response<()>, Status> {
        no("auth")
    }
    async fn validate_auth_spec(&self, _: Request<()>) -> Result<Response<sdk::FuncSpec>, Status> {
        no("auth")
    }
    async fn config_struct(
        &self,
        _: Request<()>,
    ) -> Result<Response<sdk::config::StructResp>, Status> {
        Ok(Response::new(super::config_struct()))
    }
    async fn configure(
        &self,
        r: Request<sdk::config::ConfigureRequest>,
    ) -> Result<Response<()>, Status> {
        Self::configure(&self.platform_cfg, &r.into_inner().json)
    }
    async fn documentation(
        &self,
        _: Request<()>,
    ) -> Result<Response<sdk::config::Documentation>, Status> {
        Ok(Response::new(super::documentation(
            "Deploys a test artifact as a file in the source directory.",
        )))
    }
    async fn deploy_spec(&self, _: Request<()>) -> Result<Response<sdk::FuncSpec>, Status> {
        let need = self.platform_cfg.lock().unwrap().str("Need");
        // Deliberately not in the order the host would list them: matching is by type.
        let mut want = vec![
            "hashicorp.waypoint.sdk.Args.DeploymentConfig",
            ARTIFACT,
            "hashicorp.waypoint.sdk.Args.TerminalUI",
            "hashicorp.waypoint.sdk.Args.Source",
            "hashicorp.waypoint.sdk.Args.JobInfo",
        ];
        if !need.is_empty() {
            want.push(need.as_str());
        }
        Ok(Response::new(spec("deploy", &want, &[DEPLOYMENT])))
    }
    async fn deploy(&self, r: Args) -> Result<Response<sdk::deploy::Resp>, Status> {
        let a = CallArgs(r.into_inner().args);
        let cfg = self.platform_cfg.lock().unwrap().clone();
        let art: Artifact = a.get(ARTIFACT)?;
        let dc: args::DeploymentConfig = a.get("hashicorp.waypoint.sdk.Args.DeploymentConfig")?;
        let src: args::Source = a.get("hashicorp.waypoint.sdk.Args.Source")?;
        let term = self.term(&a).await?;
        term.status("", "Deploying...").await;
        if cfg.json["Crash"] == true {
            log("error", "crashing on purpose");
            std::process::exit(3);
        }
        let path = std::path::Path::new(&src.path).join(format!("wltest-v{}.txt", dc.sequence));
        let body = format!(
            "{}\n{}\nWAYPOINT_SERVER_ADDR={}\nWAYPOINT_DEPLOYMENT_ID={}\nWAYPOINT_CEB_INVITE_TOKEN={}\n",
            cfg.str("Message"),
            art.message,
            dc.server_addr,
            dc.id,
            dc.entrypoint_invite_token
        );
        std::fs::write(&path, body).map_err(|e| Status::internal(e.to_string()))?;
        term.line(&format!("wrote {}", path.display())).await;
        term.status("success", "Deployed").await;
        term.close().await;
        let path = path.display().to_string();
        let d = Deployment {
            id: dc.id,
            path: path.clone(),
        };
        Ok(Response::new(sdk::deploy::Resp {
            result: Some(pack(DEPLOYMENT, &d)),
            result_json: serde_json::json!({"path": path}).to_string(),
            deployment: Some(sdk::Deploy { url: String::new() }),
            template_data: serde_json::to_vec(&serde_json::json!({"path": path})).unwrap(),
            declared_resources: Some(sdk::DeclaredResources {
                resources: vec![sdk::DeclaredResource {
                    name: "file".into(),
                    r#type: "file".into(),
                    platform: "wltest".into(),
                    state_json: serde_json::json!({"path": path}).to_string(),
                    ..Default::default()
                }],
            }),
        }))
    }
    async fn default_releaser_spec(
        &self,
        _: Request<()>,
    ) -> Result<Response<sdk::FuncSpec>, Status> {
        no("default releaser")
    }
    async fn default_releaser(
        &self,
        _: Args,
    ) -> Result<Response<sdk::default_releaser::Resp>, Status> {
        no("default releaser")
    }
    async fn is_destroyer(&self, _: Request<()>) -> Result<Response<sdk::ImplementsResp>, Status> {
        implements(true)
    }
    async fn destroy_spec(&self, _: Request<()>) -> Result<Response<sdk::FuncSpec>, Status> {
        Ok(Response::new(spec(
            "destroy",
            &["hashicorp.waypoint.sdk.Args.TerminalUI", DEPLOYMENT],
            &[],
        )))
    }
    async fn destroy(&self, r: Args) -> Result<Response<sdk::destroy::Resp>, Status> {
        let a = CallArgs(r.into_inner().args);
        let d: Deployment = a.get(DEPLOYMENT)?;
        let term = self.term(&a).await?;
        let _ = std::fs::remove_file(&d.path);
        term.status("success", &format!("Removed {}", d.path)).await;
        term.close().await;
        Ok(Response::new(sdk::destroy::Resp::default()))
    }
    async fn is_workspace_destroyer(
        &self,
        _: Request<()>,
    ) -> Result<Response<sdk::ImplementsResp>, Status> {
        implements(false)
    }
    async fn destroy_workspace_spec(
        &self,
        _: Request<()>,
    ) -> Result<Response<sdk::FuncSpec>, Status> {
        no("workspace destroyer")
    }
    async fn destroy_workspace(&self, _: Args) -> Result<Response<()>, Status> {
        no("workspace destroyer")
    }
    async fn is_execer(&self, _: Request<()>) -> Result<Response<sdk::ImplementsResp>, Status> {
        implements(false)
    }
    async fn exec_spec(&self, _: Request<()>) -> Result<Response<sdk::FuncSpec>, Status> {
        no("exec")
    }
    async fn exec(&self, _: Args) -> Result<Response<sdk::ExecResult>, Status> {
        no("exec")
    }
    async fn is_log_platform(
        &self,
        _: Request<()>,
    ) -> Result<Response<sdk::ImplementsResp>, Status> {
        implements(false)
    }
    async fn logs_spec(&self, _: Request<()>) -> Result<Response<sdk::FuncSpec>, Status> {
        no("logs")
    }
    async fn logs(&self, _: Args) -> Result<Response<()>, Status> {
        no("logs")
    }
    async fn is_generation(&self, _: Request<()>) -> Result<Response<sdk::ImplementsResp>, Status> {
        implements(false)
    }
    async fn generation_spec(&self, _: Request<()>) -> Result<Response<sdk::FuncSpec>, Status> {
        no("generation")
    }
    async fn generation(&self, _: Args) -> Result<Response<sdk::generation::Resp>, Status> {
        no("generation")
    }
    async fn is_status(&self, _: Request<()>) -> Result<Response<sdk::ImplementsResp>, Status> {
        implements(true)
    }
    async fn status_spec(&self, _: Request<()>) -> Result<Response<sdk::FuncSpec>, Status> {
        Ok(Response::new(spec("status", &[DEPLOYMENT], &[])))
    }
    async fn status(&self, r: Args) -> Result<Response<sdk::StatusReport>, Status> {
        let a = CallArgs(r.into_inner().args);
        let d: Deployment = a.get(DEPLOYMENT)?;
        let up = std::path::Path::new(&d.path).exists();
        let health = if up {
            sdk::status_report::Health::Ready
        } else {
            sdk::status_report::Health::Missing
        };
        Ok(Response::new(sdk::StatusReport {
            resources: vec![sdk::status_report::Resource {
                name: "file".into(),
                health: health as i32,
                health_message: if up {
                    "the file exists"
                } else {
                    "the file is gone"
                }
                .into(),
                ..Default::default()
            }],
            health: health as i32,
            health_message: if up { "deployed" } else { "the file is gone" }.into(),
            ..Default::default()
        }))
    }
}
