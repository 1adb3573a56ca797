//! Server contexts: named connection profiles, one JSON file each under
//! `$XDG_CONFIG_HOME/wayline/contexts/`, plus a pointer to the default one.
//!
//! Environment variables override the stored context: `WAYLINE_SERVER_ADDR`,
//! `WAYLINE_SERVER_TOKEN`, `WAYLINE_SERVER_TLS`, `WAYLINE_SERVER_TLS_SKIP_VERIFY`,
//! `WAYLINE_CONTEXT`, and stand in for flags not given ([`ENV_VARS`]); each is also read
//! under its `WAYPOINT_*` name, the `WAYLINE_*` one winning when both are set.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use fs_err as fs;
use serde::{Deserialize, Serialize};

/// One server profile.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub(crate) struct ServerContext {
    /// `host:port` or `unix:///path`.
    pub(crate) address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) token: String,
    #[serde(default = "yes")]
    pub(crate) tls: bool,
    #[serde(default)]
    pub(crate) tls_skip_verify: bool,
    /// The user's embedded default server, which the CLI starts when it is not running.
    #[serde(default)]
    pub(crate) embedded: bool,
}

fn yes() -> bool {
    true
}

/// Every variable the CLI reads, without its `WAYLINE_` / `WAYPOINT_` prefix.
pub(crate) const ENV_VARS: &[&str] = &[
    "APP",
    "PROJECT",
    "WORKSPACE",
    "PLAIN",
    "RUNNER_ID",
    "CONTEXT",
    "SERVER_ADDR",
    "SERVER_TOKEN",
    "SERVER_TLS",
    "SERVER_TLS_SKIP_VERIFY",
    "LOG_LEVEL",
];

/// Reads `WAYLINE_<name>`, falling back to `WAYPOINT_<name>`.
pub(crate) fn env(name: &str) -> Option<String> {
    env_from(name, |var| std::env::var(var).ok())
}

/// [`env`] through `get`, which reads one variable (tests pass their own).
pub(crate) fn env_from(name: &str, get: impl Fn(&str) -> Option<String>) -> Option<String> {
    debug_assert!(ENV_VARS.contains(&name), "{name} is missing from ENV_VARS");
    [format!("WAYLINE_{name}"), format!("WAYPOINT_{name}")]
        .iter()
        .find_map(|var| get(var).filter(|v| !v.is_empty()))
}

/// A boolean env var: 1/true/yes.
pub(crate) fn env_bool(name: &str) -> Option<bool> {
    env(name).map(|v| is_true(&v))
}

fn is_true(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

/// Fills the global flags the user did not give from the environment (through `get`).
pub(crate) fn fill_from_env(
    global: &mut crate::cli::Global,
    get: impl Fn(&str) -> Option<String> + Copy,
) {
    if global.app.is_none() {
        global.app = env_from("APP", get);
    }
    if global.project.is_none() {
        global.project = env_from("PROJECT", get);
    }
    if global.workspace.is_none() {
        global.workspace = env_from("WORKSPACE", get);
    }
    if !global.plain {
        global.plain = env_from("PLAIN", get).is_some_and(|v| is_true(&v));
    }
}

/// `$XDG_CONFIG_HOME/wayline`.
pub(crate) fn config_dir() -> PathBuf {
    dirs::config_dir()
        .unwrap_or_else(|| PathBuf::from(".config"))
        .join("wayline")
}

/// `$XDG_DATA_HOME/wayline`.
pub(crate) fn data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from(".local/share"))
        .join("wayline")
}

/// The context store.
pub(crate) struct Contexts {
    dir: PathBuf,
}

impl Contexts {
    pub(crate) fn open() -> Self {
        Self {
            dir: config_dir().join("contexts"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    fn default_pointer(&self) -> PathBuf {
        self.dir.join("DEFAULT")
    }

    pub(crate) fn validate_name(name: &str) -> Result<()> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || name.starts_with('.')
        {
            bail!("`{name}` is not a valid context name: use letters, digits, `-`, `_` and `.`");
        }
        Ok(())
    }

    pub(crate) fn get(&self, name: &str) -> Result<Option<ServerContext>> {
        let path = self.path(name);
        if !path.exists() {
            return Ok(None);
        }
        let text = fs::read_to_string(&path)?;
        let ctx = serde_json::from_str(&text)
            .with_context(|| format!("context file `{}` is not valid", path.display()))?;
        Ok(Some(ctx))
    }

    pub(crate) fn set(&self, name: &str, ctx: &ServerContext) -> Result<()> {
        Self::validate_name(name)?;
        create_private_dir(&self.dir)?;
        let path = self.path(name);
        let tmp = path.with_extension("json.tmp");
        // Owner-only from the first byte (the file holds a token), then renamed into place.
        {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("cannot write `{}`", tmp.display()))?;
            f.write_all(&serde_json::to_vec_pretty(ctx)?)
                .with_context(|| format!("cannot write `{}`", tmp.display()))?;
        }
        restrict_permissions(&tmp);
        fs::rename(&tmp, &path)?;
        Ok(())
    }

    pub(crate) fn delete(&self, name: &str) -> Result<()> {
        let path = self.path(name);
        if !path.exists() {
            bail!("there is no context named `{name}`");
        }
        fs::remove_file(path)?;
        if self.default_name()?.as_deref() == Some(name) {
            self.clear_default()?;
        }
        Ok(())
    }

    pub(crate) fn list(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for e in entries {
                let name = e?.file_name().to_string_lossy().into_owned();
                if let Some(n) = name.strip_suffix(".json") {
                    names.push(n.to_owned());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    pub(crate) fn default_name(&self) -> Result<Option<String>> {
        let p = self.default_pointer();
        if !p.exists() {
            return Ok(None);
        }
        let name = fs::read_to_string(p)?.trim().to_owned();
        Ok(Some(name).filter(|n| !n.is_empty()))
    }

    pub(crate) fn set_default(&self, name: &str) -> Result<()> {
        if self.get(name)?.is_none() {
            bail!("there is no context named `{name}`; `wayline context list` shows them");
        }
        fs::create_dir_all(&self.dir)?;
        fs::write(self.default_pointer(), name)?;
        Ok(())
    }

    pub(crate) fn clear_default(&self) -> Result<()> {
        let p = self.default_pointer();
        if p.exists() {
            fs::remove_file(p)?;
        }
        Ok(())
    }

    /// The context to use now: `WAYLINE_CONTEXT`, else the default; then env overrides.
    /// `None` means nothing is configured: use the embedded default server.
    pub(crate) fn current(&self) -> Result<Option<(String, ServerContext)>> {
        let name = match env("CONTEXT") {
            Some(n) => Some(n),
            None => self.default_name()?,
        };
        let mut found = match &name {
            Some(n) => match self.get(n)? {
                Some(ctx) => Some((n.clone(), ctx)),
                None if env("CONTEXT").is_some() => {
                    bail!("WAYLINE_CONTEXT names `{n}`, but there is no such context")
                }
                None => None,
            },
            None => None,
        };
        if let Some(addr) = env("SERVER_ADDR") {
            let base = found.take().map(|(_, c)| c).unwrap_or_default();
            found = Some((
                "(environment)".to_owned(),
                ServerContext {
                    address: addr,
                    embedded: false,
                    tls: base.tls || base.address.is_empty(),
                    ..base
                },
            ));
        }
        if let Some((_, ctx)) = found.as_mut() {
            if let Some(t) = env("SERVER_TOKEN") {
                ctx.token = t;
            }
            if let Some(b) = env_bool("SERVER_TLS") {
                ctx.tls = b;
            }
            if let Some(b) = env_bool("SERVER_TLS_SKIP_VERIFY") {
                ctx.tls_skip_verify = b;
            }
        }
        Ok(found)
    }
}

/// Creates the contexts directory (and missing parents) for this user only.
fn create_private_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create `{}`", dir.display()))
}

#[cfg(unix)]
fn restrict_permissions(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    // Contexts hold tokens: readable by the user only.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::cli::Global;

    /// Every variable is read under both prefixes, and `WAYLINE_*` wins over `WAYPOINT_*`.
    #[test]
    fn every_variable_is_read_under_both_names() {
        for name in ENV_VARS {
            for prefix in ["WAYLINE_", "WAYPOINT_"] {
                let vars = HashMap::from([(format!("{prefix}{name}"), "1".to_owned())]);
                let got = env_from(name, |v| vars.get(v).cloned());
                assert_eq!(got.as_deref(), Some("1"), "{prefix}{name}");
            }
            let both = HashMap::from([
                (format!("WAYLINE_{name}"), "new".to_owned()),
                (format!("WAYPOINT_{name}"), "old".to_owned()),
            ]);
            assert_eq!(
                env_from(name, |v| both.get(v).cloned()).as_deref(),
                Some("new")
            );
        }
    }

    #[test]
    fn global_flags_come_from_either_name_unless_given() {
        type Field = fn(&Global) -> String;
        let table: &[(&str, &str, Field)] = &[
            ("APP", "web", |g| g.app.clone().unwrap_or_default()),
            ("PROJECT", "shop", |g| g.project.clone().unwrap_or_default()),
            ("WORKSPACE", "staging", |g| {
                g.workspace.clone().unwrap_or_default()
            }),
            ("PLAIN", "true", |g| g.plain.to_string()),
        ];
        for (name, value, field) in table {
            for prefix in ["WAYLINE_", "WAYPOINT_"] {
                let vars = HashMap::from([(format!("{prefix}{name}"), (*value).to_owned())]);
                let mut global = Global::default();
                fill_from_env(&mut global, |v| vars.get(v).cloned());
                assert_eq!(field(&global), *value, "{prefix}{name}");
            }
        }
        // A flag on the command line beats the environment.
        let vars = HashMap::from([("WAYPOINT_WORKSPACE".to_owned(), "staging".to_owned())]);
        let mut global = Global {
            workspace: Some("prod".into()),
            ..Global::default()
        };
        fill_from_env(&mut global, |v| vars.get(v).cloned());
        assert_eq!(global.workspace.as_deref(), Some("prod"));
    }
}
