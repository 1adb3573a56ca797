//! Server contexts: named connection profiles, one JSON file each under
//! `$XDG_CONFIG_HOME/wayline/contexts/`, plus a pointer to the default one.
//!
//! Environment variables override the stored context: `WAYLINE_SERVER_ADDR`,
//! `WAYLINE_SERVER_TOKEN`, `WAYLINE_SERVER_TLS`, `WAYLINE_SERVER_TLS_SKIP_VERIFY`,
//! `WAYLINE_CONTEXT`, each also read under its `WAYPOINT_*` name.

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

/// Reads `WAYLINE_<name>`, falling back to `WAYPOINT_<name>`.
pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(format!("WAYLINE_{name}"))
        .or_else(|_| std::env::var(format!("WAYPOINT_{name}")))
        .ok()
        .filter(|v| !v.is_empty())
}

/// A boolean env var: 1/true/yes.
pub(crate) fn env_bool(name: &str) -> Option<bool> {
    env(name).map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
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
        fs::create_dir_all(&self.dir)?;
        let path = self.path(name);
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(ctx)?)?;
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

#[cfg(unix)]
fn restrict_permissions(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    // Contexts hold tokens: readable by the user only.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}
