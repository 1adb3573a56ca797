//! The function library available in expressions.
//!
//! hcl-rs functions are plain `fn` pointers, so functions that need the evaluation environment
//! (the project directory for `file()`, the variables for `templatefile()`) read it from a
//! thread-local that [`with_env`] sets for the duration of one evaluation.
//!
//! Checked against Waypoint's set (`pkg/config/funcs`, cty's stdlib): every name exists with
//! cty's arity and argument rules (tests: `every_waypoint_function_exists`,
//! `functions_follow_cty_arities_and_edge_cases`). Differences kept on purpose:
//! - more functions: Terraform's `tostring` `tonumber` `tobool` `tolist` `toset` `tomap`
//!   `length` `coalesce` `index` `lookup` `alltrue` `anytrue` `sum` `startswith` `endswith`
//!   `strcontains` (a file that uses them would not load in Waypoint, nothing else changes);
//! - the vars of `templatefile`/`templatestring`/`templatedir` and the options of
//!   `jsonnetfile`/`jsonnetdir` are optional (Waypoint's own docs and files call them so);
//! - `strrev` reverses characters, not grapheme clusters;
//! - results are bounded ([`crate::limits`]): 16 MiB strings, 100,000 elements;
//! - in `validate`, `templatedir`, `jsonnetfile` and `jsonnetdir` render in memory and return
//!   the source path, and the git functions read `.git` instead of running git.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use base64::Engine as _;
use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};
use hcl::{Map, Value};

use crate::value::{from_json, to_json, type_name};

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
    "join" => [P::String] + P::array_of(P::Any) => join;
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
    "element" => [P::array_of(P::Any), P::Number] => element;
    "index" => [P::array_of(P::Any), P::Any] => |a| arr(&a[0])?.iter().position(|v| v == &a[1]).map(|i| Value::Number((i as u64).into())).ok_or_else(|| "item not found".to_owned());
    "chunklist" => [P::array_of(P::Any), P::Number] => chunklist;
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
    "setunion" => [P::array_of(P::Any)] + P::array_of(P::Any) => |a| Ok(Value::Array(distinct(a.into_values().into_iter().flat_map(|v| arr(&v).unwrap_or_default()).collect())));
    "setintersection" => [P::array_of(P::Any)] + P::array_of(P::Any) => |a| { let v = a.into_values(); let rest: Vec<Vec<Value>> = v[1..].iter().map(|x| arr(x).unwrap_or_default()).collect(); Ok(Value::Array(distinct(arr(&v[0])?.into_iter().filter(|x| rest.iter().all(|r| r.contains(x))).collect()))) };
    "setsubtract" => [P::array_of(P::Any), P::array_of(P::Any)] => |a| { let b = arr(&a[1])?; Ok(Value::Array(distinct(arr(&a[0])?.into_iter().filter(|x| !b.contains(x)).collect()))) };
    "setproduct" => [] + P::array_of(P::Any) => |a| { if a.len() < 2 { return Err("at least two arguments are required".to_owned()); } let mut out: Vec<Vec<Value>> = vec![vec![]]; for s in a.into_values() { let s = arr(&s)?; if out.len().saturating_mul(s.len()) > MAX_RESULT_ITEMS { return Err(format!("the product has more than {MAX_RESULT_ITEMS} elements (the limit)")); } out = out.into_iter().flat_map(|p| s.iter().map(move |x| { let mut q = p.clone(); q.push(x.clone()); q })).collect(); } Ok(Value::Array(out.into_iter().map(Value::Array).collect())) };
    "alltrue" => [P::array_of(P::Any)] => |a| Ok(Value::Bool(arr(&a[0])?.iter().all(|v| matches!(v, Value::Bool(true)) || v.as_str() == Some("true"))));
    "anytrue" => [P::array_of(P::Any)] => |a| Ok(Value::Bool(arr(&a[0])?.iter().any(|v| matches!(v, Value::Bool(true)) || v.as_str() == Some("true"))));
    // encoding
    "base64encode" => [P::String] => |a| s1(&a, |s| base64::engine::general_purpose::STANDARD.encode(s));
    "base64decode" => [P::String] => |a| { let b = base64::engine::general_purpose::STANDARD.decode(st(&a[0]).trim()).map_err(|e| format!("invalid base64: {e}"))?; String::from_utf8(b).map(Value::String).map_err(|_| "the decoded bytes are not UTF-8".to_owned()) };
    "base64gzip" => [P::String] => |a| Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(gzip(st(&a[0]).as_bytes())?)));
    "jsonencode" => [P::Any] => |a| serde_json::to_string(&to_json(&a[0])).map(Value::String).map_err(|e| e.to_string());
    "jsondecode" => [P::String] => |a| serde_json::from_str::<serde_json::Value>(&st(&a[0])).map(|j| from_json(&j)).map_err(|e| format!("invalid JSON: {e}"));
    "yamlencode" => [P::Any] => |a| yaml_encode(&a[0]);
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
    // Waypoint declares `options` as a second parameter but documents one-argument calls.
    "jsonnetfile" => [P::String] + P::Any => jsonnetfile;
    "jsonnetdir" => [P::String] + P::Any => jsonnetdir;
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

/// cty's `element`: the index wraps around; a negative one is an error.
fn element(a: FuncArgs) -> Result<Value, String> {
    let v = arr(&a[0])?;
    let i = num(&a[1])?;
    if v.is_empty() {
        return Err("cannot use element function with an empty list".into());
    }
    if i < 0.0 {
        return Err("cannot use element function with a negative index".into());
    }
    Ok(v[(i as usize) % v.len()].clone())
}

/// cty's `chunklist`: size 0 is one chunk of everything; a negative size is an error.
fn chunklist(a: FuncArgs) -> Result<Value, String> {
    let v = arr(&a[0])?;
    let n = num(&a[1])?;
    if n < 0.0 || n.fract() != 0.0 {
        return Err("the size argument must be a whole number >= 0".into());
    }
    if n == 0.0 || v.is_empty() {
        return Ok(Value::Array(if v.is_empty() {
            v
        } else {
            vec![Value::Array(v)]
        }));
    }
    Ok(Value::Array(
        v.chunks(n as usize)
            .map(|c| Value::Array(c.to_vec()))
            .collect(),
    ))
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

mod encoding;
mod files;
mod jsonnet;
mod strings;

use encoding::*;
use files::*;
use jsonnet::*;
use strings::*;

#[cfg(test)]
mod tests;
