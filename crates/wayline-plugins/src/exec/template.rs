//! `{{.Field.path}}` substitution, the subset of Go templates Waypoint's exec plugin documented.

use std::path::Path;

/// A template that could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

/// Replaces every `{{ .A.b }}` in `text` with that value from `data` (strings as is, numbers and
/// booleans printed, objects and lists as JSON). `{{ . }}` is the whole of `data`.
pub fn render(text: &str, data: &serde_json::Value) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| TemplateError(format!("unclosed `{{{{` in `{text}`")))?;
        let expr = after[..end]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        out.push_str(&lookup(expr, data)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup(expr: &str, data: &serde_json::Value) -> Result<String, TemplateError> {
    let Some(path) = expr.strip_prefix('.') else {
        return Err(TemplateError(format!(
            "`{{{{{expr}}}}}`: only field references like `{{{{.Env.NAME}}}}` are supported"
        )));
    };
    let mut v = data;
    if !path.is_empty() {
        for seg in path.split('.') {
            v = match v.get(seg) {
                Some(x) if !x.is_null() => x,
                _ => {
                    let known = v
                        .as_object()
                        .map(|o| o.keys().map(String::as_str).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default();
                    return Err(TemplateError(format!(
                        "`{{{{{expr}}}}}`: no value `{seg}`{}",
                        if known.is_empty() {
                            String::new()
                        } else {
                            format!(" (known: {known})")
                        }
                    )));
                }
            };
        }
    }
    Ok(match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Renders a template file, or every file under a template directory, from `src` into `dst`.
pub fn render_tree(src: &Path, dst: &Path, data: &serde_json::Value) -> Result<(), TemplateError> {
    let io = |what: &str, p: &Path, e: std::io::Error| {
        TemplateError(format!("cannot {what} `{}`: {e}", p.display()))
    };
    let m = std::fs::metadata(src).map_err(|e| io("read", src, e))?;
    if m.is_dir() {
        std::fs::create_dir_all(dst).map_err(|e| io("create", dst, e))?;
        for e in std::fs::read_dir(src).map_err(|e| io("read", src, e))? {
            let e = e.map_err(|e| io("read", src, e))?;
            render_tree(&e.path(), &dst.join(e.file_name()), data)?;
        }
    } else {
        let text = std::fs::read_to_string(src).map_err(|e| io("read", src, e))?;
        let out =
            render(&text, data).map_err(|e| TemplateError(format!("{}: {e}", src.display())))?;
        std::fs::write(dst, out).map_err(|e| io("write", dst, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn substitutes_fields() {
        let d = json!({"Env": {"PORT": "8080"}, "Input": {"n": 3, "tags": ["a"]}, "App": "web"});
        assert_eq!(
            render("run {{.App}} on {{ .Env.PORT }}", &d).unwrap(),
            "run web on 8080"
        );
        assert_eq!(
            render("{{.Input.n}} {{.Input.tags}}", &d).unwrap(),
            "3 [\"a\"]"
        );
        assert_eq!(render("no braces", &d).unwrap(), "no braces");
    }

    #[test]
    fn errors_name_the_missing_field() {
        let d = json!({"Env": {"PORT": "1"}, "App": "web"});
        assert_eq!(
            render("{{.Env.HOST}}", &d).unwrap_err().to_string(),
            "`{{.Env.HOST}}`: no value `HOST` (known: PORT)"
        );
        assert_eq!(
            render("{{.Env.PORT", &d).unwrap_err().to_string(),
            "unclosed `{{` in `{{.Env.PORT`"
        );
        assert_eq!(
            render("{{ env }}", &d).unwrap_err().to_string(),
            "`{{env}}`: only field references like `{{.Env.NAME}}` are supported"
        );
    }
}
