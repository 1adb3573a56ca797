//! Config-variable scoping: which stored vars apply to an app, a runner or a deployment.
//!
//! Precedence, lowest to highest: global, project, app (runner vars stand alone). Within one
//! scope a workspace-scoped or label-scoped var overrides an unscoped one, and one scoped both
//! ways overrides both. The highest-ranked var of each name wins.

use std::collections::{BTreeMap, HashMap};

use wayline_proto::v1 as pb;
use wayline_proto::v1::config_var::Scope;

/// Where vars are being resolved for.
#[derive(Debug, Clone)]
pub(crate) struct Target<'a> {
    pub(crate) scope: i32,
    pub(crate) project: &'a str,
    pub(crate) app: &'a str,
    pub(crate) workspace: &'a str,
    pub(crate) labels: &'a HashMap<String, String>,
}

fn scope_rank(v: &pb::ConfigVar, t: &Target<'_>) -> Option<u32> {
    let want = Scope::try_from(t.scope).unwrap_or(Scope::Global);
    let have = Scope::try_from(v.scope).ok()?;
    match (want, have) {
        (Scope::Runner, Scope::Runner) => Some(0),
        (Scope::Runner, _) | (_, Scope::Runner) => None,
        (_, Scope::Global) => Some(0),
        (Scope::Project | Scope::App, Scope::Project) if v.project == t.project => Some(1),
        (Scope::App, Scope::App) if v.project == t.project && v.application == t.app => Some(2),
        _ => None,
    }
}

/// True when the var's workspace and label selector apply to the target.
fn applies(v: &pb::ConfigVar, t: &Target<'_>) -> bool {
    if !v.workspace.is_empty() && v.workspace != t.workspace {
        return false;
    }
    if v.label_selector.is_empty() {
        return true;
    }
    match wayline_core::selector::parse(&v.label_selector) {
        Ok(sel) => sel.matches(t.labels),
        Err(e) => {
            tracing::warn!(var = v.name, selector = v.label_selector, error = %e, "ignoring config var with an invalid selector");
            false
        }
    }
}

/// The effective vars for `t`, sorted by name.
pub(crate) fn resolve(vars: &[pb::ConfigVar], t: &Target<'_>) -> Vec<pb::ConfigVar> {
    let mut best: BTreeMap<&str, (u32, &pb::ConfigVar)> = BTreeMap::new();
    for v in vars {
        let Some(scope) = scope_rank(v, t) else {
            continue;
        };
        if !applies(v, t) {
            continue;
        }
        let rank = scope * 4
            + if v.workspace.is_empty() { 0 } else { 2 }
            + u32::from(!v.label_selector.is_empty());
        // Later definitions win ties (`>=`), so re-setting a var behaves as expected.
        if best.get(v.name.as_str()).is_none_or(|(r, _)| rank >= *r) {
            best.insert(&v.name, (rank, v));
        }
    }
    best.into_values()
        .map(|(_, v)| v.clone())
        .filter(|v| !matches!(v.value, Some(pb::config_var::Value::Unset(true))))
        .collect()
}

/// Checks a var before it is stored; the message names the var.
pub(crate) fn validate(v: &pb::ConfigVar) -> Result<(), String> {
    if v.name.is_empty() {
        return Err("a config variable has an empty name".into());
    }
    let Ok(scope) = Scope::try_from(v.scope) else {
        return Err(format!(
            "config variable {}: unknown scope {}",
            v.name, v.scope
        ));
    };
    match scope {
        Scope::Project if v.project.is_empty() => {
            return Err(format!(
                "config variable {}: project scope needs a project",
                v.name
            ));
        }
        Scope::App if v.project.is_empty() || v.application.is_empty() => {
            return Err(format!(
                "config variable {}: app scope needs a project and an application",
                v.name
            ));
        }
        _ => {}
    }
    if v.value.is_none() {
        return Err(format!(
            "config variable {}: no value (set static, dynamic or unset)",
            v.name
        ));
    }
    if !v.label_selector.is_empty() {
        wayline_core::selector::parse(&v.label_selector).map_err(|e| {
            format!(
                "config variable {}: label selector `{}`: {e}",
                v.name, v.label_selector
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(
        scope: Scope,
        project: &str,
        app: &str,
        ws: &str,
        sel: &str,
        name: &str,
        val: &str,
    ) -> pb::ConfigVar {
        pb::ConfigVar {
            scope: scope as i32,
            project: project.into(),
            application: app.into(),
            workspace: ws.into(),
            label_selector: sel.into(),
            name: name.into(),
            value: Some(pb::config_var::Value::Static(val.into())),
            ..Default::default()
        }
    }

    fn value(v: &pb::ConfigVar) -> &str {
        match &v.value {
            Some(pb::config_var::Value::Static(s)) => s,
            _ => "",
        }
    }

    #[test]
    fn app_overrides_project_overrides_global_and_scoped_overrides_unscoped() {
        let vars = vec![
            var(Scope::Global, "", "", "", "", "A", "global"),
            var(Scope::Project, "p", "", "", "", "A", "project"),
            var(Scope::App, "p", "web", "", "", "B", "app"),
            var(Scope::App, "p", "web", "prod", "", "B", "app-prod"),
            var(Scope::App, "p", "web", "", "env == \"eu\"", "C", "eu"),
            var(Scope::App, "p", "api", "", "", "D", "other app"),
            var(Scope::Runner, "", "", "", "", "E", "runner"),
            var(Scope::Global, "", "", "", "", "C", "global-c"),
        ];
        let labels: HashMap<String, String> = [("env".to_owned(), "eu".to_owned())].into();
        let t = Target {
            scope: Scope::App as i32,
            project: "p",
            app: "web",
            workspace: "prod",
            labels: &labels,
        };
        let got: Vec<(String, String)> = resolve(&vars, &t)
            .iter()
            .map(|v| (v.name.clone(), value(v).to_owned()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("A".into(), "project".into()),
                ("B".into(), "app-prod".into()),
                ("C".into(), "eu".into())
            ]
        );
        let none = HashMap::new();
        let t = Target {
            scope: Scope::App as i32,
            project: "p",
            app: "web",
            workspace: "default",
            labels: &none,
        };
        let got: Vec<String> = resolve(&vars, &t)
            .iter()
            .map(|v| value(v).to_owned())
            .collect();
        assert_eq!(got, vec!["project", "app", "global-c"]);
        let t = Target {
            scope: Scope::Runner as i32,
            project: "",
            app: "",
            workspace: "",
            labels: &none,
        };
        assert_eq!(resolve(&vars, &t).len(), 1);
    }

    #[test]
    fn validation_messages() {
        let mut v = var(Scope::App, "p", "", "", "", "X", "1");
        assert_eq!(
            validate(&v).unwrap_err(),
            "config variable X: app scope needs a project and an application"
        );
        v.application = "a".into();
        v.label_selector = "env = x".into();
        assert!(
            validate(&v)
                .unwrap_err()
                .starts_with("config variable X: label selector `env = x`: column")
        );
    }
}
