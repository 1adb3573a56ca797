//! The function library available in expressions.
//!
//! hcl-rs functions are plain `fn` pointers, so functions that need the evaluation environment
//! (the project directory for `file()`, the variables for `templatefile()`) read it from a
//! thread-local that [`with_env`] sets for the duration of one evaluation.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use base64::Engine as _;
use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};
use hcl::{Map, Value};

use crate::value::{from_json, parse_number, to_json, type_name};

/// The key that marks the opaque value `dynamic(from, {config})` returns.
pub(crate) const DYNAMIC_KEY: &str = "__wayline_dynamic__";

/// Whether a value is a `dynamic()` result.
pub(crate) fn is_dynamic(v: &Value) -> bool {
    matches!(v, Value::Object(o) if o.contains_key(DYNAMIC_KEY))
}

/// What functions may see of the evaluation that called them.
#[derive(Debug, Clone, Default)]
pub(crate) struct FnEnv {
    /// Relative paths resolve against this (the project directory).
    pub(crate) base_dir: PathBuf,
    /// The variables in scope (for the template functions).
    pub(crate) vars: Map<String, Value>,
}

thread_local! {
    static ENV: RefCell<FnEnv> = RefCell::new(FnEnv::default());
    static PURE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Templates being rendered on this thread (a template may render templates).
    static TEMPLATE_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

use crate::limits::{MAX_DEPTH, MAX_RESULT_BYTES, MAX_RESULT_ITEMS};

/// Runs `f` with the functions pure: no processes (git is read from `.git`), no writes
/// (`templatedir` renders in memory). `wayline validate` runs this way.
pub(crate) fn pure<T>(f: impl FnOnce() -> T) -> T {
    let prev = PURE.with(|p| p.replace(true));
    let out = f();
    PURE.with(|p| p.set(prev));
    out
}

fn is_pure() -> bool {
    PURE.with(std::cell::Cell::get)
}

fn git_head(f: impl Fn(&crate::git::read_only::Head) -> String) -> Result<Value, String> {
    match crate::git::read_only::head(&base_dir()).as_ref() {
        Ok(h) => Ok(Value::String(f(h))),
        Err(e) => Err(e.clone()),
    }
}

/// Runs `f` with `env` visible to the functions, restoring the previous environment afterwards
/// (templates evaluate nested).
pub(crate) fn with_env<T>(env: FnEnv, f: impl FnOnce() -> T) -> T {
    let prev = ENV.with(|e| std::mem::replace(&mut *e.borrow_mut(), env));
    let out = f();
    ENV.with(|e| *e.borrow_mut() = prev);
    out
}

fn env() -> FnEnv {
    ENV.with(|e| e.borrow().clone())
}

fn base_dir() -> PathBuf {
    ENV.with(|e| e.borrow().base_dir.clone())
}

fn resolve(p: &str) -> PathBuf {
    let p = expand_home(p);
    if p.is_absolute() {
        p
    } else {
        base_dir().join(p)
    }
}

fn expand_home(p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/").or_else(|| (p == "~").then_some(""))
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    PathBuf::from(p)
}

static DEFS: LazyLock<HashMap<&'static str, FuncDef>> = LazyLock::new(build);

/// The definition of one function.
pub(crate) fn def(name: &str) -> Option<&'static FuncDef> {
    DEFS.get(name)
}

/// A context holding every function (for templates, whose text is only known when called).
pub(crate) fn base_context() -> Context<'static> {
    let mut ctx = Context::new();
    for (name, d) in DEFS.iter() {
        ctx.declare_func(*name, d.clone());
    }
    ctx
}

/// Names of all functions, for "did you mean".
pub(crate) fn names() -> &'static [&'static str] {
    NAMES
}

use ParamType as P;

macro_rules! funcs {
    ($( $name:literal => [$($p:expr),*] $(+ $var:expr)? => $f:expr ;)*) => {
        const NAMES: &[&str] = &[$($name),*];
        fn build() -> HashMap<&'static str, FuncDef> {
            let mut ctx = HashMap::new();
            $(
                #[allow(unused_mut)]
                let mut b = FuncDef::builder()$(.param($p))*;
                $( b = b.variadic_param($var); )?
                {
                    const F: fn(FuncArgs) -> Result<Value, String> = $f;
                    ctx.insert($name, b.build(|a| bounded($name, F(a))));
                }
            )*
            ctx
        }
    };
}

funcs! {
    // strings
    "chomp" => [P::String] => |a| s1(&a, |s| s.trim_end_matches(['\n', '\r']).to_owned());
    "lower" => [P::String] => |a| s1(&a, str::to_lowercase);
    "upper" => [P::String] => |a| s1(&a, str::to_uppercase);
    "title" => [P::String] => |a| s1(&a, title);
    "strrev" => [P::String] => |a| s1(&a, |s| s.chars().rev().collect());
    "trimspace" => [P::String] => |a| s1(&a, |s| s.trim().to_owned());
    "trim" => [P::String, P::String] => |a| { let cut = st(&a[1]); s1(&a, |s| s.trim_matches(|c| cut.contains(c)).to_owned()) };
    "trimprefix" => [P::String, P::String] => |a| { let p = st(&a[1]); s1(&a, |s| s.strip_prefix(p.as_str()).unwrap_or(s).to_owned()) };
    "trimsuffix" => [P::String, P::String] => |a| { let p = st(&a[1]); s1(&a, |s| s.strip_suffix(p.as_str()).unwrap_or(s).to_owned()) };
    "startswith" => [P::String, P::String] => |a| Ok(Value::Bool(st(&a[0]).starts_with(&st(&a[1]))));
    "endswith" => [P::String, P::String] => |a| Ok(Value::Bool(st(&a[0]).ends_with(&st(&a[1]))));
    "strcontains" => [P::String, P::String] => |a| Ok(Value::Bool(st(&a[0]).contains(&st(&a[1]))));
    "indent" => [P::Number, P::String] => |a| indent(&a);
    "join" => [P::String, P::array_of(P::Any)] => |a| join(&a);
    "split" => [P::String, P::String] => |a| Ok(Value::Array(st(&a[1]).split(st(&a[0]).as_str()).map(|s| Value::String(s.to_owned())).collect()));
    "replace" => [P::String, P::String, P::String] => replace;
    "substr" => [P::String, P::Number, P::Number] => substr;
    "format" => [P::String] + P::Any => |a| { let v = a.into_values(); format(&st(&v[0]), &v[1..]).map(Value::String) };
    "formatlist" => [P::String] + P::Any => formatlist;
    "regex" => [P::String, P::String] => |a| regex_fn(&a, false);
    "regexall" => [P::String, P::String] => |a| regex_fn(&a, true);
    "tostring" => [P::Any] => |a| match &a[0] { Value::Array(_) | Value::Object(_) => Err(format!("cannot convert {} to string", type_name(&a[0]))), Value::Null => Ok(Value::Null), v => Ok(Value::String(crate::value::to_text(v))) };
    "tonumber" => [P::Any] => |a| crate::value::convert(a[0].clone(), &crate::schema::VarType::Number);
    "tobool" => [P::Any] => |a| crate::value::convert(a[0].clone(), &crate::schema::VarType::Bool);
    "tolist" => [P::Array(Box::new(P::Any))] => |a| Ok(a[0].clone());
    "toset" => [P::Array(Box::new(P::Any))] => |a| Ok(Value::Array(distinct(arr(&a[0])?)));
    "tomap" => [P::Object(Box::new(P::Any))] => |a| Ok(a[0].clone());
    // numbers
    "abs" => [P::Number] => |a| n1(&a, f64::abs);
    "ceil" => [P::Number] => |a| n1(&a, f64::ceil);
    "floor" => [P::Number] => |a| n1(&a, f64::floor);
    "signum" => [P::Number] => |a| n1(&a, |x| if x == 0.0 { 0.0 } else { x.signum() });
    "log" => [P::Number, P::Number] => |a| number(num(&a[0])?.log(num(&a[1])?));
    "pow" => [P::Number, P::Number] => |a| number(num(&a[0])?.powf(num(&a[1])?));
    "max" => [] + P::Number => |a| fold_num(&a, f64::max);
    "min" => [] + P::Number => |a| fold_num(&a, f64::min);
    "sum" => [P::array_of(P::Number)] => |a| { let mut t = 0.0; for v in arr(&a[0])? { t += num(&v)?; } number(t) };
    "parseint" => [P::String, P::Number] => |a| parseint(&a);
    // collections
    "length" => [P::Any] => |a| Ok(Value::Number((match &a[0] { Value::String(s) => s.chars().count(), Value::Array(v) => v.len(), Value::Object(o) => o.len(), v => return Err(format!("cannot take the length of a {}", type_name(v))) } as u64).into()));
    "concat" => [] + P::array_of(P::Any) => |a| Ok(Value::Array(a.into_values().into_iter().flat_map(|v| arr(&v).unwrap_or_default()).collect()));
    "contains" => [P::array_of(P::Any), P::Any] => |a| Ok(Value::Bool(arr(&a[0])?.contains(&a[1])));
    "distinct" => [P::array_of(P::Any)] => |a| Ok(Value::Array(distinct(arr(&a[0])?)));
    "compact" => [P::array_of(P::Any)] => |a| Ok(Value::Array(arr(&a[0])?.into_iter().filter(|v| !v.is_null() && v.as_str() != Some("")).collect()));
    "coalesce" => [] + P::Any => |a| a.into_values().into_iter().find(|v| !v.is_null() && v.as_str() != Some("")).ok_or_else(|| "no non-null, non-empty argument".to_owned());
    "coalescelist" => [] + P::array_of(P::Any) => |a| a.into_values().into_iter().find(|v| matches!(v, Value::Array(x) if !x.is_empty())).ok_or_else(|| "no non-empty list argument".to_owned());
    "element" => [P::array_of(P::Any), P::Number] => |a| { let v = arr(&a[0])?; if v.is_empty() { return Err("cannot use element on an empty list".into()); } Ok(v[(num(&a[1])? as usize) % v.len()].clone()) };
    "index" => [P::array_of(P::Any), P::Any] => |a| arr(&a[0])?.iter().position(|v| v == &a[1]).map(|i| Value::Number((i as u64).into())).ok_or_else(|| "item not found".to_owned());
    "chunklist" => [P::array_of(P::Any), P::Number] => |a| { let n = (num(&a[1])? as usize).max(1); Ok(Value::Array(arr(&a[0])?.chunks(n).map(|c| Value::Array(c.to_vec())).collect())) };
    "flatten" => [P::array_of(P::Any)] => |a| { let mut out = Vec::new(); flatten(&a[0], &mut out); Ok(Value::Array(out)) };
    // Like HCL, keys and values come in lexical key order.
    "keys" => [P::object_of(P::Any)] => |a| Ok(Value::Array(sorted(obj(&a[0])?).into_iter().map(|(k, _)| Value::String(k)).collect()));
    "values" => [P::object_of(P::Any)] => |a| Ok(Value::Array(sorted(obj(&a[0])?).into_iter().map(|(_, v)| v).collect()));
    "lookup" => [P::object_of(P::Any), P::String] + P::Any => |a| { let v = a.into_values(); obj(&v[0])?.get(&st(&v[1])).cloned().or_else(|| v.get(2).cloned()).ok_or_else(|| format!("no key {:?} and no default", st(&v[1]))) };
    "merge" => [] + P::Any => |a| { let mut out = Map::new(); for v in a.into_values() { if v.is_null() { continue; } out.extend(obj(&v)?); } Ok(Value::Object(out)) };
    "range" => [P::Number] + P::Number => range;
    "reverse" => [P::array_of(P::Any)] => |a| Ok(Value::Array(arr(&a[0])?.into_iter().rev().collect()));
    "slice" => [P::array_of(P::Any), P::Number, P::Number] => |a| { let v = arr(&a[0])?; let (s, e) = (num(&a[1])? as usize, num(&a[2])? as usize); if s > e || e > v.len() { return Err(format!("slice {s}..{e} is out of range for a list of {}", v.len())); } Ok(Value::Array(v[s..e].to_vec())) };
    "sort" => [P::array_of(P::Any)] => |a| { let mut v: Vec<String> = arr(&a[0])?.iter().map(crate::value::to_text).collect(); v.sort(); Ok(Value::Array(v.into_iter().map(Value::String).collect())) };
    "zipmap" => [P::array_of(P::String), P::array_of(P::Any)] => |a| { let k = arr(&a[0])?; let v = arr(&a[1])?; if k.len() != v.len() { return Err("key and value lists differ in length".into()); } Ok(Value::Object(k.iter().map(st).zip(v).collect())) };
    "setunion" => [] + P::array_of(P::Any) => |a| Ok(Value::Array(distinct(a.into_values().into_iter().flat_map(|v| arr(&v).unwrap_or_default()).collect())));
    "setintersection" => [P::array_of(P::Any)] + P::array_of(P::Any) => |a| { let v = a.into_values(); let rest: Vec<Vec<Value>> = v[1..].iter().map(|x| arr(x).unwrap_or_default()).collect(); Ok(Value::Array(distinct(arr(&v[0])?.into_iter().filter(|x| rest.iter().all(|r| r.contains(x))).collect()))) };
    "setsubtract" => [P::array_of(P::Any), P::array_of(P::Any)] => |a| { let b = arr(&a[1])?; Ok(Value::Array(distinct(arr(&a[0])?.into_iter().filter(|x| !b.contains(x)).collect()))) };
    "setproduct" => [] + P::array_of(P::Any) => |a| { let mut out: Vec<Vec<Value>> = vec![vec![]]; for s in a.into_values() { let s = arr(&s)?; if out.len().saturating_mul(s.len()) > MAX_RESULT_ITEMS { return Err(format!("the product has more than {MAX_RESULT_ITEMS} elements (the limit)")); } out = out.into_iter().flat_map(|p| s.iter().map(move |x| { let mut q = p.clone(); q.push(x.clone()); q })).collect(); } Ok(Value::Array(out.into_iter().map(Value::Array).collect())) };
    "alltrue" => [P::array_of(P::Any)] => |a| Ok(Value::Bool(arr(&a[0])?.iter().all(|v| matches!(v, Value::Bool(true)) || v.as_str() == Some("true"))));
    "anytrue" => [P::array_of(P::Any)] => |a| Ok(Value::Bool(arr(&a[0])?.iter().any(|v| matches!(v, Value::Bool(true)) || v.as_str() == Some("true"))));
    // encoding
    "base64encode" => [P::String] => |a| s1(&a, |s| base64::engine::general_purpose::STANDARD.encode(s));
    "base64decode" => [P::String] => |a| { let b = base64::engine::general_purpose::STANDARD.decode(st(&a[0]).trim()).map_err(|e| format!("invalid base64: {e}"))?; String::from_utf8(b).map(Value::String).map_err(|_| "the decoded bytes are not UTF-8".to_owned()) };
    "base64gzip" => [P::String] => |a| Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(gzip_stored(st(&a[0]).as_bytes()))));
    "jsonencode" => [P::Any] => |a| serde_json::to_string(&to_json(&a[0])).map(Value::String).map_err(|e| e.to_string());
    "jsondecode" => [P::String] => |a| serde_json::from_str::<serde_json::Value>(&st(&a[0])).map(|j| from_json(&j)).map_err(|e| format!("invalid JSON: {e}"));
    "yamlencode" => [P::Any] => |a| Ok(Value::String(yaml_encode(&a[0], 0)));
    "yamldecode" => [P::String] => |a| yaml_decode(&st(&a[0]));
    "csvdecode" => [P::String] => |a| csv_decode(&st(&a[0]));
    "urlencode" => [P::String] => |a| s1(&a, urlencode);
    // time
    "timestamp" => [] => |_| Ok(Value::String(rfc3339(time::OffsetDateTime::now_utc())));
    "timeadd" => [P::String, P::String] => timeadd;
    "formatdate" => [P::String, P::String] => formatdate;
    // filesystem
    "file" => [P::String] => |a| { let p = resolve(&st(&a[0])); fs_err::read_to_string(&p).map(Value::String).map_err(|e| e.to_string()) };
    "filebase64" => [P::String] => |a| { let p = resolve(&st(&a[0])); fs_err::read(&p).map(|b| Value::String(base64::engine::general_purpose::STANDARD.encode(b))).map_err(|e| e.to_string()) };
    "fileexists" => [P::String] => |a| Ok(Value::Bool(resolve(&st(&a[0])).is_file()));
    "fileset" => [P::String, P::String] => fileset;
    "basename" => [P::String] => |a| s1(&a, |s| Path::new(s).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    "dirname" => [P::String] => |a| s1(&a, |s| Path::new(s).parent().map(|n| { let d = n.to_string_lossy().into_owned(); if d.is_empty() { ".".to_owned() } else { d } }).unwrap_or_default());
    "abspath" => [P::String] => |a| Ok(Value::String(normalize(&resolve(&st(&a[0]))).display().to_string()));
    "pathexpand" => [P::String] => |a| Ok(Value::String(expand_home(&st(&a[0])).display().to_string()));
    // templates
    // The vars argument is optional, as in Waypoint (a second one is an error, see `one_vars`).
    "templatefile" => [P::String] + P::object_of(P::Any) => |a| { let vars = one_vars(&a)?; let p = resolve(&st(&a[0])); let src = fs_err::read_to_string(&p).map_err(|e| e.to_string())?; template(&src, vars) };
    "templatestring" => [P::String] + P::object_of(P::Any) => |a| { let vars = one_vars(&a)?; template(&st(&a[0]), vars) };
    "templatedir" => [P::String] + P::object_of(P::Any) => templatedir;
    // selectors
    "selectormatch" => [P::object_of(P::Any), P::String] => |a| { let sel = selector(&st(&a[1]))?; Ok(Value::Bool(matches_map(&sel, obj(&a[0])?))) };
    "selectorlookup" => [P::object_of(P::Any), P::object_of(P::Any), P::Any] => |a| { let labels = obj(&a[0])?; for (s, v) in obj(&a[1])? { if matches_map(&selector(&s)?, labels.clone()) { return Ok(v); } } Ok(a[2].clone()) };
    // dynamic config
    "dynamic" => [P::String, P::object_of(P::Any)] => dynamic;
    "configdynamic" => [P::String, P::object_of(P::Any)] => dynamic;
    // git
    "gitrefpretty" => [] => |_| if is_pure() { git_head(|h| h.tag.clone().unwrap_or_else(|| h.hash.clone())) } else { crate::git::ref_pretty(&base_dir()).map(Value::String).map_err(|e| e.to_string()) };
    "gitrefhash" => [] => |_| if is_pure() { git_head(|h| h.hash.clone()) } else { crate::git::ref_hash(&base_dir()).map(Value::String).map_err(|e| e.to_string()) };
    "gitreftag" => [] => |_| if is_pure() { git_head(|h| h.tag.clone().unwrap_or_default()) } else { crate::git::ref_tag(&base_dir()).map(|t| Value::String(t.unwrap_or_default())).map_err(|e| e.to_string()) };
    "gitremoteurl" => [P::String] => |a| if is_pure() { let n = st(&a[0]); git_head(|h| h.remotes.get(&n).cloned().unwrap_or_default()) } else { crate::git::remote_url(&base_dir(), &st(&a[0])).map(|t| Value::String(t.unwrap_or_default())).map_err(|e| e.to_string()) };
}

fn st(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => crate::value::to_text(other),
    }
}

fn num(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => Ok(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a number")),
        other => Err(format!("expected a number, found {}", type_name(other))),
    }
}

fn number(x: f64) -> Result<Value, String> {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        return Ok(Value::Number((x as i64).into()));
    }
    hcl::Number::from_f64(x)
        .map(Value::Number)
        .ok_or_else(|| "the result is not a finite number".to_owned())
}

fn arr(v: &Value) -> Result<Vec<Value>, String> {
    match v {
        Value::Array(a) => Ok(a.clone()),
        other => Err(format!("expected a list, found {}", type_name(other))),
    }
}

fn obj(v: &Value) -> Result<Map<String, Value>, String> {
    match v {
        Value::Object(o) => Ok(o.clone()),
        other => Err(format!("expected an object, found {}", type_name(other))),
    }
}

fn sorted(m: Map<String, Value>) -> Vec<(String, Value)> {
    let mut v: Vec<(String, Value)> = m.into_iter().collect();
    v.sort_by(|x, y| x.0.cmp(&y.0));
    v
}

fn s1(a: &FuncArgs, f: impl Fn(&str) -> String) -> Result<Value, String> {
    Ok(Value::String(f(&st(&a[0]))))
}

fn n1(a: &FuncArgs, f: impl Fn(f64) -> f64) -> Result<Value, String> {
    number(f(num(&a[0])?))
}

fn fold_num(a: &FuncArgs, f: impl Fn(f64, f64) -> f64) -> Result<Value, String> {
    let vals: Vec<f64> = a.iter().map(num).collect::<Result<_, _>>()?;
    let first = *vals.first().ok_or("needs at least one number")?;
    number(vals.into_iter().fold(first, f))
}

fn distinct(v: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(v.len());
    for x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

fn flatten(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
        other => out.push(other.clone()),
    }
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace();
    }
    out
}

fn join(a: &FuncArgs) -> Result<Value, String> {
    let items: Vec<String> = arr(&a[1])?.iter().map(st).collect();
    Ok(Value::String(items.join(&st(&a[0]))))
}

fn replace(a: FuncArgs) -> Result<Value, String> {
    let (s, from, to) = (st(&a[0]), st(&a[1]), st(&a[2]));
    if from.len() > 1 && from.starts_with('/') && from.ends_with('/') {
        let re = regex::Regex::new(&from[1..from.len() - 1])
            .map_err(|e| format!("invalid regex: {e}"))?;
        let size = re.find_iter(&s).count() as u128 * to.len() as u128 + s.len() as u128;
        if size > MAX_RESULT_BYTES as u128 {
            return Err(too_big("replace", size as usize));
        }
        return Ok(Value::String(re.replace_all(&s, to.as_str()).into_owned()));
    }
    // An empty `from` matches between every character.
    let matches = if from.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(from.as_str()).count()
    };
    let size = matches as u128 * to.len() as u128 + s.len() as u128;
    if size > MAX_RESULT_BYTES as u128 {
        return Err(too_big("replace", size.min(usize::MAX as u128) as usize));
    }
    Ok(Value::String(s.replace(&from, &to)))
}

fn parseint(a: &FuncArgs) -> Result<Value, String> {
    let (text, base) = (st(&a[0]), num(&a[1])?);
    if !(2.0..=36.0).contains(&base) || base.fract() != 0.0 {
        return Err(format!(
            "the base must be a whole number between 2 and 36, found {base}"
        ));
    }
    i64::from_str_radix(&text, base as u32)
        .map(|i| Value::Number(i.into()))
        .map_err(|_| format!("cannot parse {text:?} as a base-{base} integer"))
}

fn substr(a: FuncArgs) -> Result<Value, String> {
    let chars: Vec<char> = st(&a[0]).chars().collect();
    let len = chars.len() as i64;
    let mut off = num(&a[1])? as i64;
    if off < 0 {
        off += len;
    }
    let off = off.clamp(0, len) as usize;
    let n = num(&a[2])? as i64;
    let end = if n < 0 {
        chars.len()
    } else {
        off.saturating_add(n as usize).min(chars.len())
    };
    Ok(Value::String(chars[off..end].iter().collect()))
}

/// Most characters a `format` width or precision may ask for.
const MAX_WIDTH: usize = 4096;

/// One `%…` directive: flags, width, precision.
#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// `format` as HCL has it (Go's verbs): `%v %#v %t %s %q %d %b %o %x %X %e %E %f %g %G %%`
/// with the flags `-+ 0#`, a width, a precision and `%[n]` argument indexes.
fn format(spec: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut it = spec.chars().peekable();
    let mut next_arg = 0;
    let mut reordered = false;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut sp = Spec::default();
        while let Some(&f) = it.peek() {
            match f {
                '-' => sp.minus = true,
                '+' => sp.plus = true,
                ' ' => sp.space = true,
                '0' => sp.zero = true,
                '#' => sp.sharp = true,
                _ => break,
            }
            it.next();
        }
        if it.peek() == Some(&'[') {
            it.next();
            let n = digits(&mut it).ok_or("`%[` needs an argument number, e.g. `%[1]s`")?;
            if it.next() != Some(']') || n == 0 {
                return Err("an argument index is written `%[1]s` (1-based)".to_owned());
            }
            next_arg = n - 1;
            reordered = true;
        }
        sp.width = digits(&mut it);
        if it.peek() == Some(&'.') {
            it.next();
            sp.prec = Some(digits(&mut it).unwrap_or(0));
        }
        if sp.width.max(sp.prec).is_some_and(|w| w > MAX_WIDTH) {
            return Err(format!(
                "a width or precision in the format string is larger than the limit of {MAX_WIDTH}"
            ));
        }
        let verb = it.next().ok_or("format string ends with `%`")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args.get(next_arg).ok_or_else(|| {
            format!(
                "not enough arguments for format {spec:?}: it needs at least {}",
                next_arg + 1
            )
        })?;
        next_arg += 1;
        let text = format_one(verb, &sp, arg)?;
        pad(
            &mut out,
            &text,
            &sp,
            matches!(
                verb,
                'd' | 'b' | 'o' | 'x' | 'X' | 'e' | 'E' | 'f' | 'g' | 'G'
            ),
        );
        if out.len() > MAX_RESULT_BYTES {
            return Err(too_big("format", out.len()));
        }
    }
    // As Go: with explicit argument indexes, unused arguments are not an error.
    if next_arg < args.len() && !reordered {
        return Err(format!(
            "too many arguments for format {spec:?}: {} given, {next_arg} used",
            args.len()
        ));
    }
    Ok(out)
}

fn digits(it: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(d) = it.peek().and_then(|c| c.to_digit(10)) {
        n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
        it.next();
    }
    n
}

/// One formatted argument, before padding.
fn format_one(verb: char, sp: &Spec, arg: &Value) -> Result<String, String> {
    let sign = |neg: bool| {
        if neg {
            "-"
        } else if sp.plus {
            "+"
        } else if sp.space {
            " "
        } else {
            ""
        }
    };
    let int = |v: &Value| -> Result<i128, String> {
        let x = num(v)?;
        if x.fract() != 0.0 {
            return Err(format!("`%{verb}` needs a whole number, found {x}"));
        }
        Ok(x as i128)
    };
    Ok(match verb {
        'v' if sp.sharp => serde_json::to_string(&to_json(arg)).map_err(|e| e.to_string())?,
        'v' => match arg {
            Value::Number(_) => {
                let x = num(arg)?;
                format!("{}{}", sign(x < 0.0), st(&number(x.abs())?))
            }
            Value::Array(_) | Value::Object(_) => {
                serde_json::to_string(&to_json(arg)).map_err(|e| e.to_string())?
            }
            other => st(other),
        },
        's' => match arg {
            Value::Array(_) | Value::Object(_) => {
                return Err(format!("`%s` cannot format a {}", type_name(arg)));
            }
            other => truncate(&st(other), sp.prec),
        },
        'q' => serde_json::to_string(&truncate(&st(arg), sp.prec)).map_err(|e| e.to_string())?,
        't' => match crate::value::convert(arg.clone(), &crate::schema::VarType::Bool)? {
            Value::Bool(b) => b.to_string(),
            _ => return Err("`%t` needs a bool".to_owned()),
        },
        'd' | 'b' | 'o' | 'x' | 'X' => {
            let n = int(arg)?;
            let digits = match verb {
                'd' => n.unsigned_abs().to_string(),
                'b' => format!("{:b}", n.unsigned_abs()),
                'o' => format!("{:o}", n.unsigned_abs()),
                'x' => format!("{:x}", n.unsigned_abs()),
                _ => format!("{:X}", n.unsigned_abs()),
            };
            let prefix = match (sp.sharp, verb) {
                (true, 'b') => "0b",
                (true, 'o') => "0",
                (true, 'x') => "0x",
                (true, 'X') => "0X",
                _ => "",
            };
            format!("{}{prefix}{digits}", sign(n < 0))
        }
        'e' | 'E' | 'f' | 'g' | 'G' => {
            let x = num(arg)?;
            let body = match verb {
                'f' => format!("{:.*}", sp.prec.unwrap_or(6), x.abs()),
                'e' | 'E' => go_exp(x.abs(), sp.prec.unwrap_or(6)),
                _ => match sp.prec {
                    Some(p) => format!("{:.*}", p, x.abs()),
                    None => format!("{}", x.abs()),
                },
            };
            let body = if verb == 'E' || verb == 'G' {
                body.to_uppercase()
            } else {
                body
            };
            format!("{}{body}", sign(x < 0.0))
        }
        other => return Err(format!("unsupported format verb `%{other}`")),
    })
}

/// Go's `%e`: `1.234560e+03`.
fn go_exp(x: f64, prec: usize) -> String {
    let s = format!("{x:.prec$e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

fn truncate(s: &str, prec: Option<usize>) -> String {
    match prec {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_owned(),
    }
}

/// Pads to the width: left with `-`, with zeros after the sign for numbers with `0`.
fn pad(out: &mut String, text: &str, sp: &Spec, numeric: bool) {
    let len = text.chars().count();
    let fill = sp.width.unwrap_or(0).saturating_sub(len);
    if sp.minus {
        out.push_str(text);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if sp.zero && numeric {
        let split = text.find(|c: char| c.is_ascii_digit()).unwrap_or(0);
        out.push_str(&text[..split]);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(&text[split..]);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(text);
    }
}

/// "`f` would build a result of N bytes; the limit is …".
fn too_big(f: &str, n: usize) -> String {
    format!(
        "`{f}` would build a result of {n} bytes, more than the limit of {MAX_RESULT_BYTES} bytes (16 MiB)"
    )
}

/// Refuses results past the size limits: every function's result passes through here, so
/// nesting calls (each doubling its input) cannot build more than twice the limit.
fn bounded(name: &str, r: Result<Value, String>) -> Result<Value, String> {
    match &r {
        Ok(Value::String(s)) if s.len() > MAX_RESULT_BYTES => Err(too_big(name, s.len())),
        Ok(Value::Array(a)) if a.len() > MAX_RESULT_ITEMS => Err(format!(
            "`{name}` would build a list of {} elements, more than the limit of {MAX_RESULT_ITEMS}",
            a.len()
        )),
        Ok(Value::Object(o)) if o.len() > MAX_RESULT_ITEMS => Err(format!(
            "`{name}` would build a map of {} elements, more than the limit of {MAX_RESULT_ITEMS}",
            o.len()
        )),
        _ => r,
    }
}

/// `indent(n, s)`: `n` spaces after every newline, bounded before anything is allocated.
fn indent(a: &FuncArgs) -> Result<Value, String> {
    let n = num(&a[0])?;
    let s = st(&a[1]);
    if n < 0.0 || n.fract() != 0.0 {
        return Err(format!(
            "the number of spaces must be a whole number >= 0, found {n}"
        ));
    }
    let lines = s.matches('\n').count();
    let size = (n as u128) * (lines as u128) + s.len() as u128;
    if size > MAX_RESULT_BYTES as u128 || n > MAX_RESULT_BYTES as f64 {
        return Err(format!(
            "indenting by {n} spaces would build a result of {size} bytes, more than the limit of {MAX_RESULT_BYTES} bytes (16 MiB)"
        ));
    }
    let pad = " ".repeat(n as usize);
    Ok(Value::String(s.replace('\n', &format!("\n{pad}"))))
}

fn formatlist(a: FuncArgs) -> Result<Value, String> {
    let v = a.into_values();
    let spec = st(&v[0]);
    let n = v[1..]
        .iter()
        .filter_map(|x| {
            if let Value::Array(a) = x {
                Some(a.len())
            } else {
                None
            }
        })
        .max()
        .unwrap_or(1);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let row: Vec<Value> = v[1..]
            .iter()
            .map(|x| match x {
                Value::Array(a) => a.get(i).cloned().unwrap_or(Value::Null),
                other => other.clone(),
            })
            .collect();
        out.push(Value::String(format(&spec, &row)?));
    }
    Ok(Value::Array(out))
}

fn regex_fn(a: &FuncArgs, all: bool) -> Result<Value, String> {
    let re = regex::Regex::new(&st(&a[0])).map_err(|e| format!("invalid regex: {e}"))?;
    let s = st(&a[1]);
    let one = |caps: regex::Captures<'_>| -> Value {
        let named: Vec<&str> = re.capture_names().flatten().collect();
        if !named.is_empty() {
            Value::Object(
                named
                    .iter()
                    .map(|n| {
                        (
                            (*n).to_owned(),
                            Value::String(caps.name(n).map_or("", |m| m.as_str()).to_owned()),
                        )
                    })
                    .collect(),
            )
        } else if caps.len() > 1 {
            Value::Array(
                caps.iter()
                    .skip(1)
                    .map(|m| Value::String(m.map_or("", |m| m.as_str()).to_owned()))
                    .collect(),
            )
        } else {
            Value::String(caps.get(0).map_or("", |m| m.as_str()).to_owned())
        }
    };
    if all {
        return Ok(Value::Array(re.captures_iter(&s).map(one).collect()));
    }
    re.captures(&s)
        .map(one)
        .ok_or_else(|| "pattern did not match".to_owned())
}

fn range(a: FuncArgs) -> Result<Value, String> {
    let v: Vec<f64> = a.iter().map(num).collect::<Result<_, _>>()?;
    let (start, end, step) = match v.as_slice() {
        [e] => (0.0, *e, 1.0),
        [s, e] => (*s, *e, if e >= s { 1.0 } else { -1.0 }),
        [s, e, st] => (*s, *e, *st),
        _ => return Err("range takes one to three numbers".to_owned()),
    };
    if step == 0.0 {
        return Err("step must not be zero".to_owned());
    }
    let mut out = Vec::new();
    let mut x = start;
    while (step > 0.0 && x < end) || (step < 0.0 && x > end) {
        if out.len() >= 1024 {
            return Err("range would produce more than 1024 elements".to_owned());
        }
        out.push(number(x)?);
        x += step;
    }
    Ok(Value::Array(out))
}

fn gzip_stored(data: &[u8]) -> Vec<u8> {
    // Uncompressed ("stored") deflate blocks: valid gzip without a compression dependency.
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut chunks = data.chunks(65535).peekable();
    if chunks.peek().is_none() {
        out.extend([1, 0, 0, 0xff, 0xff]);
    }
    while let Some(c) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = c.len() as u16;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(c);
    }
    let mut crc = 0xffff_ffffu32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    out.extend((!crc).to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out
}

fn yaml_scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !matches!(
            s,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        )
        && parse_number(s).is_none();
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

fn yaml_encode(v: &Value, indent: usize) -> String {
    let pad = "  ".repeat(indent);
    match v {
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| match x {
                Value::Array(i) if !i.is_empty() => {
                    format!("{pad}-\n{}", yaml_encode(x, indent + 1))
                }
                Value::Object(o) if !o.is_empty() => {
                    let inner = yaml_encode(x, indent + 1);
                    format!("{pad}- {}", inner.trim_start())
                }
                other => format!("{pad}- {}", yaml_encode(other, 0)),
            })
            .collect(),
        Value::Object(o) if !o.is_empty() => o
            .iter()
            .map(|(k, x)| match x {
                Value::Array(i) if !i.is_empty() => {
                    format!("{pad}{}:\n{}", yaml_scalar(k), yaml_encode(x, indent))
                }
                Value::Object(i) if !i.is_empty() => {
                    format!("{pad}{}:\n{}", yaml_scalar(k), yaml_encode(x, indent + 1))
                }
                other => format!("{pad}{}: {}", yaml_scalar(k), yaml_encode(other, 0)),
            })
            .collect(),
        Value::Array(_) => "[]\n".to_owned(),
        Value::Object(_) => "{}\n".to_owned(),
        Value::Null => "null\n".to_owned(),
        Value::Bool(b) => format!("{b}\n"),
        Value::Number(n) => format!("{n}\n"),
        Value::String(s) => format!("{}\n", yaml_scalar(s)),
    }
}

/// Decodes the common YAML subset: block mappings and sequences, plain/quoted scalars, `|`
/// block scalars, flow collections written as JSON, comments and a leading `---`.
fn yaml_decode(src: &str) -> Result<Value, String> {
    let mut lines: Vec<(usize, String)> = Vec::new();
    for raw in src.lines() {
        let trimmed = raw.trim_end();
        let body = trimmed.trim_start();
        if body.is_empty() || body.starts_with('#') || body == "---" {
            continue;
        }
        if raw.starts_with('\t') {
            return Err("YAML indentation must use spaces".to_owned());
        }
        let indent = trimmed.len() - body.len();
        let body = match body.find(" #") {
            Some(i) if !body[..i].contains(['"', '\'']) => body[..i].trim_end(),
            _ => body,
        };
        lines.push((indent, body.to_owned()));
    }
    if lines.is_empty() {
        return Ok(Value::Null);
    }
    let mut i = 0;
    let indent = lines[0].0;
    let v = yaml_block(&mut lines, &mut i, indent, 0)?;
    if i < lines.len() {
        return Err(format!("unexpected indentation at {:?}", lines[i].1));
    }
    Ok(v)
}

fn yaml_block(
    lines: &mut Vec<(usize, String)>,
    i: &mut usize,
    indent: usize,
    depth: usize,
) -> Result<Value, String> {
    if depth > 64 {
        return Err("YAML nesting is too deep".to_owned());
    }
    let is_item = |t: &str| t == "-" || t.starts_with("- ");
    if is_item(&lines[*i].1) {
        let mut out = Vec::new();
        while *i < lines.len() && lines[*i].0 == indent && is_item(&lines[*i].1) {
            let rest = lines[*i].1[1..].trim_start().to_owned();
            if rest.is_empty() {
                *i += 1;
                if *i < lines.len() && lines[*i].0 > indent {
                    let inner = lines[*i].0;
                    out.push(yaml_block(lines, i, inner, depth + 1)?);
                } else {
                    out.push(Value::Null);
                }
            } else if yaml_key(&rest).is_some() {
                // `- key: value` starts a mapping indented past the dash.
                let inner = indent + (lines[*i].1.len() - rest.len());
                lines[*i] = (inner, rest);
                out.push(yaml_block(lines, i, inner, depth + 1)?);
            } else {
                *i += 1;
                out.push(yaml_scalar_value(&rest)?);
            }
        }
        return Ok(Value::Array(out));
    }
    let mut out = Map::new();
    while *i < lines.len() && lines[*i].0 == indent && !is_item(&lines[*i].1) {
        let line = lines[*i].1.clone();
        let (key, rest) =
            yaml_key(&line).ok_or_else(|| format!("expected `key: value`, found {line:?}"))?;
        *i += 1;
        let value = if rest == "|" || rest == "|-" || rest == ">" {
            let mut parts = Vec::new();
            while *i < lines.len() && lines[*i].0 > indent {
                parts.push(lines[*i].1.clone());
                *i += 1;
            }
            let sep = if rest == ">" { " " } else { "\n" };
            let mut text = parts.join(sep);
            if rest != "|-" {
                text.push('\n');
            }
            Value::String(text)
        } else if !rest.is_empty() {
            yaml_scalar_value(rest)?
        } else if *i < lines.len()
            && (lines[*i].0 > indent || (lines[*i].0 == indent && is_item(&lines[*i].1)))
        {
            let inner = lines[*i].0;
            yaml_block(lines, i, inner, depth + 1)?
        } else {
            Value::Null
        };
        out.insert(key, value);
    }
    Ok(Value::Object(out))
}

fn yaml_key(line: &str) -> Option<(String, &str)> {
    let (key, rest) = if let Some(stripped) = line.strip_prefix('"') {
        let end = stripped.find('"')?;
        let rest = stripped[end + 1..].strip_prefix(':')?;
        (stripped[..end].to_owned(), rest)
    } else {
        let idx = line
            .find(": ")
            .or_else(|| line.strip_suffix(':').map(str::len))?;
        (line[..idx].trim().to_owned(), &line[idx + 1..])
    };
    Some((key, rest.trim()))
}

fn yaml_scalar_value(s: &str) -> Result<Value, String> {
    if s.starts_with('"') || s.starts_with('[') || s.starts_with('{') {
        return serde_json::from_str::<serde_json::Value>(s)
            .map(|j| from_json(&j))
            .map_err(|e| format!("invalid YAML value {s:?}: {e}"));
    }
    if let Some(inner) = s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return Ok(Value::String(inner.replace("''", "'")));
    }
    Ok(match s {
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        "null" | "~" | "Null" | "NULL" => Value::Null,
        _ => parse_number(s).map_or_else(|| Value::String(s.to_owned()), Value::Number),
    })
}

fn csv_decode(s: &str) -> Result<Value, String> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            ('\r', false) => {}
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".to_owned());
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    let mut it = rows.into_iter();
    let header = it.next().ok_or("missing header line")?;
    let mut out = Vec::new();
    for (i, r) in it.enumerate() {
        if r.len() != header.len() {
            return Err(format!(
                "line {}: expected {} fields, found {}",
                i + 2,
                header.len(),
                r.len()
            ));
        }
        out.push(Value::Object(
            header
                .iter()
                .cloned()
                .zip(r.into_iter().map(Value::String))
                .collect(),
        ));
    }
    Ok(Value::Array(out))
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn parse_time(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("{s:?} is not an RFC 3339 timestamp"))
}

fn timeadd(a: FuncArgs) -> Result<Value, String> {
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
fn formatdate(a: FuncArgs) -> Result<Value, String> {
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

fn fileset(a: FuncArgs) -> Result<Value, String> {
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

fn normalize(p: &Path) -> PathBuf {
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
fn template(src: &str, vars: Map<String, Value>) -> Result<Value, String> {
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
const MAX_TEMPLATE_DEPTH: usize = 16;

fn render_template(src: &str, vars: Map<String, Value>) -> Result<Value, String> {
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
fn one_vars(a: &FuncArgs) -> Result<Map<String, Value>, String> {
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
fn templatedir(a: FuncArgs) -> Result<Value, String> {
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
    let out = std::env::temp_dir().join(format!(
        "wayline-templatedir-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
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

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn selector(s: &str) -> Result<wayline_core::selector::Selector, String> {
    wayline_core::selector::parse(s).map_err(|e| format!("invalid selector {s:?}: {e}"))
}

fn matches_map(sel: &wayline_core::selector::Selector, m: Map<String, Value>) -> bool {
    let labels: std::collections::HashMap<String, String> =
        m.iter().map(|(k, v)| (k.clone(), st(v))).collect();
    sel.matches(&labels)
}

fn dynamic(a: FuncArgs) -> Result<Value, String> {
    let mut inner = Map::new();
    inner.insert("from".to_owned(), a[0].clone());
    inner.insert("config".to_owned(), a[1].clone());
    let mut m = Map::new();
    m.insert(DYNAMIC_KEY.to_owned(), Value::Object(inner));
    Ok(Value::Object(m))
}

#[cfg(test)]
mod tests;
