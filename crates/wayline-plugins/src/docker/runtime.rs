//! What the docker platform offers on a running deployment besides status: a non-interactive
//! `exec` inside its container and its logs from the engine (useful when the image runs without
//! `wayline-entrypoint`).

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use bollard::query_parameters::LogsOptions;
use futures::StreamExt;
use wayline_plugin::{Ctx, Execer, LogPlatform, PluginError, pb};

use super::config::PlatformConfig;
use super::deploy::DockerPlatform;
use super::engine::{self, DockerError, api};
use super::fail;
use super::values::Deployment;

/// Runs `args` in the container with `env` added; returns exit code, stdout and stderr.
pub async fn exec(
    docker: &Docker,
    container: &str,
    args: Vec<String>,
    env: Vec<String>,
) -> Result<pb::ExecResult, DockerError> {
    let config = ExecConfig {
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        cmd: Some(args),
        env: Some(env).filter(|e| !e.is_empty()),
        ..ExecConfig::default()
    };
    let created = docker
        .create_exec(container, config)
        .await
        .map_err(api(format!(
            "starting a command in container `{container}`"
        )))?;
    let mut result = pb::ExecResult::default();
    let options = StartExecOptions {
        detach: false,
        tty: false,
        output_capacity: None,
    };
    if let StartExecResults::Attached { mut output, .. } = docker
        .start_exec(&created.id, Some(options))
        .await
        .map_err(api(format!(
            "starting a command in container `{container}`"
        )))?
    {
        while let Some(chunk) = output.next().await {
            match chunk.map_err(api(format!(
                "reading a command's output in container `{container}`"
            )))? {
                LogOutput::StdErr { message } => result.stderr.extend_from_slice(&message),
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    result.stdout.extend_from_slice(&message);
                }
                LogOutput::StdIn { .. } => {}
            }
        }
    }
    let inspect = docker.inspect_exec(&created.id).await.map_err(api(format!(
        "reading a command's exit code in container `{container}`"
    )))?;
    result.exit_code = inspect.exit_code.unwrap_or(-1) as i32;
    Ok(result)
}

/// Milliseconds since the epoch of an engine timestamp, `2026-11-25T14:49:32.123456789Z`.
pub fn parse_timestamp(ts: &str) -> Option<i64> {
    let (date, time) = ts.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let millis: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + millis)
}

/// The container's log lines, oldest first.
pub async fn logs(
    docker: &Docker,
    container: &str,
    request: &pb::LogsRequest,
) -> Result<pb::LogBatch, DockerError> {
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        timestamps: true,
        since: i32::try_from(request.since_unix_ms / 1000).unwrap_or(0),
        tail: if request.limit == 0 {
            "all".to_owned()
        } else {
            request.limit.to_string()
        },
        ..LogsOptions::default()
    };
    let mut stream = docker.logs(container, Some(options));
    let mut batch = pb::LogBatch::default();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(api(format!("reading the logs of container `{container}`")))?;
        let (source, bytes) = match chunk {
            LogOutput::StdErr { message } => ("stderr", message),
            LogOutput::StdOut { message } | LogOutput::Console { message } => ("stdout", message),
            LogOutput::StdIn { .. } => continue,
        };
        for raw in String::from_utf8_lossy(&bytes).lines() {
            let (ts, line) = raw.split_once(' ').unwrap_or(("", raw));
            let timestamp_unix_ms = parse_timestamp(ts).unwrap_or(0);
            if timestamp_unix_ms < request.since_unix_ms {
                continue;
            }
            batch.lines.push(pb::LogLine {
                timestamp_unix_ms,
                line: line.to_owned(),
                source: source.to_owned(),
            });
        }
    }
    Ok(batch)
}

#[async_trait]
impl Execer for DockerPlatform {
    async fn exec(
        &self,
        _ctx: &Ctx,
        config: &PlatformConfig,
        value: Deployment,
        request: pb::ExecRequest,
    ) -> Result<pb::ExecResult, PluginError> {
        if request.args.is_empty() {
            return Err(PluginError::Input("exec needs a command".to_owned()));
        }
        let docker = engine::connect(config.client_config.as_ref())
            .await
            .map_err(fail)?;
        let mut env: Vec<String> = request
            .env
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        env.sort();
        exec(&docker, &value.container_id, request.args, env)
            .await
            .map_err(fail)
    }
}

#[async_trait]
impl LogPlatform for DockerPlatform {
    async fn logs(
        &self,
        _ctx: &Ctx,
        config: &PlatformConfig,
        value: Deployment,
        request: pb::LogsRequest,
    ) -> Result<pb::LogBatch, PluginError> {
        let docker = engine::connect(config.client_config.as_ref())
            .await
            .map_err(fail)?;
        logs(&docker, &value.container_id, &request)
            .await
            .map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_timestamps_parse_to_unix_millis() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_timestamp("2026-11-25T14:49:32.123456789Z"),
            Some(1_795_618_172_123)
        );
        assert_eq!(
            parse_timestamp("2000-03-01T00:00:01.5Z"),
            Some(951_868_801_500)
        );
        assert_eq!(parse_timestamp("not a time"), None);
    }
}
