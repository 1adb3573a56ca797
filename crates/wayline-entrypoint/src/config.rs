//! From the server's config to what the app sees: env vars and files, dynamic values resolved
//! here, refreshed on an interval and whenever a watched etcd key changes. Values that cannot be
//! resolved are logged and reported (see [`run`]) so they show on the deployment's status.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;
use wayline_proto::v1::{ConfigSource, ConfigVar, EntrypointConfig, config_var};

use crate::dynamic;
use crate::etcd_watch::{Watches, keys_of};

/// The parts of an `EntrypointConfig` that shape the app (exec requests are handled apart).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerConfig {
    /// Resolved variables, dynamic ones still to resolve.
    pub vars: Vec<ConfigVar>,
    /// Config sources (e.g. the etcd endpoints).
    pub sources: Vec<ConfigSource>,
    /// Signal sent to the app when only files changed.
    pub file_change_signal: String,
}

impl From<&EntrypointConfig> for ServerConfig {
    fn from(c: &EntrypointConfig) -> Self {
        ServerConfig {
            vars: c.config_vars.clone(),
            sources: c.config_sources.clone(),
            file_change_signal: c.file_change_signal.clone(),
        }
    }
}

impl ServerConfig {
    fn has_dynamic(&self) -> bool {
        self.vars
            .iter()
            .any(|v| matches!(v.value, Some(config_var::Value::Dynamic(_))))
    }
}

/// What the app gets from the server, values final.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppConfig {
    /// Exported env vars.
    pub env: BTreeMap<String, String>,
    /// Files to write before start, by path.
    pub files: BTreeMap<PathBuf, String>,
    /// Signal for a files-only change (empty: none).
    pub file_change_signal: String,
}

/// Resolves server configs, remembering each dynamic value's last good value so that a source
/// that is briefly down doesn't restart the app with the variable missing.
#[derive(Debug, Default)]
pub struct Resolver {
    last_good: HashMap<(String, bool), String>,
    errors: Vec<String>,
    /// The failure last logged per value: a lasting one is logged once, not at every refresh.
    logged: HashMap<(String, bool), String>,
}

impl Resolver {
    /// The values the last [`Resolver::resolve`] could not resolve, as `NAME: why`.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// Resolves every variable; failures are listed in [`Resolver::errors`] and logged (and
    /// shipped) with the variable's name when they start or change, recoveries too.
    pub async fn resolve(&mut self, cfg: &ServerConfig) -> AppConfig {
        self.errors.clear();
        let mut logged = std::mem::take(&mut self.logged);
        let mut app = AppConfig {
            file_change_signal: cfg.file_change_signal.clone(),
            ..AppConfig::default()
        };
        for var in &cfg.vars {
            if var.internal || var.name.is_empty() {
                continue;
            }
            let key = (var.name.clone(), var.file);
            let value = match &var.value {
                None | Some(config_var::Value::Unset(_)) => None,
                Some(config_var::Value::Static(s)) => Some(s.clone()),
                Some(config_var::Value::Dynamic(d)) => {
                    match dynamic::resolve(&d.from, &d.config, &cfg.sources).await {
                        Ok(v) => {
                            if logged.remove(&key).is_some() {
                                tracing::info!(
                                    "config {} {:?} from {:?} resolves again",
                                    kind(var.file),
                                    var.name,
                                    d.from
                                );
                            }
                            self.last_good.insert(key.clone(), v.clone());
                            Some(v)
                        }
                        Err(e) => {
                            let kept = self.last_good.get(&key).cloned();
                            let line = format!(
                                "config {} {:?} from {:?} cannot be resolved: {e}; {}",
                                kind(var.file),
                                var.name,
                                d.from,
                                if kept.is_some() {
                                    "keeping its last value"
                                } else {
                                    "it is not set"
                                }
                            );
                            if logged.get(&key) != Some(&line) {
                                tracing::error!("{line}");
                            }
                            self.logged.insert(key.clone(), line);
                            self.errors.push(format!(
                                "{}: {e}{}",
                                var.name,
                                if kept.is_some() {
                                    " (using its last value)"
                                } else {
                                    ""
                                }
                            ));
                            kept
                        }
                    }
                }
            };
            let Some(value) = value else { continue };
            if var.file {
                app.files.insert(PathBuf::from(&var.name), value);
            } else {
                app.env.insert(var.name.clone(), value);
            }
        }
        app
    }
}

fn kind(file: bool) -> &'static str {
    if file { "file" } else { "variable" }
}

/// Turns server configs into app configs: on every server change, on every change of a watched
/// etcd key and, while dynamic values exist, every `refresh` (the safety net for what a watch
/// misses). Publishes only real changes, to `app` and, as `NAME: why` lines, the values that
/// cannot be resolved to `errors`.
pub async fn run(
    mut server: watch::Receiver<Option<ServerConfig>>,
    app: watch::Sender<Option<AppConfig>>,
    errors: watch::Sender<Vec<String>>,
    refresh: Duration,
) {
    let mut resolver = Resolver::default();
    let mut watches = Watches::default();
    loop {
        let current = server.borrow_and_update().clone();
        let dynamic = current.as_ref().is_some_and(ServerConfig::has_dynamic);
        if let Some(cfg) = current {
            // Watch first: a change while resolving then still triggers another pass.
            watches.set(keys_of(&cfg.vars, &cfg.sources));
            let resolved = resolver.resolve(&cfg).await;
            publish(&app, Some(resolved));
            publish(&errors, resolver.errors().to_vec());
        }
        tokio::select! {
            r = server.changed() => if r.is_err() { return },
            () = tokio::time::sleep(refresh), if dynamic => {}
            () = watches.fired() => tracing::debug!("a watched etcd key changed; resolving again"),
        }
    }
}

fn publish<T: PartialEq>(tx: &watch::Sender<T>, value: T) {
    tx.send_if_modified(|v| {
        if *v == value {
            false
        } else {
            *v = value;
            true
        }
    });
}

/// Writes the config files (parents created, each replaced atomically).
pub fn write_files(files: &BTreeMap<PathBuf, String>) {
    for (path, content) in files {
        if let Err(e) = write_file(path, content) {
            tracing::error!("cannot write config file {}: {e}", path.display());
        }
    }
}

fn write_file(path: &PathBuf, content: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut tmp = path.clone().into_os_string();
    tmp.push(".wayline-tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wayline_proto::v1::DynamicValue;

    fn var(name: &str, value: config_var::Value) -> ConfigVar {
        ConfigVar {
            name: name.into(),
            value: Some(value),
            ..ConfigVar::default()
        }
    }

    #[tokio::test]
    async fn env_files_internal_and_unset() {
        let dir = tempfile::tempdir().unwrap();
        let file_path = dir.path().join("conf/app.toml");
        let cfg = ServerConfig {
            vars: vec![
                var("A", config_var::Value::Static("1".into())),
                ConfigVar {
                    internal: true,
                    ..var("HIDDEN", config_var::Value::Static("x".into()))
                },
                var("GONE", config_var::Value::Unset(true)),
                ConfigVar {
                    file: true,
                    ..var(
                        &file_path.display().to_string(),
                        config_var::Value::Static("k=v".into()),
                    )
                },
            ],
            sources: vec![],
            file_change_signal: "SIGHUP".into(),
        };
        let app = Resolver::default().resolve(&cfg).await;
        assert_eq!(app.env, BTreeMap::from([("A".to_owned(), "1".to_owned())]));
        assert_eq!(app.files.get(&file_path).map(String::as_str), Some("k=v"));
        write_files(&app.files);
        assert_eq!(std::fs::read_to_string(&file_path).unwrap(), "k=v");
    }

    #[tokio::test]
    async fn dynamic_failure_keeps_last_good_value_or_leaves_unset() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("v");
        std::fs::write(&src, "one").unwrap();
        let dynamic = |path: &std::path::Path| {
            config_var::Value::Dynamic(DynamicValue {
                from: "file".into(),
                config: [("path".to_owned(), path.display().to_string())].into(),
            })
        };
        let cfg = ServerConfig {
            vars: vec![var("D", dynamic(&src))],
            ..ServerConfig::default()
        };
        let mut r = Resolver::default();
        assert_eq!(r.resolve(&cfg).await.env["D"], "one");
        assert!(r.errors().is_empty());
        std::fs::remove_file(&src).unwrap();
        assert_eq!(r.resolve(&cfg).await.env["D"], "one");
        let why = format!(
            "D: cannot read {}: No such file or directory (os error 2)",
            src.display()
        );
        assert_eq!(r.errors(), [format!("{why} (using its last value)")]);
        let mut fresh = Resolver::default();
        assert!(
            !fresh.resolve(&cfg).await.env.contains_key("D"),
            "an unresolvable value is unset, never empty"
        );
        assert_eq!(fresh.errors(), [why]);
        std::fs::write(&src, "two").unwrap();
        assert_eq!(fresh.resolve(&cfg).await.env["D"], "two");
        assert!(
            fresh.errors().is_empty(),
            "errors are those of the last pass"
        );
    }

    #[tokio::test]
    async fn run_publishes_changes_and_refreshes_dynamic_values() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("v");
        std::fs::write(&src, "one").unwrap();
        let (server_tx, server_rx) = watch::channel(None);
        let (app_tx, mut app_rx) = watch::channel(None);
        let (errors_tx, _errors_rx) = watch::channel(Vec::new());
        tokio::spawn(run(server_rx, app_tx, errors_tx, Duration::from_millis(20)));
        let cfg = ServerConfig {
            vars: vec![var(
                "D",
                config_var::Value::Dynamic(DynamicValue {
                    from: "file".into(),
                    config: [("path".to_owned(), src.display().to_string())].into(),
                }),
            )],
            ..ServerConfig::default()
        };
        server_tx.send(Some(cfg)).unwrap();
        app_rx
            .wait_for(|a| {
                a.as_ref()
                    .is_some_and(|a| a.env.get("D").is_some_and(|v| v == "one"))
            })
            .await
            .unwrap();
        std::fs::write(&src, "two").unwrap();
        app_rx
            .wait_for(|a| {
                a.as_ref()
                    .is_some_and(|a| a.env.get("D").is_some_and(|v| v == "two"))
            })
            .await
            .unwrap();
    }
}
