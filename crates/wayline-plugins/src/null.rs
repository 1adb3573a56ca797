//! The `null` plugin: every component kind, doing nothing, for tests and dry runs.
//!
//! Each component passes a `wayline.null.Value` along; `fail = "<message>"` makes a call fail
//! with that message, which tests use to exercise error paths.

use std::collections::HashMap;

use async_trait::async_trait;
use serde::Deserialize;
use wayline_plugin::pb::{ConfigRequests, ConfigValue, ConfigValues};
use wayline_plugin::{
    Builder, BuiltinRegistry, Capabilities, Component, ConfigSourcer, Ctx, DeclaredResource,
    Destroyer, Docs, Documented, FieldDoc, Health, Outcome, Platform, PluginError, Registry,
    ReleaseManager, Status, StatusReport, Value,
};

/// The value every `null` component returns.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct NullValue {
    /// Which component made it and for which job: `<kind>:<job id>`.
    #[prost(string, tag = "1")]
    pub id: String,
    /// Labels of the call.
    #[prost(map = "string, string", tag = "2")]
    pub labels: HashMap<String, String>,
}

impl Value for NullValue {
    const TYPE_NAME: &'static str = "wayline.null.Value";
}

/// Config of every `null` component.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NullConfig {
    /// When set, every call fails with this message.
    #[serde(default)]
    pub fail: Option<String>,
    /// URL a `null` release reports.
    #[serde(default)]
    pub url: Option<String>,
}

/// The `null` component of every kind; `kind` names it in the values it returns.
#[derive(Debug, Clone, Copy)]
pub struct Null {
    kind: &'static str,
}

impl Null {
    fn value(self, ctx: &Ctx, cfg: &NullConfig) -> Result<Outcome<NullValue>, PluginError> {
        if let Some(m) = &cfg.fail {
            return Err(PluginError::msg(m.clone()));
        }
        let v = NullValue {
            id: format!("{}:{}", self.kind, ctx.core.job.id),
            labels: ctx.core.labels.clone().into_iter().collect(),
        };
        let mut o = Outcome::new(v.clone()).template_data(serde_json::json!({ "id": v.id }));
        if let Some(u) = &cfg.url {
            o = o.url(u.clone());
        }
        Ok(o)
    }
}

impl Component for Null {
    type Config = NullConfig;
    type Output = NullValue;

    fn capabilities(caps: &mut Capabilities<'_, Self>) {
        caps.destroyer().status().documented();
    }
}

#[async_trait]
impl Builder for Null {
    async fn build(&self, ctx: &Ctx, cfg: &NullConfig) -> Result<Outcome<NullValue>, PluginError> {
        self.value(ctx, cfg)
    }
}

#[async_trait]
impl Registry for Null {
    type Input = NullValue;
    async fn push(
        &self,
        ctx: &Ctx,
        cfg: &NullConfig,
        _: NullValue,
    ) -> Result<Outcome<NullValue>, PluginError> {
        self.value(ctx, cfg)
    }
}

#[async_trait]
impl Platform for Null {
    type Input = NullValue;
    async fn deploy(
        &self,
        ctx: &Ctx,
        cfg: &NullConfig,
        _: NullValue,
    ) -> Result<Outcome<NullValue>, PluginError> {
        self.value(ctx, cfg)
    }

    fn default_release_manager(&self) -> Option<&'static str> {
        Some("null")
    }
}

#[async_trait]
impl ReleaseManager for Null {
    type Input = NullValue;
    async fn release(
        &self,
        ctx: &Ctx,
        cfg: &NullConfig,
        _: NullValue,
    ) -> Result<Outcome<NullValue>, PluginError> {
        self.value(ctx, cfg)
    }
}

#[async_trait]
impl Destroyer for Null {
    async fn destroy(
        &self,
        _: &Ctx,
        cfg: &NullConfig,
        _: NullValue,
        mut resources: Vec<DeclaredResource>,
    ) -> Result<Vec<DeclaredResource>, PluginError> {
        if let Some(m) = &cfg.fail {
            return Err(PluginError::msg(m.clone()));
        }
        for r in &mut resources {
            r.destroyed = true;
        }
        Ok(resources)
    }
}

#[async_trait]
impl Status for Null {
    async fn status(
        &self,
        _: &Ctx,
        _: &NullConfig,
        _: NullValue,
        resources: Vec<DeclaredResource>,
    ) -> Result<StatusReport, PluginError> {
        Ok(StatusReport {
            health: Health::Ready,
            message: "null is always ready".to_owned(),
            resources,
        })
    }
}

impl Documented for Null {
    fn docs() -> Docs {
        Docs {
            description: "Does nothing and returns a `wayline.null.Value`; for tests and dry runs."
                .into(),
            example: "use \"null\" {}".into(),
            fields: vec![
                FieldDoc::new("fail", "string", "Make every call fail with this message."),
                FieldDoc::new("url", "string", "The URL a release reports."),
            ],
            template_fields: vec![("id".into(), "`<kind>:<job id>`".into())],
        }
    }
}

/// The `null` config sourcer's own settings (a `config { runner { … } }`-style source config).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NullSourcerConfig {
    /// When set, every read fails with this message.
    #[serde(default)]
    pub fail: Option<String>,
    /// Values that `config_key` requests look up.
    #[serde(default)]
    pub values: std::collections::BTreeMap<String, String>,
}

/// The `null` config sourcer, like Waypoint's: a request's `static_value` is its value, a
/// `config_key` is looked up in the sourcer's `values`; `value` is kept as an alias of
/// `static_value`.
#[derive(Debug, Clone, Copy)]
pub struct NullConfigSourcer;

impl Component for NullConfigSourcer {
    type Config = NullSourcerConfig;
    type Output = ConfigValues;

    fn capabilities(caps: &mut Capabilities<'_, Self>) {
        caps.documented();
    }
}

#[async_trait]
impl ConfigSourcer for NullConfigSourcer {
    async fn read(
        &self,
        _: &Ctx,
        cfg: &NullSourcerConfig,
        requests: ConfigRequests,
    ) -> Result<Outcome<ConfigValues>, PluginError> {
        if let Some(m) = &cfg.fail {
            return Err(PluginError::msg(m.clone()));
        }
        let values = requests
            .requests
            .into_iter()
            .map(|r| {
                let fixed = r
                    .config
                    .get("static_value")
                    .or_else(|| r.config.get("value"));
                let (value, error) = match (fixed, r.config.get("config_key")) {
                    (Some(v), _) => (v.clone(), String::new()),
                    (None, Some(k)) => match cfg.values.get(k) {
                        Some(v) => (v.clone(), String::new()),
                        None => (
                            String::new(),
                            format!("the null config sourcer has no value for key `{k}`"),
                        ),
                    },
                    (None, None) => (String::new(), String::new()),
                };
                ConfigValue {
                    value,
                    name: r.name,
                    error,
                }
            })
            .collect();
        Ok(Outcome::new(ConfigValues { values }))
    }
}

impl Documented for NullConfigSourcer {
    fn docs() -> Docs {
        Docs {
            description: "Returns `static_value` of each `dynamic(\"null\", {static_value = …})` as is, or looks `config_key` up in `values` (Waypoint's null sourcer); `value` is an alias of `static_value`."
                .into(),
            fields: vec![
                FieldDoc::new("fail", "string", "Make every read fail with this message."),
                FieldDoc::new("values", "map(string)", "Values for `config_key` requests."),
            ],
            ..Docs::default()
        }
    }
}

/// Registers `null` for every component kind.
pub fn register(r: &mut BuiltinRegistry) {
    r.builder("null", Null { kind: "builder" })
        .registry("null", Null { kind: "registry" })
        .platform("null", Null { kind: "platform" })
        .release_manager("null", Null { kind: "release" })
        .config_sourcer("null", NullConfigSourcer);
}
