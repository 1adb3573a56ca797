//! An in-process server with a runner attached, a project folder, and helpers to run one job.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wayline_plugin::{
    Builder, BuiltinRegistry, Component, ConfigErrors, Ctx, Mapper, Outcome, PluginError, Value,
};
use wayline_proto::v1::{self as pb, job::State};
use wayline_runner::client::{self, Client, ConnectOptions, ServerAddr};
use wayline_runner::executor::Executor;
use wayline_runner::{Runner, RunnerOptions};
use wayline_server::{RunningServer, ServerOptions};

pub use tokio_util::sync::CancellationToken;

/// The value of the fake `text` builder: not a `wayline.null.Value`, so deploying it with the
/// `null` platform needs the `text-to-null` mapper.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct TextValue {
    #[prost(string, tag = "1")]
    pub text: String,
}

impl Value for TextValue {
    const TYPE_NAME: &'static str = "wayline.test.Text";
}

/// A builder that returns a [`TextValue`].
#[derive(Debug, Clone, Copy)]
pub struct TextBuilder;

/// Config of [`TextBuilder`].
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    #[serde(default)]
    pub text: String,
}

impl Component for TextBuilder {
    type Config = TextConfig;
    type Output = TextValue;

    fn validate(_: &TextConfig) -> Result<(), ConfigErrors> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl Builder for TextBuilder {
    async fn build(&self, _: &Ctx, cfg: &TextConfig) -> Result<Outcome<TextValue>, PluginError> {
        Ok(Outcome::new(TextValue {
            text: cfg.text.clone(),
        }))
    }
}

/// The fake plugin host's plugins.
pub fn fakes(r: &mut BuiltinRegistry) {
    wayline_plugins::null::register(r);
    r.builder("text", TextBuilder);
    r.mapper(
        "text",
        Mapper::new("text-to-null", |t: TextValue| {
            Ok(wayline_plugins::null::NullValue {
                id: format!("mapped:{}", t.text),
                labels: std::collections::HashMap::new(),
            })
        }),
    );
}

/// A server, a runner taking the jobs targeted at it, and a project folder.
pub struct Harness {
    _dir: tempfile::TempDir,
    pub project: PathBuf,
    pub client: Client,
    pub runner_id: String,
    _server: RunningServer,
    shutdown: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Harness {
    /// Starts everything with `wayline.hcl` = `config`.
    pub async fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("server");
        let mut opts = ServerOptions::new(&data);
        opts.listen_grpc = "127.0.0.1:0".parse().unwrap();
        opts.listen_http = "127.0.0.1:0".parse().unwrap();
        let socket = dir.path().join("socket").join("server.sock");
        opts.unix_socket = Some(socket.clone());
        let server = wayline_server::start(opts).await.expect("server starts");
        let mut connect = ConnectOptions::new(ServerAddr::Unix(socket));
        connect.tls = false;
        let channel = client::channel(&connect).await.expect("connect");
        let token = client::with_auth(channel.clone(), client::auth(None).unwrap())
            .bootstrap_token(())
            .await
            .expect("bootstrap")
            .into_inner()
            .token;
        let auth = client::auth(Some(&token)).unwrap();
        let client = client::with_auth(channel, auth.clone());
        let project = dir.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join("wayline.hcl"), config).unwrap();
        let runner_id = wayline_core::id::new_id();
        let executor = Executor::local()
            .with_builtins(fakes)
            .with_data_root(dir.path().join("runner"));
        let runner = Runner::new(
            client.clone(),
            auth,
            RunnerOptions {
                id: runner_id.clone(),
                labels: std::collections::HashMap::new(),
                by_id_only: true,
                local: true,
                concurrency: 1,
                server_wait: Duration::from_secs(5),
            },
            Arc::new(executor),
        );
        let shutdown = CancellationToken::new();
        tokio::spawn(runner.run(shutdown.clone()));
        Self {
            _dir: dir,
            project,
            client,
            runner_id,
            _server: server,
            shutdown,
        }
    }

    /// A job of `app` in project `p` running `op` from the project folder on this runner.
    pub fn job(&self, app: &str, op: pb::job::Operation) -> pb::Job {
        pb::Job {
            application: Some(pb::r#ref::Application {
                project: "p".into(),
                application: app.into(),
            }),
            workspace: "default".into(),
            operation: Some(op),
            data_source: Some(pb::DataSource {
                source: Some(pb::data_source::Source::Local(pb::data_source::Local {
                    path: self.project.display().to_string(),
                })),
            }),
            target_runner: Some(pb::TargetRunner {
                target: Some(pb::target_runner::Target::Id(self.runner_id.clone())),
            }),
            ..Default::default()
        }
    }

    /// Queues `job` and returns its id.
    pub async fn queue(&self, job: pb::Job) -> String {
        self.client
            .clone()
            .queue_job(pb::QueueJobRequest {
                job: Some(job),
                expires_in: String::new(),
            })
            .await
            .expect("queue")
            .into_inner()
            .job_id
    }

    /// The job now.
    pub async fn get_job(&self, id: &str) -> pb::Job {
        self.client
            .clone()
            .get_job(pb::GetJobRequest {
                job_id: id.to_owned(),
            })
            .await
            .expect("get job")
            .into_inner()
    }

    /// Waits (at most 30 s) until job `id` reaches `pred`, failing with its last state.
    pub async fn wait_for(&self, id: &str, what: &str, pred: impl Fn(&pb::Job) -> bool) -> pb::Job {
        let started = Instant::now();
        loop {
            let job = self.get_job(id).await;
            if pred(&job) {
                return job;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "job {id} never {what}; last seen: {job:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a job to its end.
    pub async fn run(&self, app: &str, op: pb::job::Operation) -> pb::Job {
        let id = self.queue(self.job(app, op)).await;
        self.wait_for(&id, "ended", |j| wayline_core::jobs::is_terminal(j.state()))
            .await
    }

    /// Runs a job and asserts it succeeded.
    pub async fn ok(&self, app: &str, op: pb::job::Operation) -> pb::Job {
        let job = self.run(app, op).await;
        assert_eq!(job.state(), State::Success, "{:?}", job.error);
        job
    }

    /// Records of `kind` of app `app`, newest first.
    pub async fn records(&self, app: &str, kind: pb::OperationKind) -> Vec<pb::Operation> {
        let req = pb::ListOperationsRequest {
            application: Some(pb::r#ref::Application {
                project: "p".into(),
                application: app.into(),
            }),
            workspace: "default".into(),
            ..Default::default()
        };
        let mut c = self.client.clone();
        let mut ops = match kind {
            pb::OperationKind::Build => c.list_builds(req).await,
            pb::OperationKind::PushedArtifact => c.list_pushed_artifacts(req).await,
            pb::OperationKind::Deployment => c.list_deployments(req).await,
            pb::OperationKind::Release => c.list_releases(req).await,
            _ => c.list_status_reports(req).await,
        }
        .expect("list")
        .into_inner()
        .operations;
        ops.sort_by_key(|o| std::cmp::Reverse(o.sequence));
        ops
    }
}

impl Harness {
    /// The lines and statuses job `id` printed, one per line.
    pub async fn output(&self, id: &str) -> String {
        use pb::get_job_stream_response::Event as E;
        use pb::terminal_event::Event as T;
        let mut stream = self
            .client
            .clone()
            .get_job_stream(pb::GetJobStreamRequest {
                job_id: id.to_owned(),
            })
            .await
            .expect("job stream")
            .into_inner();
        let mut out = String::new();
        while let Ok(Ok(Some(msg))) =
            tokio::time::timeout(Duration::from_secs(10), stream.message()).await
        {
            match msg.event {
                Some(E::Terminal(t)) => {
                    for ev in t.events {
                        match ev.event {
                            Some(T::Line(l)) => out.push_str(&l.msg),
                            Some(T::Status(s)) => out.push_str(&s.msg),
                            _ => continue,
                        }
                        out.push('\n');
                    }
                }
                Some(E::Complete(_)) => break,
                _ => {}
            }
        }
        out
    }
}

/// An `up` that releases and prunes, keeping `retain` older deployments.
pub fn up(retain: i32) -> pb::job::Operation {
    pb::job::Operation::Up(pb::UpOp {
        release: true,
        prune: true,
        prune_retain: retain,
        prune_runner_id: String::new(),
    })
}
