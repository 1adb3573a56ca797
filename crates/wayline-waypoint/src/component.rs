//! One component of a Waypoint plugin behind Wayline's [`ComponentHandle`]: its info from
//! `ConfigStruct`, `Documentation` and the main function's `FuncSpec`; `configure` decodes the
//! `use` body into the config struct and sends `Configure`; `call` asks for the function's spec,
//! answers it with typed values and runs it, serving the call's terminal UI through the broker.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use prost_types::Any;
use tonic::transport::Channel;
use wayline_plugin::{
    Call, CallResult, Capability, ComponentHandle, ComponentInfo, ComponentKind, ConfigErrors,
    DeclaredResource, Function, Health, Mapper, PluginError,
};

use crate::config::Shape;
use crate::funcspec::{self, Provided};
use crate::pb::sdk::{self, args};
use crate::process::Process;
use crate::ui::CallUi;
/// How long a process whose call failed with UNKNOWN has to show that it exited.
const REAP_GRACE: Duration = Duration::from_secs(1);

/// How long after a call the host waits for the plugin's terminal output to be forwarded.
const UI_DRAIN: Duration = Duration::from_secs(1);

/// The gRPC client of one component kind.
#[derive(Clone)]
pub(crate) enum Client {
    Builder(sdk::builder_client::BuilderClient<Channel>),
    Registry(sdk::registry_client::RegistryClient<Channel>),
    Platform(sdk::platform_client::PlatformClient<Channel>),
    Release(sdk::release_manager_client::ReleaseManagerClient<Channel>),
}

/// Runs the same method on whichever client it is.
macro_rules! each {
    ($c:expr, $x:ident => $e:expr) => {
        match $c {
            Client::Builder(mut $x) => $e,
            Client::Registry(mut $x) => $e,
            Client::Platform(mut $x) => $e,
            Client::Release(mut $x) => $e,
        }
    };
}

impl Client {
    pub(crate) fn new(kind: ComponentKind, ch: &Channel) -> Option<Self> {
        let ch = ch.clone();
        Some(match kind {
            ComponentKind::Builder => Self::Builder(sdk::builder_client::BuilderClient::new(ch)),
            ComponentKind::Registry => {
                Self::Registry(sdk::registry_client::RegistryClient::new(ch))
            }
            ComponentKind::Platform => {
                Self::Platform(sdk::platform_client::PlatformClient::new(ch))
            }
            ComponentKind::ReleaseManager => {
                Self::Release(sdk::release_manager_client::ReleaseManagerClient::new(ch))
            }
            ComponentKind::ConfigSourcer => return None,
        })
    }

    pub(crate) async fn config_struct(&self) -> Result<sdk::config::StructResp, tonic::Status> {
        Ok(each!(self.clone(), c => c.config_struct(()).await)?.into_inner())
    }

    pub(crate) async fn documentation(&self) -> Result<sdk::config::Documentation, tonic::Status> {
        Ok(each!(self.clone(), c => c.documentation(()).await)?.into_inner())
    }

    async fn configure(&self, json: Vec<u8>) -> Result<(), tonic::Status> {
        let req = sdk::config::ConfigureRequest { json };
        each!(self.clone(), c => c.configure(req).await)?;
        Ok(())
    }

    /// The spec of `f`; `None` when this kind has no such function.
    pub(crate) async fn spec(&self, f: Function) -> Option<Result<sdk::FuncSpec, tonic::Status>> {
        let r = match (self.clone(), f) {
            (Self::Builder(mut c), Function::Build) => c.build_spec(()).await,
            (Self::Registry(mut c), Function::Push) => c.push_spec(()).await,
            (Self::Platform(mut c), Function::Deploy) => c.deploy_spec(()).await,
            (Self::Platform(mut c), Function::Destroy) => c.destroy_spec(()).await,
            (Self::Platform(mut c), Function::Status) => c.status_spec(()).await,
            (Self::Release(mut c), Function::Release) => c.release_spec(()).await,
            (Self::Release(mut c), Function::Destroy) => c.destroy_spec(()).await,
            (Self::Release(mut c), Function::Status) => c.status_spec(()).await,
            _ => return None,
        };
        Some(r.map(tonic::Response::into_inner))
    }

    /// Which optional capabilities the component implements.
    pub(crate) async fn capabilities(&self) -> BTreeSet<Capability> {
        let yes = |r: Result<tonic::Response<sdk::ImplementsResp>, tonic::Status>| {
            r.is_ok_and(|r| r.into_inner().implements)
        };
        let mut caps = BTreeSet::new();
        let (destroy, status) = match self.clone() {
            Self::Platform(mut c) => (yes(c.is_destroyer(()).await), yes(c.is_status(()).await)),
            Self::Release(mut c) => (yes(c.is_destroyer(()).await), yes(c.is_status(()).await)),
            _ => (false, false),
        };
        if destroy {
            caps.insert(Capability::Destroyer);
        }
        if status {
            caps.insert(Capability::Status);
        }
        caps
    }

    /// Runs `f` with `args`.
    async fn run(
        &self,
        f: Function,
        args: sdk::func_spec::Args,
    ) -> Result<CallResult, tonic::Status> {
        let td = |b: &[u8]| serde_json::from_slice(b).unwrap_or(serde_json::Value::Null);
        let to_any = |a: Option<crate::pb::opaqueany::Any>| {
            a.map(|a| Any {
                type_url: a.type_url,
                value: a.value,
            })
        };
        Ok(match (self.clone(), f) {
            (Self::Builder(mut c), Function::Build) => {
                let r = c.build(args).await?.into_inner();
                CallResult {
                    value: to_any(r.result),
                    template_data: td(&r.template_data),
                    ..CallResult::default()
                }
            }
            (Self::Registry(mut c), Function::Push) => {
                let r = c.push(args).await?.into_inner();
                CallResult {
                    value: to_any(r.result),
                    template_data: td(&r.template_data),
                    ..CallResult::default()
                }
            }
            (Self::Platform(mut c), Function::Deploy) => {
                let r = c.deploy(args).await?.into_inner();
                CallResult {
                    value: to_any(r.result),
                    template_data: td(&r.template_data),
                    resources: resources(r.declared_resources),
                    url: r.deployment.map(|d| d.url).filter(|u| !u.is_empty()),
                    ..CallResult::default()
                }
            }
            (Self::Release(mut c), Function::Release) => {
                let r = c.release(args).await?.into_inner();
                CallResult {
                    value: to_any(r.result),
                    template_data: td(&r.template_data),
                    resources: resources(r.declared_resources),
                    url: r.release.map(|d| d.url).filter(|u| !u.is_empty()),
                    ..CallResult::default()
                }
            }
            (Self::Platform(mut c), Function::Destroy) => {
                c.destroy(args).await?;
                CallResult::default()
            }
            (Self::Release(mut c), Function::Destroy) => {
                c.destroy(args).await?;
                CallResult::default()
            }
            (Self::Platform(mut c), Function::Status) => status(c.status(args).await?.into_inner()),
            (Self::Release(mut c), Function::Status) => status(c.status(args).await?.into_inner()),
            _ => return Err(tonic::Status::unimplemented(format!("`{f}`"))),
        })
    }
}

fn resources(r: Option<sdk::DeclaredResources>) -> Vec<DeclaredResource> {
    r.map(|r| r.resources)
        .unwrap_or_default()
        .into_iter()
        .map(|r| DeclaredResource {
            name: r.name,
            r#type: r.r#type,
            platform: r.platform,
            state_json: r.state_json,
            ..DeclaredResource::default()
        })
        .collect()
}

/// Waypoint's health numbers differ from ours (its MISSING is 5, PARTIAL 4): map by meaning.
fn health(h: i32) -> Health {
    use sdk::status_report::Health as W;
    match W::try_from(h).unwrap_or(W::Unknown) {
        W::Unknown => Health::Unknown,
        W::Alive => Health::Alive,
        W::Ready => Health::Ready,
        W::Down => Health::Down,
        W::Missing => Health::Missing,
        W::Partial => Health::Partial,
    }
}

fn status(r: sdk::StatusReport) -> CallResult {
    CallResult {
        resources: r
            .resources
            .into_iter()
            .map(|x| DeclaredResource {
                name: x.name,
                r#type: x.r#type,
                platform: x.platform,
                state_json: x.state_json,
                health: health(x.health) as i32,
                health_message: x.health_message,
                destroyed: false,
            })
            .collect(),
        health: Some(health(r.health)),
        health_message: r.health_message,
        ..CallResult::default()
    }
}

/// A component of a running Waypoint plugin.
pub(crate) struct WaypointHandle {
    pub(crate) plugin: Arc<Process>,
    pub(crate) client: Client,
    pub(crate) info: ComponentInfo,
    pub(crate) shape: Option<Shape>,
    pub(crate) mappers: Vec<Mapper>,
    pub(crate) configured: RwLock<bool>,
}

#[async_trait]
impl ComponentHandle for WaypointHandle {
    fn info(&self) -> &ComponentInfo {
        &self.info
    }

    async fn configure(&self, config: serde_json::Value) -> Result<(), ConfigErrors> {
        let json = match &self.shape {
            Some(s) => s.decode(&config)?,
            None => serde_json::json!({}),
        };
        let bytes = serde_json::to_vec(&json).unwrap_or_default();
        match self.client.configure(bytes).await {
            Ok(()) => {
                *self.configured.write().expect("config lock") = true;
                Ok(())
            }
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::InvalidArgument
                        | tonic::Code::FailedPrecondition
                        | tonic::Code::Unknown
                ) && !self.plugin.exited() =>
            {
                Err(ConfigErrors::one("", s.message()))
            }
            Err(s) => Err(ConfigErrors::one(
                "",
                self.plugin.failure("configure", &s).await,
            )),
        }
    }

    async fn call(&self, call: Call) -> Result<CallResult, PluginError> {
        if !*self.configured.read().expect("config lock") {
            // A handle never configured (a status report or destroy after the job that deployed)
            // still tells the plugin "no config": `{}`, which its required fields may reject, so
            // a refusal is not an error here (Wayline's LocalHandle does the same with `{}`).
            let _ = self.client.configure(b"{}".to_vec()).await;
        }
        let f = call.function;
        let what = format!("plugin `{}` `{f}`", self.info.name);
        let cancel = call.cancel.clone();
        let unsupported = || PluginError::Unsupported {
            component: self.info.label(),
            function: f.to_string(),
        };
        let spec = match self.client.spec(f).await {
            None => return Err(unsupported()),
            Some(Err(s)) if s.code() == tonic::Code::Unimplemented => return Err(unsupported()),
            Some(Err(s)) => {
                return Err(PluginError::Plugin(
                    self.plugin.failure(&format!("{f}Spec"), &s).await,
                ));
            }
            Some(Ok(s)) => s,
        };
        let wants_ui = spec
            .args
            .iter()
            .any(|a| a.r#type == "hashicorp.waypoint.sdk.Args.TerminalUI");
        let (served, drain) = if wants_ui {
            let id = self.plugin.broker.next_id();
            let (svc, drain) = CallUi::server(call.ui.clone());
            let router = tonic::transport::Server::builder().add_service(svc);
            let served = self
                .plugin
                .broker
                .serve(id, router)
                .await
                .map_err(PluginError::Plugin)?;
            (Some((id, served)), Some(drain))
        } else {
            (None, None)
        };
        let provided = provided(&self.info.name, &call, served.as_ref().map(|s| s.0));
        let args = funcspec::resolve(&what, &spec, &provided, &self.mappers)
            .await
            .map_err(|m| PluginError::Input(m.0))?;
        let run = self.client.run(f, sdk::func_spec::Args { args });
        let r = tokio::select! {
            r = run => r,
            () = cancel.cancelled() => return Err(PluginError::Cancelled),
        };
        if let Some(d) = drain {
            d.wait(UI_DRAIN).await;
        }
        drop(served);
        match r {
            Ok(mut res) => {
                if f == Function::Destroy {
                    res.resources = call
                        .resources
                        .into_iter()
                        .map(|mut r| {
                            r.destroyed = true;
                            r
                        })
                        .collect();
                }
                Ok(res)
            }
            Err(s) if s.code() == tonic::Code::Unimplemented => Err(unsupported()),
            Err(s) => {
                // A plugin that died mid-call shows as UNAVAILABLE, or as UNKNOWN (a transport
                // error), a moment before its exit is reaped: UNKNOWN is also what a plugin's
                // own error looks like, so give the process that moment before deciding.
                let died = match s.code() {
                    tonic::Code::Unavailable => true,
                    tonic::Code::Unknown => self.plugin.exits_within(REAP_GRACE).await,
                    _ => self.plugin.exited(),
                };
                if died {
                    Err(PluginError::Plugin(
                        self.plugin.failure(&format!("`{f}`"), &s).await,
                    ))
                } else {
                    Err(PluginError::Failed(format!("{what}: {}", s.message())))
                }
            }
        }
    }
}

/// Everything the host can pass a function: the call's values, and the standard `Args.*`.
fn provided(plugin: &str, call: &Call, ui_stream: Option<u32>) -> Vec<Provided> {
    let core = &call.core;
    let env = |k: &str| core.deployment_env.get(k).cloned().unwrap_or_default();
    let addr = env("WAYLINE_SERVER_ADDR");
    let mut v: Vec<Provided> = call.inputs.iter().cloned().map(Provided::typed).collect();
    v.push(Provided::arg(
        "Source",
        &args::Source {
            app: core.job.app.clone(),
            path: core.source_path.display().to_string(),
        },
    ));
    v.push(Provided::arg(
        "JobInfo",
        &args::JobInfo {
            local: true,
            workspace: core.job.workspace.clone(),
            id: core.job.id.clone(),
            project: core.job.project.clone(),
            app: core.job.app.clone(),
        },
    ));
    // The platform turns these into the WAYPOINT_* variables of the deployment
    // (WAYPOINT_SERVER_ADDR, _SERVER_TLS, _SERVER_TLS_SKIP_VERIFY, _DEPLOYMENT_ID,
    // _CEB_INVITE_TOKEN), which wayline-entrypoint reads like its own.
    v.push(Provided::arg(
        "DeploymentConfig",
        &args::DeploymentConfig {
            id: env("WAYLINE_DEPLOYMENT_ID"),
            server_tls: env("WAYLINE_SERVER_TLS") == "1",
            server_tls_skip_verify: env("WAYLINE_SERVER_TLS_SKIP_VERIFY") == "1",
            server_addr: addr,
            entrypoint_invite_token: env("WAYLINE_ENTRYPOINT_TOKEN"),
            sequence: u32::try_from(core.job.sequence).unwrap_or(u32::MAX),
        },
    ));
    v.push(Provided::arg(
        "LabelSet",
        &args::LabelSet {
            labels: core.labels.clone().into_iter().collect(),
        },
    ));
    v.push(Provided::arg(
        "Logger",
        &args::Logger {
            name: plugin.to_owned(),
        },
    ));
    let dir = |sub: &str| core.data_dir.join(sub).display().to_string();
    v.push(Provided::arg(
        "DataDir.Project",
        &args::data_dir::Project {
            cache_dir: dir("cache"),
            data_dir: dir("data"),
        },
    ));
    v.push(Provided::arg(
        "DataDir.App",
        &args::data_dir::App {
            cache_dir: dir("app-cache"),
            data_dir: dir("app"),
        },
    ));
    v.push(Provided::arg(
        "DataDir.Component",
        &args::data_dir::Component {
            cache_dir: dir(&format!("{plugin}-cache")),
            data_dir: dir(plugin),
        },
    ));
    v.push(Provided::typed(Any {
        type_url: "type.googleapis.com/hashicorp.waypoint.sdk.DeclaredResources".into(),
        value: prost::Message::encode_to_vec(&sdk::DeclaredResources {
            resources: call
                .resources
                .iter()
                .map(|r| sdk::DeclaredResource {
                    name: r.name.clone(),
                    r#type: r.r#type.clone(),
                    platform: r.platform.clone(),
                    state_json: r.state_json.clone(),
                    ..Default::default()
                })
                .collect(),
        }),
    }));
    if let Some(id) = ui_stream {
        v.push(Provided::arg(
            "TerminalUI",
            &args::TerminalUi { stream_id: id },
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use wayline_plugin::{CancellationToken, CoreValues, Ui};

    #[test]
    fn the_deployment_config_carries_the_runners_server_settings() {
        let mut core = CoreValues {
            deployment_env: [
                ("WAYLINE_SERVER_ADDR", "wayline.example:9701"),
                ("WAYLINE_SERVER_TLS", "1"),
                ("WAYLINE_DEPLOYMENT_ID", "01DEP"),
                ("WAYLINE_ENTRYPOINT_TOKEN", "tok"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            ..CoreValues::default()
        };
        core.job.sequence = 4;
        let call = Call::new(
            Function::Deploy,
            core,
            Ui::discard(),
            CancellationToken::new(),
        );
        let all = provided("p", &call, None);
        let dc = all
            .iter()
            .find(|p| p.value.type_url.ends_with("Args.DeploymentConfig"))
            .unwrap();
        let dc: args::DeploymentConfig = prost::Message::decode(dc.value.value.as_slice()).unwrap();
        assert_eq!(
            dc,
            args::DeploymentConfig {
                id: "01DEP".into(),
                server_addr: "wayline.example:9701".into(),
                server_tls: true,
                server_tls_skip_verify: false,
                entrypoint_invite_token: "tok".into(),
                sequence: 4,
            }
        );
        assert!(
            !all.iter()
                .any(|p| p.value.type_url.ends_with("Args.TerminalUI")),
            "no terminal without a stream"
        );
    }
}
