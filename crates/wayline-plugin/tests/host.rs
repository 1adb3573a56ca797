//! The in-process host path with a hand-written component: configure, call, UI events,
//! unsupported functions, cancellation, and mapper chains through the host.

use serde::Deserialize;
use wayline_plugin::pb::GenerationId;
use wayline_plugin::{
    BuiltinRegistry, Call, CancellationToken, Capabilities, Component, ComponentKind, CoreValues,
    Ctx, Generation, Mapper, Outcome, Platform, PluginError, PluginHost, Style, Ui, Value,
    async_trait,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cfg {
    #[serde(default)]
    wait: bool,
    #[serde(default)]
    nested: Nested,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Nested {
    #[serde(default)]
    ports: Vec<u16>,
}

struct Echo;

/// Told when a `wait` deploy is under way, so a test cancels it mid-call (not before it began).
static DEPLOY_WAITS: tokio::sync::Notify = tokio::sync::Notify::const_new();

impl Component for Echo {
    type Config = Cfg;
    type Output = GenerationId;

    fn capabilities(caps: &mut Capabilities<'_, Self>) {
        caps.generation();
    }
}

#[async_trait]
impl Platform for Echo {
    type Input = GenerationId;

    async fn deploy(
        &self,
        ctx: &Ctx,
        cfg: &Cfg,
        input: GenerationId,
    ) -> Result<Outcome<GenerationId>, PluginError> {
        ctx.ui
            .output(format!("deploying {}", input.id), Style::Info);
        if cfg.wait {
            DEPLOY_WAITS.notify_one();
            ctx.cancel.cancelled().await;
            return Err(PluginError::Cancelled);
        }
        Ok(Outcome::new(GenerationId {
            id: format!("{}:{:?}", input.id, cfg.nested.ports),
        }))
    }
}

#[async_trait]
impl Generation for Echo {
    async fn generation(&self, ctx: &Ctx, _: &Cfg) -> Result<Option<String>, PluginError> {
        Ok(Some(ctx.core.job.app.clone()))
    }
}

fn host() -> PluginHost {
    let mut r = BuiltinRegistry::new();
    r.platform("echo", Echo);
    r.mapper(
        "echo",
        Mapper::new("exec-to-gen", |e: wayline_plugin::pb::ExecResult| {
            Ok(GenerationId {
                id: e.exit_code.to_string(),
            })
        }),
    );
    PluginHost::new(r, Vec::new())
}

fn call(f: wayline_plugin::Function, ui: Ui, cancel: CancellationToken) -> Call {
    let mut core = CoreValues::default();
    core.job.app = "web".into();
    Call::new(f, core, ui, cancel)
}

#[tokio::test]
async fn configure_then_call_with_mapped_input() {
    let h = host();
    let c = h.component(ComponentKind::Platform, "echo").await.unwrap();
    let err = c
        .configure(serde_json::json!({"nested": {"ports": [1, "x"]}}))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "nested.ports[1]: invalid type: string \"x\", expected u16"
    );
    let err = c
        .configure(serde_json::json!({"nested": {"port": 1}}))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "nested.port: unknown attribute `port`; did you mean `ports`?"
    );
    c.configure(serde_json::json!({"nested": {"ports": [80]}}))
        .await
        .unwrap();

    let chain = h
        .find_chain("wayline.plugin.v1.ExecResult", c.accepts()[0].as_str())
        .unwrap();
    let input = h
        .map(
            &chain,
            wayline_plugin::pb::ExecResult {
                exit_code: 7,
                ..Default::default()
            }
            .to_any(),
        )
        .await
        .unwrap();
    let (ui, events) = Ui::collecting();
    let r = c
        .call(
            call(
                wayline_plugin::Function::Deploy,
                ui,
                CancellationToken::new(),
            )
            .input(input),
        )
        .await
        .unwrap();
    assert_eq!(
        GenerationId::from_any(&r.value.unwrap()).unwrap().id,
        "7:[80]"
    );
    assert_eq!(events.lines(), ["deploying 7"]);

    let r = c
        .call(call(
            wayline_plugin::Function::Generation,
            Ui::discard(),
            CancellationToken::new(),
        ))
        .await
        .unwrap();
    assert_eq!(GenerationId::from_any(&r.value.unwrap()).unwrap().id, "web");
}

#[tokio::test]
async fn unsupported_function_and_cancellation() {
    let h = host();
    let c = h.component(ComponentKind::Platform, "echo").await.unwrap();
    let err = c
        .call(call(
            wayline_plugin::Function::Destroy,
            Ui::discard(),
            CancellationToken::new(),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "platform \"echo\" does not support `destroy`"
    );

    c.configure(serde_json::json!({"wait": true}))
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let fire = cancel.clone();
    tokio::spawn(async move {
        DEPLOY_WAITS.notified().await;
        fire.cancel();
    });
    let err = c
        .call(
            call(wayline_plugin::Function::Deploy, Ui::discard(), cancel)
                .input(GenerationId::default().to_any()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::Cancelled), "{err}");
}

#[tokio::test]
async fn unknown_names_get_suggestions() {
    let h = host();
    let err = h
        .component(ComponentKind::Platform, "ecko")
        .await
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "unknown platform plugin `ecko`: no built-in plugin has that name and no `wayline-plugin-ecko` executable was found in PATH; did you mean `echo`?"
    );
    let err = h.load_plugin("ecko", None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin `ecko` not found: no `wayline-plugin-ecko` or `waypoint-plugin-ecko` executable in PATH; did you mean `echo`?"
    );
}
