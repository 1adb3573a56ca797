//! `wayline-bench fleet`: one server holding thousands of connected entrypoints.
//!
//! Simulated entrypoints speak the real protocol with real entrypoint tokens: each instance has
//! its own connection to the server's unix socket (as a local deployment's entrypoint has), an
//! `EntrypointConfig` stream and an idle `EntrypointLogStream`. The scenario measures the
//! server's RSS and idle CPU with all of them connected, how long a project-scope `config set`
//! takes to reach every instance, and log delivery from 1,000 logging instances to 100
//! followers. The server is the real release binary in its own process; the bench process only
//! plays the entrypoints, so the server's figures are its own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use wayline_proto::prost_types::Timestamp;
use wayline_proto::v1::{self as pb, wayline_client::WaylineClient};

use crate::{Opts, rss_kib};

/// Instances per deployment (the server allows 64).
const PER_DEPLOYMENT: usize = 50;
/// Connections opened at once while the fleet comes up.
const DIAL_CONCURRENCY: usize = 256;
/// The variable whose value marks each `config set` round.
const ROUND_VAR: &str = "FLEET_ROUND";

type Client = WaylineClient<Channel>;

/// The scenario's knobs: `wayline-bench fleet [--instances N]`.
pub(crate) struct FleetOpts {
    pub instances: usize,
    pub loggers: usize,
    pub followers: usize,
    pub log_seconds: u64,
}

impl Default for FleetOpts {
    fn default() -> Self {
        FleetOpts {
            instances: 10_000,
            loggers: 1_000,
            followers: 100,
            log_seconds: 10,
        }
    }
}

/// The server under test, stopped on drop.
struct Server {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
}

impl Server {
    fn start(wayline: &Path) -> Server {
        let dir = std::env::temp_dir().join(format!("wayline-bench-fleet-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let socket = dir.join("socket/server.sock");
        let child = Command::new(wayline)
            .args(["server", "run", "--data-dir"])
            .arg(&dir)
            .args([
                "--listen-grpc",
                "127.0.0.1:0",
                "--listen-http",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        Server { child, dir, socket }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// CPU time (user + system) of a process, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `)` that closes the command name: utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // Linux reports in USER_HZ, 100 on every architecture Rust targets here.
    Duration::from_millis(ticks * 10)
}

async fn dial(socket: &Path) -> Result<Client, String> {
    let channel = Endpoint::from_shared(format!("unix://{}", socket.display()))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| format!("dial: {e:?}"))?;
    Ok(WaylineClient::new(channel))
}

fn authed<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    let v: MetadataValue<_> = format!("Bearer {token}").parse().expect("token header");
    req.metadata_mut().insert("authorization", v);
    req
}

fn now_ts() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

fn age(ts: Option<&Timestamp>) -> Option<Duration> {
    let ts = ts?;
    let sent = SystemTime::UNIX_EPOCH
        + Duration::new(
            u64::try_from(ts.seconds).ok()?,
            u32::try_from(ts.nanos).ok()?,
        );
    SystemTime::now().duration_since(sent).ok()
}

/// The admin's client and the deployments (id, entrypoint token) the fleet belongs to.
struct Catalog {
    admin: Client,
    admin_token: String,
    deployments: Vec<(String, String)>,
}

async fn catalog(socket: &Path, instances: usize) -> Catalog {
    let mut admin = dial(socket).await.expect("dial the server");
    let admin_token = admin
        .bootstrap_token(())
        .await
        .expect("bootstrap")
        .into_inner()
        .token;
    let app = Some(pb::r#ref::Application {
        project: "fleet".into(),
        application: "web".into(),
    });
    admin
        .upsert_project(authed(
            pb::UpsertProjectRequest {
                project: Some(pb::Project {
                    name: "fleet".into(),
                    applications: vec![pb::Application {
                        name: "web".into(),
                        project: "fleet".into(),
                    }],
                    ..Default::default()
                }),
            },
            &admin_token,
        ))
        .await
        .expect("upsert project");
    let mut deployments = Vec::new();
    for _ in 0..instances.div_ceil(PER_DEPLOYMENT) {
        let dep = admin
            .upsert_deployment(authed(
                pb::UpsertOperationRequest {
                    operation: Some(pb::Operation {
                        application: app.clone(),
                        ..Default::default()
                    }),
                },
                &admin_token,
            ))
            .await
            .expect("upsert deployment")
            .into_inner();
        let token = admin
            .generate_entrypoint_token(authed(
                pb::GenerateEntrypointTokenRequest {
                    deployment_id: dep.id.clone(),
                    expires_in: String::new(),
                },
                &admin_token,
            ))
            .await
            .expect("entrypoint token")
            .into_inner()
            .token;
        deployments.push((dep.id, token));
    }
    Catalog {
        admin,
        admin_token,
        deployments,
    }
}

/// A config set, as seen by one instance: the round number and when it arrived.
type Arrival = (u64, Instant);

/// One simulated entrypoint: connected, its config stream watched, its log stream open.
struct Instance {
    deployment_id: String,
    id: String,
    /// Keeps the instance's connection open.
    _client: Client,
    logs: mpsc::Sender<pb::EntrypointLogBatch>,
}

async fn connect_instance(
    socket: PathBuf,
    deployment_id: String,
    token: String,
    index: usize,
    arrivals: mpsc::UnboundedSender<Arrival>,
) -> Result<Instance, String> {
    let mut client = dial(&socket).await?;
    let instance_id = format!("fleet-{index:06}");
    let mut config = client
        .entrypoint_config(authed(
            pb::EntrypointConfigRequest {
                deployment_id: deployment_id.clone(),
                instance_id: instance_id.clone(),
                exec_disabled: true,
            },
            &token,
        ))
        .await
        .map_err(|e| format!("EntrypointConfig: {e}"))?
        .into_inner();
    config
        .message()
        .await
        .map_err(|e| format!("first config: {e}"))?
        .ok_or("the config stream ended at once")?;
    tokio::spawn(async move {
        while let Ok(Some(msg)) = config.message().await {
            let round = msg
                .config
                .unwrap_or_default()
                .config_vars
                .iter()
                .find(|v| v.name == ROUND_VAR)
                .and_then(|v| match &v.value {
                    Some(pb::config_var::Value::Static(s)) => s.parse().ok(),
                    _ => None,
                });
            if let Some(round) = round
                && arrivals.send((round, Instant::now())).is_err()
            {
                return;
            }
        }
    });
    let (logs, rx) = mpsc::channel(64);
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut log_client = client.clone();
    let log_token = token.clone();
    tokio::spawn(async move {
        let _ = log_client
            .entrypoint_log_stream(authed(stream, &log_token))
            .await;
    });
    Ok(Instance {
        deployment_id,
        id: instance_id,
        _client: client,
        logs,
    })
}

async fn bring_up(
    socket: &Path,
    cat: &Catalog,
    n: usize,
) -> (Vec<Instance>, mpsc::UnboundedReceiver<Arrival>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sem = Arc::new(tokio::sync::Semaphore::new(DIAL_CONCURRENCY));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (dep, token) = cat.deployments[i / PER_DEPLOYMENT].clone();
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        let socket = socket.to_owned();
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let r = connect_instance(socket, dep, token, i, tx).await;
            drop(permit);
            r
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(
            t.await
                .expect("join")
                .unwrap_or_else(|e| panic!("instance: {e}")),
        );
    }
    (out, rx)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// `config set` at project scope, `rounds` times: how long until every instance has it.
async fn config_fanout(
    cat: &mut Catalog,
    n: usize,
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
) {
    for round in 1..=5u64 {
        let started = Instant::now();
        cat.admin
            .set_config(authed(
                pb::SetConfigRequest {
                    variables: vec![pb::ConfigVar {
                        scope: pb::config_var::Scope::Project.into(),
                        project: "fleet".into(),
                        name: ROUND_VAR.into(),
                        value: Some(pb::config_var::Value::Static(round.to_string())),
                        ..Default::default()
                    }],
                },
                &cat.admin_token,
            ))
            .await
            .expect("set config");
        let mut lat = Vec::with_capacity(n);
        let deadline = started + Duration::from_mins(1);
        while lat.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, arrivals.recv()).await {
                Ok(Some((r, at))) if r == round => lat.push(at - started),
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        lat.sort();
        println!(
            "{:<44} p50 {:>8.1} ms   p99 {:>8.1} ms   all {:>8.1} ms   ({} of {n} instances; goal p99 < 2000 ms)",
            format!("config set → instances, round {round}"),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
            lat.len()
        );
    }
}

/// What the followers counted.
#[derive(Clone)]
struct Tally {
    received: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    latency: mpsc::UnboundedSender<Duration>,
}

/// Follows one instance's logs from now on, counting into `tally`.
async fn follow(
    socket: &Path,
    admin_token: &str,
    inst: &Instance,
    tally: Tally,
) -> tokio::task::JoinHandle<()> {
    let mut c = dial(socket).await.expect("dial a follower");
    let req = pb::GetLogStreamRequest {
        application: Some(pb::r#ref::Application {
            project: "fleet".into(),
            application: "web".into(),
        }),
        deployment_id: inst.deployment_id.clone(),
        instance_id: inst.id.clone(),
        follow: true,
        since: Some(now_ts()),
        ..Default::default()
    };
    let mut stream = c
        .get_log_stream(authed(req, admin_token))
        .await
        .expect("follow")
        .into_inner();
    tokio::spawn(async move {
        while let Ok(Some(batch)) = stream.message().await {
            tally.dropped.fetch_add(batch.dropped, Ordering::Relaxed);
            // The "… N lines dropped" line stands for lost lines, not for one received.
            let marker = usize::from(batch.dropped > 0);
            for line in &batch.lines[marker.min(batch.lines.len())..] {
                tally.received.fetch_add(1, Ordering::Relaxed);
                if let Some(a) = age(line.timestamp.as_ref()) {
                    let _ = tally.latency.send(a);
                }
            }
        }
    })
}

/// One instance writing 10-line batches every 100 ms until `end`, counting them into `sent`.
fn write_logs(
    inst: &Instance,
    end: Instant,
    sent: Option<Arc<AtomicU64>>,
) -> tokio::task::JoinHandle<()> {
    let tx = inst.logs.clone();
    let dep = inst.deployment_id.clone();
    let id = inst.id.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut seq = 0u64;
        while Instant::now() < end {
            tick.tick().await;
            let lines = (0..10)
                .map(|_| {
                    seq += 1;
                    pb::LogLine {
                        timestamp: Some(now_ts()),
                        line: format!("{id} line {seq}"),
                        ..Default::default()
                    }
                })
                .collect();
            let batch = pb::EntrypointLogBatch {
                deployment_id: dep.clone(),
                instance_id: id.clone(),
                lines,
                ..Default::default()
            };
            if tx.send(batch).await.is_err() {
                return;
            }
            if let Some(c) = &sent {
                c.fetch_add(10, Ordering::Relaxed);
            }
        }
    })
}

/// `loggers` instances write 100 lines/s each for `seconds`; `followers` of them are followed.
async fn log_delivery(socket: &Path, admin_token: &str, fleet: &[Instance], o: &FleetOpts) {
    let loggers = &fleet[..o.loggers.min(fleet.len())];
    let received = Arc::new(AtomicU64::new(0));
    let reported_dropped = Arc::new(AtomicU64::new(0));
    let (lat_tx, mut lat_rx) = mpsc::unbounded_channel::<Duration>();
    let tally = Tally {
        received: received.clone(),
        dropped: reported_dropped.clone(),
        latency: lat_tx,
    };
    let step = (loggers.len() / o.followers.max(1)).max(1);
    let mut follows = Vec::new();
    for inst in loggers.iter().step_by(step).take(o.followers) {
        follows.push(follow(socket, admin_token, inst, tally.clone()).await);
    }
    drop(tally);
    let followed: Vec<&str> = loggers
        .iter()
        .step_by(step)
        .take(o.followers)
        .map(|i| i.id.as_str())
        .collect();
    let sent_followed = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(o.log_seconds);
    let writers: Vec<_> = loggers
        .iter()
        .map(|inst| {
            let counted = followed
                .contains(&inst.id.as_str())
                .then(|| sent_followed.clone());
            write_logs(inst, end, counted)
        })
        .collect();
    for w in writers {
        let _ = w.await;
    }
    // Lines in flight when the writers stop: give them a bounded moment to arrive.
    let want = sent_followed.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(5);
    while received.load(Ordering::Relaxed) + reported_dropped.load(Ordering::Relaxed) < want
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for f in follows {
        f.abort();
    }
    let mut lat = Vec::new();
    while let Ok(d) = lat_rx.try_recv() {
        lat.push(d);
    }
    lat.sort();
    let got = received.load(Ordering::Relaxed);
    let dropped = reported_dropped.load(Ordering::Relaxed);
    println!(
        "{:<44} sent {want}  received {got}  reported dropped {dropped}  unaccounted {}",
        format!(
            "logs: {} writers × 100 lines/s, {} followers",
            loggers.len(),
            followed.len()
        ),
        want.saturating_sub(got + dropped)
    );
    println!(
        "{:<44} p50 {:>8.1} ms   p99 {:>8.1} ms   (n={}; goal p99 < 100 ms, no unaccounted loss)",
        "log line → follower latency",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.len()
    );
}

pub(crate) fn bench_fleet(o: &Opts, f: &FleetOpts) {
    let server = Server::start(&o.wayline);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let mut cat = catalog(&server.socket, f.instances).await;
        let rss_empty = rss_kib(server.pid());
        let t = Instant::now();
        let (fleet, mut arrivals) = bring_up(&server.socket, &cat, f.instances).await;
        println!(
            "{:<44} {:>8.1} s   ({} instances over {} deployments)",
            "fleet connected in",
            t.elapsed().as_secs_f64(),
            fleet.len(),
            cat.deployments.len()
        );
        // Idle: measured after the connect burst has settled.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let cpu0 = cpu_time(server.pid());
        let idle = Duration::from_secs(10);
        tokio::time::sleep(idle).await;
        let cpu = cpu_time(server.pid()).saturating_sub(cpu0);
        let rss = rss_kib(server.pid());
        println!(
            "{:<44} {:>8.1} MiB   (empty {:.1} MiB; {:.1} KiB per instance; goal < 1024 MiB)",
            format!("server RSS, {} connected instances", fleet.len()),
            rss as f64 / 1024.0,
            rss_empty as f64 / 1024.0,
            rss.saturating_sub(rss_empty) as f64 / fleet.len().max(1) as f64
        );
        println!(
            "{:<44} {:>8.2} %    (goal < 5 % of one core)",
            "server idle CPU",
            cpu.as_secs_f64() / idle.as_secs_f64() * 100.0
        );
        config_fanout(&mut cat, fleet.len(), &mut arrivals).await;
        log_delivery(&server.socket, &cat.admin_token, &fleet, f).await;
    });
}
