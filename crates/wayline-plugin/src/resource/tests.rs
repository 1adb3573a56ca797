use std::sync::Mutex;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::{CoreValues, Ui};

#[derive(Default, Clone)]
struct Log(Arc<Mutex<Vec<String>>>);

struct Thing {
    log: Log,
    fail_destroy: Option<&'static str>,
}

#[async_trait]
impl ResourceKind for Thing {
    fn type_name(&self) -> &'static str {
        "thing"
    }
    async fn destroy(
        &self,
        _: &Ctx,
        name: &str,
        state: &serde_json::Value,
    ) -> Result<(), PluginError> {
        if self.fail_destroy == Some(name) {
            return Err(PluginError::msg("stuck"));
        }
        self.log
            .0
            .lock()
            .unwrap()
            .push(format!("destroy {name} {state}"));
        Ok(())
    }
    async fn status(
        &self,
        _: &Ctx,
        name: &str,
        _: &serde_json::Value,
    ) -> Result<(Health, String), PluginError> {
        Ok(if name == "a" {
            (Health::Ready, "up".into())
        } else {
            (Health::Down, "down".into())
        })
    }
}

fn ctx() -> Ctx {
    Ctx::new(
        CoreValues::default(),
        Ui::discard(),
        CancellationToken::new(),
    )
}

fn rm(log: &Log, fail_destroy: Option<&'static str>) -> ResourceManager {
    ResourceManager::new("test").kind(Thing {
        log: log.clone(),
        fail_destroy,
    })
}

#[tokio::test]
async fn failure_rolls_back_created_resources_in_reverse() {
    let log = Log::default();
    let mut m = rm(&log, None);
    let ctx = ctx();
    m.create(&ctx, "a", "thing", async { Ok(json!(1)) })
        .await
        .unwrap();
    m.create(&ctx, "b", "thing", async { Ok(json!(2)) })
        .await
        .unwrap();
    let err = m
        .create(&ctx, "c", "thing", async { Err(PluginError::msg("boom")) })
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "boom");
    assert_eq!(*log.0.lock().unwrap(), ["destroy b 2", "destroy a 1"]);
    assert!(m.declared().is_empty());
}

#[tokio::test]
async fn destroy_all_reverses_skips_destroyed_and_reports_failures() {
    let log = Log::default();
    let mut m = rm(&log, None);
    let ctx = ctx();
    for n in ["a", "b", "c"] {
        m.create(&ctx, n, "thing", async { Ok(json!(n)) })
            .await
            .unwrap();
    }
    let mut stored = m.into_declared();
    assert_eq!(stored[0].platform, "test");
    stored[1].destroyed = true;
    let out = rm(&log, None)
        .destroy_all(&ctx, stored.clone())
        .await
        .unwrap();
    assert!(out.iter().all(|r| r.destroyed));
    assert_eq!(
        *log.0.lock().unwrap(),
        ["destroy c \"c\"", "destroy a \"a\""]
    );

    let err = rm(&log, Some("c"))
        .destroy_all(&ctx, stored)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "could not destroy thing `c`: stuck");
}

#[tokio::test]
async fn unknown_kind_is_an_error_before_creating() {
    let mut m = ResourceManager::new("test");
    let err = m
        .create(&ctx(), "x", "nope", async { Ok(json!(null)) })
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "resource `x`: no resource kind `nope` is registered"
    );
}

#[tokio::test]
async fn status_all_sets_each_health() {
    let log = Log::default();
    let mut m = rm(&log, None);
    let ctx = ctx();
    m.create(&ctx, "a", "thing", async { Ok(json!(1)) })
        .await
        .unwrap();
    m.create(&ctx, "b", "thing", async { Ok(json!(2)) })
        .await
        .unwrap();
    let r = rm(&log, None).status_all(&ctx, m.into_declared()).await;
    assert_eq!(r.health, Health::Partial);
    assert_eq!(r.resources[0].health(), Health::Ready);
    assert_eq!(r.resources[1].health_message, "down");
}

/// A context whose declarations are recorded (names and states, as stored), failing when
/// `refuse` is set.
fn declaring_ctx(seen: &Arc<Mutex<Vec<Vec<String>>>>, refuse: bool) -> Ctx {
    let mut ctx = ctx();
    let seen = seen.clone();
    ctx.declare = Some(crate::Declare::new(move |resources| {
        let names = resources
            .iter()
            .map(|r| format!("{}={}", r.name, r.state_json))
            .collect();
        seen.lock().unwrap().push(names);
        Box::pin(async move {
            if refuse {
                Err("server gone".to_owned())
            } else {
                Ok(())
            }
        })
    }));
    ctx
}

#[tokio::test]
async fn a_resource_is_declared_before_it_is_created_and_again_with_its_real_state() {
    let log = Log::default();
    let mut m = rm(&log, None);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ctx = declaring_ctx(&seen, false);
    let seen_inside = seen.clone();
    m.declare_then_create(&ctx, "net", "thing", json!("planned"), async move {
        // While it is being created the server already knows it.
        assert_eq!(
            seen_inside.lock().unwrap().last().unwrap(),
            &vec!["net=\"planned\"".to_owned()]
        );
        Ok(json!("real"))
    })
    .await
    .unwrap();
    assert_eq!(
        seen.lock().unwrap().last().unwrap(),
        &vec!["net=\"real\"".to_owned()]
    );
    // A failed creation rolls the planned resource back with the others.
    let err = m
        .declare_then_create(&ctx, "box", "thing", json!("b"), async {
            Err(PluginError::msg("boom"))
        })
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "boom");
    assert_eq!(
        *log.0.lock().unwrap(),
        vec!["destroy box \"b\"", "destroy net \"real\""]
    );
}

#[tokio::test]
async fn nothing_is_created_when_the_declaration_is_not_stored() {
    let log = Log::default();
    let mut m = rm(&log, None);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ctx = declaring_ctx(&seen, true);
    let created = Arc::new(Mutex::new(false));
    let flag = created.clone();
    let err = m
        .declare_then_create(&ctx, "net", "thing", json!(1), async move {
            *flag.lock().unwrap() = true;
            Ok(json!(1))
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not record the resources on the server: server gone"
    );
    assert!(!*created.lock().unwrap(), "created without a record");
    assert!(m.declared().is_empty());
}
