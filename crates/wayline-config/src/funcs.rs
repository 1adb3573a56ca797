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
                ctx.insert($name, b.build($f));
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
    "indent" => [P::Number, P::String] => |a| { let n = " ".repeat(num(&a[0])? as usize); Ok(Value::String(st(&a[1]).replace('\n', &format!("\n{n}")))) };
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
    "parseint" => [P::String, P::Number] => |a| i64::from_str_radix(&st(&a[0]), num(&a[1])? as u32).map(|i| Value::Number(i.into())).map_err(|_| format!("cannot parse {:?} as a base-{} integer", st(&a[0]), num(&a[1]).unwrap_or(10.0)));
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
    "setproduct" => [] + P::array_of(P::Any) => |a| { let mut out: Vec<Vec<Value>> = vec![vec![]]; for s in a.into_values() { let s = arr(&s)?; out = out.into_iter().flat_map(|p| s.iter().map(move |x| { let mut q = p.clone(); q.push(x.clone()); q })).collect(); } Ok(Value::Array(out.into_iter().map(Value::Array).collect())) };
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
    "templatefile" => [P::String, P::object_of(P::Any)] => |a| { let p = resolve(&st(&a[0])); let src = fs_err::read_to_string(&p).map_err(|e| e.to_string())?; template(&src, obj(&a[1])?) };
    "templatestring" => [P::String, P::object_of(P::Any)] => |a| template(&st(&a[0]), obj(&a[1])?);
    "templatedir" => [P::String, P::object_of(P::Any)] => templatedir;
    // selectors
    "selectormatch" => [P::object_of(P::Any), P::String] => |a| { let sel = selector(&st(&a[1]))?; Ok(Value::Bool(matches_map(&sel, obj(&a[0])?))) };
    "selectorlookup" => [P::object_of(P::Any), P::object_of(P::Any), P::Any] => |a| { let labels = obj(&a[0])?; for (s, v) in obj(&a[1])? { if matches_map(&selector(&s)?, labels.clone()) { return Ok(v); } } Ok(a[2].clone()) };
    // dynamic config
    "dynamic" => [P::String, P::object_of(P::Any)] => dynamic;
    "configdynamic" => [P::String, P::object_of(P::Any)] => dynamic;
    // git
    "gitrefpretty" => [] => |_| crate::git::ref_pretty(&base_dir()).map(Value::String).map_err(|e| e.to_string());
    "gitrefhash" => [] => |_| crate::git::ref_hash(&base_dir()).map(Value::String).map_err(|e| e.to_string());
    "gitreftag" => [] => |_| crate::git::ref_tag(&base_dir()).map(|t| Value::String(t.unwrap_or_default())).map_err(|e| e.to_string());
    "gitremoteurl" => [P::String] => |a| crate::git::remote_url(&base_dir(), &st(&a[0])).map(|t| Value::String(t.unwrap_or_default())).map_err(|e| e.to_string());
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
        return Ok(Value::String(re.replace_all(&s, to.as_str()).into_owned()));
    }
    Ok(Value::String(s.replace(&from, &to)))
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
        (off + n as usize).min(chars.len())
    };
    Ok(Value::String(chars[off..end].iter().collect()))
}

/// `format` with the common verbs: %s %d %f %.Nf %q %t %v %%.
fn format(spec: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut it = spec.chars().peekable();
    let mut i = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut prec = None;
        if it.peek() == Some(&'.') {
            it.next();
            let mut p = String::new();
            while let Some(d) = it.peek().copied().filter(char::is_ascii_digit) {
                p.push(d);
                it.next();
            }
            prec = p.parse::<usize>().ok();
        }
        let verb = it.next().ok_or("format string ends with `%`")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args
            .get(i)
            .ok_or_else(|| format!("not enough arguments for format {spec:?}"))?;
        i += 1;
        match verb {
            's' | 'v' => out.push_str(&st(arg)),
            'd' => out.push_str(&(num(arg)? as i64).to_string()),
            'f' => out.push_str(&format!("{:.*}", prec.unwrap_or(6), num(arg)?)),
            'q' => out.push_str(&format!("{:?}", st(arg))),
            't' => out.push_str(&st(arg)),
            other => return Err(format!("unsupported format verb `%{other}`")),
        }
    }
    Ok(out)
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
    Ok(Value::String(rfc3339(if neg { t - dur } else { t + dur })))
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

/// Renders every file of a directory into a temporary directory and returns its path.
fn templatedir(a: FuncArgs) -> Result<Value, String> {
    let src = resolve(&st(&a[0]));
    let vars = obj(&a[1])?;
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
