//! `plugin list` and `plugin docs` (also `docs`): generated from each component's own
//! documentation, so the reference never drifts from the code.

use std::process::ExitCode;

use anyhow::{Result, bail};
use wayline_plugin::{ComponentInfo, ComponentKind, FieldDoc, PluginHost};

use super::Env;
use crate::cli::DocsArgs;
use crate::render;
use crate::render::say;

/// The host a runner on this machine would use for the current project (built-ins, then
/// `wayline-plugin-*` executables in the project, the config dir and PATH).
fn host() -> PluginHost {
    let cwd = std::env::current_dir().unwrap_or_default();
    let project_dir = wayline_config::find_config(&cwd)
        .ok()
        .flatten()
        .and_then(|f| f.path.parent().map(std::path::Path::to_path_buf))
        .unwrap_or(cwd);
    wayline_runner::executor::plugin_host(&project_dir)
}

/// What `validate` and `up` check `use` blocks against: every built-in component with its
/// config schema, the names of the external plugins found (not started), and for the Waypoint
/// plugins that `config_text` uses, their config schemas (these are started: a Waypoint
/// plugin's config shape is only known from its `ConfigStruct`).
pub(crate) fn catalog(
    project_dir: &std::path::Path,
    config_text: Option<&str>,
) -> wayline_config::PluginCatalog {
    let host = wayline_runner::executor::plugin_host(project_dir);
    let mut catalog = wayline_config::PluginCatalog::new();
    // Every built-in's name and kinds (for "did you mean"), but the config schema, built from
    // the component's docs, only of those the file uses: `validate` runs once per file.
    let used = config_text.map(used_plugins);
    for p in host.builtins().plugins() {
        let wanted = used.as_ref().is_none_or(|u| u.contains(&p.name));
        for k in p.kinds() {
            let kind = plugin_kind(k);
            let schema = p
                .component(k)
                .filter(|_| wanted)
                .and_then(|c| c.info().docs.as_ref())
                .map(wayline_plugin::Docs::config_schema);
            catalog.add(&p.name, kind, schema);
        }
    }
    // Only a name that is not built in needs the scan of the plugin dirs, PATH and the Waypoint
    // provider: most files never pay for it.
    let dir = project_dir.to_path_buf();
    // Whether one name is installed: a few `stat`s, where listing every PATH directory took
    // most of a `validate` of a file naming Waypoint plugins (issue 11).
    // Made once, when first asked, and each name looked up once (a file may name it in
    // thousands of apps).
    let find_dir = dir.clone();
    let find_host = std::sync::OnceLock::new();
    let found = std::sync::Mutex::new(std::collections::BTreeMap::<String, bool>::new());
    catalog.find_external_with(move |name| {
        let mut found = found
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *found.entry(name.to_owned()).or_insert_with(|| {
            let host = find_host.get_or_init(|| wayline_runner::executor::plugin_host(&find_dir));
            host.builtins().get(name).is_none() && host.source_of(name).is_some()
        })
    });
    catalog.discover_externals_with(move || {
        let host = wayline_runner::executor::plugin_host(&dir);
        host.known_plugins()
            .into_iter()
            .filter(|n| host.builtins().get(n).is_none())
            .collect()
    });
    if let Some(text) = config_text {
        waypoint_schemas(&host, project_dir, text, &mut catalog);
    }
    // `dynamic("file" | "etcd", …)` values are resolved by wayline-entrypoint inside each
    // deployment, not by a plugin of this host.
    for name in ENTRYPOINT_SOURCERS {
        if host.builtins().get(name).is_none() {
            catalog.add(name, wayline_config::PluginKind::ConfigSourcer, None);
        }
    }
    catalog
}

/// Plugin names in `use "<name>"` blocks (HCL) or `"use": {"<name>"` (JSON).
fn used_plugins(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for (i, _) in text.match_indices("use") {
        let word_start = text[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_');
        let rest = text[i + 3..].trim_start_matches([' ', '\t', '"', ':', '{']);
        let skipped = &text[i + 3..text.len() - rest.len()];
        if !word_start || !skipped.contains('"') {
            continue;
        }
        if let Some(end) = rest.find('"') {
            let name = &rest[..end];
            if !name.is_empty() && name.len() <= 64 && !name.contains(char::is_whitespace) {
                out.insert(name.to_owned());
            }
        }
    }
    out
}

/// Starts the Waypoint plugins the file uses and adds each component's config schema, so
/// `validate` checks their `use` bodies like a native plugin's. A plugin that fails to start is
/// left to the job (which reports why).
fn waypoint_schemas(
    host: &PluginHost,
    project_dir: &std::path::Path,
    text: &str,
    catalog: &mut wayline_config::PluginCatalog,
) {
    let names: Vec<String> = used_plugins(text)
        .into_iter()
        .filter(|n| {
            host.builtins().get(n).is_none()
                && host.source_of(n).is_some_and(|s| s.starts_with("Waypoint"))
        })
        .collect();
    if names.is_empty() {
        return;
    }
    let plugins = wayline_waypoint::WaypointPlugins::for_project(project_dir, host.search_dirs());
    // Our own runtime on a thread of its own: this runs inside the CLI's runtime or outside any.
    let found = std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            Some(rt.block_on(async {
                let mut out = Vec::new();
                for n in &names {
                    if let Ok(schemas) = plugins.schemas(n).await {
                        out.push((n.clone(), schemas));
                    }
                }
                plugins.shutdown().await;
                out
            }))
        })
        .join()
        .ok()
        .flatten()
    });
    for (name, schemas) in found.unwrap_or_default() {
        for (k, schema) in schemas {
            catalog.add(&name, plugin_kind(k), Some(schema));
        }
    }
}

fn plugin_kind(k: ComponentKind) -> wayline_config::PluginKind {
    use wayline_config::PluginKind;
    match k {
        ComponentKind::Builder => PluginKind::Builder,
        ComponentKind::Registry => PluginKind::Registry,
        ComponentKind::Platform => PluginKind::Platform,
        ComponentKind::ReleaseManager => PluginKind::ReleaseManager,
        ComponentKind::ConfigSourcer => PluginKind::ConfigSourcer,
    }
}

/// The config sourcers built into `wayline-entrypoint` (`dynamic.rs` there).
const ENTRYPOINT_SOURCERS: [&str; 2] = ["file", "etcd"];

/// Every component of the named plugins, in name then kind order.
async fn components(
    host: &PluginHost,
    only: Option<&str>,
    kind: Option<ComponentKind>,
) -> Result<Vec<ComponentInfo>> {
    let names = match only {
        Some(n) => vec![n.to_owned()],
        None => host.known_plugins(),
    };
    let mut out = Vec::new();
    for name in &names {
        let mut found = false;
        for k in ComponentKind::ALL {
            if kind.is_some_and(|want| want != k) {
                continue;
            }
            if let Ok(h) = host.component(k, name).await {
                out.push(h.info().clone());
                found = true;
            }
        }
        if !found && only.is_some() {
            let known = host.known_plugins();
            let hint = wayline_config::did_you_mean(name, known.iter().map(String::as_str))
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            bail!(
                "no plugin named `{name}`{hint}; known plugins: {}",
                known.join(", ")
            );
        }
    }
    Ok(out)
}

fn parse_kind(s: &str) -> Result<ComponentKind> {
    ComponentKind::ALL
        .into_iter()
        .find(|k| k.as_str() == s || k.as_str().replace('_', "") == s.replace(['-', '_'], ""))
        .ok_or_else(|| anyhow::anyhow!("-type takes builder, registry, platform, releasemanager or configsourcer, not `{s}`"))
}

pub(crate) async fn list(env: &Env) -> Result<ExitCode> {
    let host = host();
    let infos = components(&host, None, None).await?;
    if env.global.json {
        let v: Vec<_> = infos
            .iter()
            .map(|i| serde_json::json!({"plugin": i.name, "kind": i.kind.as_str(), "accepts": i.accepts, "returns": i.returns,
                "builtin": host.builtins().get(&i.name).is_some(), "source": host.source_of(&i.name)}))
            .collect();
        render::json(&serde_json::Value::Array(v));
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = infos
        .iter()
        .map(|i| {
            vec![
                i.name.clone(),
                i.kind.as_str().to_owned(),
                host.source_of(&i.name).unwrap_or_default(),
                if i.accepts.is_empty() {
                    "-".into()
                } else {
                    i.accepts.join(", ")
                },
                i.returns.clone(),
            ]
        })
        .collect();
    render::table(&["PLUGIN", "KIND", "SOURCE", "ACCEPTS", "RETURNS"], &rows);
    let mappers = host.mappers();
    if !mappers.is_empty() {
        say!("\n{} mappers join mismatched types:", mappers.len());
        let rows: Vec<Vec<String>> = mappers
            .iter()
            .map(|m| vec![m.name.clone(), m.input.clone(), m.output.clone()])
            .collect();
        render::table(&["MAPPER", "FROM", "TO"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn docs(env: &Env, args: &DocsArgs) -> Result<ExitCode> {
    let host = host();
    let kind = args.kind.as_deref().map(parse_kind).transpose()?;
    let infos = components(&host, args.plugin.as_deref(), kind).await?;
    if env.global.json {
        let v: Vec<_> = infos
            .iter()
            .map(|i| {
                serde_json::json!({"plugin": i.name, "kind": i.kind.as_str(), "docs": i.docs,
                "capabilities": i.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>()})
            })
            .collect();
        render::json(&serde_json::Value::Array(v));
        return Ok(ExitCode::SUCCESS);
    }
    for (n, info) in infos.iter().enumerate() {
        let title = format!("{} `{}`", info.kind.as_str(), info.name);
        let Some(docs) = &info.docs else {
            say!("{title}: no documentation.\n");
            continue;
        };
        if args.markdown {
            say!("{}", docs.to_markdown(&title));
            continue;
        }
        if n > 0 {
            say!();
        }
        say!("{}", env.style.bold(&title));
        say!("{}\n", docs.description);
        if !docs.fields.is_empty() {
            let mut rows = Vec::new();
            field_rows(&docs.fields, "", &mut rows);
            render::table(
                &["ATTRIBUTE", "TYPE", "REQUIRED", "DEFAULT", "MEANING"],
                &rows,
            );
        }
        if !docs.template_fields.is_empty() {
            say!("\nExports to templates:");
            for (name, meaning) in &docs.template_fields {
                say!("  {name}: {meaning}");
            }
        }
        if !docs.example.is_empty() {
            say!("\nExample:\n{}", docs.example.trim_end());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn field_rows(fields: &[FieldDoc], prefix: &str, rows: &mut Vec<Vec<String>>) {
    for f in fields {
        let name = format!("{prefix}{}", f.name);
        rows.push(vec![
            name.clone(),
            f.r#type.clone(),
            if f.required {
                "yes".into()
            } else {
                String::new()
            },
            f.default.clone().unwrap_or_default(),
            f.doc.clone(),
        ]);
        field_rows(&f.fields, &format!("{name}."), rows);
    }
}
