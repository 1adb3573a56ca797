//! Time, file and template functions.

use super::*;

pub(super) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub(super) fn parse_time(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("{s:?} is not an RFC 3339 timestamp"))
}

pub(super) fn timeadd(a: FuncArgs) -> Result<Value, String> {
    let t = parse_time(&st(&a[0]))?;
    let d = st(&a[1]);
    let (neg, rest) = d
        .strip_prefix('-')
        .map_or((false, d.as_str()), |r| (true, r));
    let dur = crate::decode::humantime_like(rest)
        .ok_or_else(|| format!("{d:?} is not a duration such as \"1h30m\""))?;
    let dur = time::Duration::try_from(dur).map_err(|e| e.to_string())?;
    let sum = if neg {
        t.checked_sub(dur)
    } else {
        t.checked_add(dur)
    };
    Ok(Value::String(rfc3339(sum.ok_or_else(|| {
        format!("adding {d:?} goes past the years time can represent")
    })?)))
}

/// Terraform-style `formatdate` spec: YYYY YY MM M DD D hh h mm m ss s ZZZ, quoted literals.
pub(super) fn formatdate(a: FuncArgs) -> Result<Value, String> {
    let spec = st(&a[0]);
    let t = parse_time(&st(&a[1]))?;
    let mut out = String::new();
    let chars: Vec<char> = spec.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&x| x == '\'')
                .ok_or("unterminated quote in format")?;
            out.extend(&chars[i + 1..i + 1 + end]);
            i += end + 2;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let pad = |n: u32, w: usize| format!("{n:0w$}");
        let s = match (c, run) {
            ('Y', 4) => pad(t.year() as u32, 4),
            ('Y', 2) => pad(t.year() as u32 % 100, 2),
            ('M', 2) => pad(u32::from(u8::from(t.month())), 2),
            ('M', 1) => u8::from(t.month()).to_string(),
            ('D', 2) => pad(u32::from(t.day()), 2),
            ('D', 1) => t.day().to_string(),
            ('h', 2) => pad(u32::from(t.hour()), 2),
            ('h', 1) => t.hour().to_string(),
            ('m', 2) => pad(u32::from(t.minute()), 2),
            ('m', 1) => t.minute().to_string(),
            ('s', 2) => pad(u32::from(t.second()), 2),
            ('s', 1) => t.second().to_string(),
            ('Z', 3) => {
                if t.offset().is_utc() {
                    "UTC".to_owned()
                } else {
                    t.offset().to_string()
                }
            }
            (c, n) if c.is_ascii_alphabetic() => {
                return Err(format!(
                    "unsupported format sequence {:?}",
                    c.to_string().repeat(n)
                ));
            }
            (c, n) => c.to_string().repeat(n),
        };
        out.push_str(&s);
        i += run;
    }
    Ok(Value::String(out))
}

pub(super) fn fileset(a: FuncArgs) -> Result<Value, String> {
    let dir = resolve(&st(&a[0]));
    let pattern = dir.join(st(&a[1]));
    let mut out = Vec::new();
    for entry in
        glob::glob(&pattern.to_string_lossy()).map_err(|e| format!("invalid pattern: {e}"))?
    {
        let p = entry.map_err(|e| e.to_string())?;
        if p.is_file()
            && let Ok(rel) = p.strip_prefix(&dir)
        {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    out.sort();
    Ok(Value::Array(out.into_iter().map(Value::String).collect()))
}

pub(super) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Renders a template with the caller's variables plus `vars`.
pub(super) fn template(src: &str, vars: Map<String, Value>) -> Result<Value, String> {
    if crate::limits::too_deep(src, true).is_some() {
        return Err(format!(
            "the template nests more than {MAX_DEPTH} levels deep (the limit is {MAX_DEPTH})"
        ));
    }
    let depth = TEMPLATE_DEPTH.with(|d| d.get());
    // Templates that render templates (perhaps themselves) stop at a depth well within the
    // stack; each level is a whole evaluation.
    if depth >= MAX_TEMPLATE_DEPTH {
        return Err(format!(
            "templates render templates more than {MAX_TEMPLATE_DEPTH} levels deep (the limit is {MAX_TEMPLATE_DEPTH}); does one render itself?"
        ));
    }
    TEMPLATE_DEPTH.with(|d| d.set(depth + 1));
    let out = render_template(src, vars);
    TEMPLATE_DEPTH.with(|d| d.set(depth));
    out
}

/// How deep templates may render templates.
pub(super) const MAX_TEMPLATE_DEPTH: usize = 16;

pub(super) fn render_template(src: &str, vars: Map<String, Value>) -> Result<Value, String> {
    let tpl: hcl::Template = src
        .parse()
        .map_err(|e: hcl::Error| format!("invalid template: {e}"))?;
    let env = env();
    let mut ctx = base_context();
    for (k, v) in env.vars.iter().chain(vars.iter()) {
        ctx.declare_var(k.as_str(), v.clone());
    }
    tpl.evaluate(&ctx)
        .map(Value::String)
        .map_err(|e| e.to_string())
}

/// The optional vars object of the template functions.
pub(super) fn one_vars(a: &FuncArgs) -> Result<Map<String, Value>, String> {
    match a.len() {
        1 => Ok(Map::new()),
        2 => obj(&a[1]),
        n => Err(format!(
            "takes a path and at most one vars object, got {n} arguments"
        )),
    }
}

/// Renders every file of a directory into a temporary directory and returns its path. In
/// `validate` (pure) the files are rendered in memory only and the path is that of the source.
pub(super) fn templatedir(a: FuncArgs) -> Result<Value, String> {
    let src = resolve(&st(&a[0]));
    let vars = one_vars(&a)?;
    if is_pure() {
        fn check(from: &Path, vars: &Map<String, Value>, depth: usize) -> Result<(), String> {
            if depth > MAX_DEPTH {
                return Err(format!("directories nest more than {MAX_DEPTH} deep"));
            }
            for entry in fs_err::read_dir(from).map_err(|e| e.to_string())? {
                let p = entry.map_err(|e| e.to_string())?.path();
                if p.is_dir() {
                    check(&p, vars, depth + 1)?;
                } else {
                    let text = fs_err::read_to_string(&p).map_err(|e| e.to_string())?;
                    template(&text, vars.clone())?;
                }
            }
            Ok(())
        }
        check(&src, &vars, 0)?;
        return Ok(Value::String(src.display().to_string()));
    }
    // A fresh private (0700) directory that outlives the call: its path is the result.
    let out = tempfile::Builder::new()
        .prefix("wayline-templatedir-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?
        .keep();
    fn walk(from: &Path, to: &Path, vars: &Map<String, Value>) -> Result<(), String> {
        fs_err::create_dir_all(to).map_err(|e| e.to_string())?;
        for entry in fs_err::read_dir(from).map_err(|e| e.to_string())? {
            let entry = entry.map_err(|e| e.to_string())?;
            let p = entry.path();
            let dest = to.join(entry.file_name());
            if p.is_dir() {
                walk(&p, &dest, vars)?;
            } else {
                let text = fs_err::read_to_string(&p).map_err(|e| e.to_string())?;
                let rendered = template(&text, vars.clone())?;
                fs_err::write(&dest, rendered.as_str().unwrap_or_default())
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
    walk(&src, &out, &vars)?;
    Ok(Value::String(out.display().to_string()))
}
