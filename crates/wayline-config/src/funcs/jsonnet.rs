//! `jsonnetfile(path, options)` and `jsonnetdir(dir, options)`, as Waypoint's `jsonnet.go`:
//! Jsonnet rendered to JSON files in a new temporary directory (0700, files 0600), whose path
//! is returned — a file's path for `jsonnetfile` (`x.jsonnet` → `<tmp>/x.json`), the directory
//! for `jsonnetdir` (every `*.jsonnet` below `dir`, same layout). `options` may set
//! `ext_vars`, `ext_code`, `tla_vars` and `tla_code` (maps of strings).
//!
//! Evaluation is rsjsonnet-lang (pure Rust, no proc macros, passes the Jsonnet test suite).
//! In `validate` (pure) the files are evaluated but nothing is written, and the path returned
//! is the source's.

use std::collections::HashMap;

use rsjsonnet_lang::arena::Arena;
use rsjsonnet_lang::interner::InternedStr;
use rsjsonnet_lang::program::{
    Callbacks, EvalError, EvalErrorKind, EvalStackTraceItem, ImportError, LoadError, NativeError,
    Program, Thunk, Value as JValue,
};
use rsjsonnet_lang::span::{SpanContextId, SpanId};

use super::*;

/// Most Jsonnet files one call may load (imports included).
const MAX_JSONNET_FILES: usize = 1_000;

pub(super) fn jsonnetfile(a: FuncArgs) -> Result<Value, String> {
    let src = resolve(&st(&a[0]));
    let opts = Options::from_args(&a)?;
    let json = render(&src, &opts)?;
    if is_pure() {
        return Ok(Value::String(src.display().to_string()));
    }
    let dir = temp_dir()?;
    let out = dir.join(json_name(&src));
    write_private(&out, &json)?;
    Ok(Value::String(out.display().to_string()))
}

pub(super) fn jsonnetdir(a: FuncArgs) -> Result<Value, String> {
    let root = resolve(&st(&a[0]));
    let opts = Options::from_args(&a)?;
    let mut rendered = Vec::new();
    collect(&root, Path::new(""), &opts, &mut rendered, 0)?;
    if is_pure() {
        return Ok(Value::String(root.display().to_string()));
    }
    let out = temp_dir()?;
    for (rel, json) in rendered {
        let dest = out.join(rel);
        if let Some(parent) = dest.parent() {
            create_private_dir(parent)?;
        }
        write_private(&dest, &json)?;
    }
    Ok(Value::String(out.display().to_string()))
}

/// Renders every `*.jsonnet` below `dir` (relative path with `.json`, JSON text).
fn collect(
    dir: &Path,
    rel: &Path,
    opts: &Options,
    out: &mut Vec<(PathBuf, String)>,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("directories nest more than {MAX_DEPTH} deep"));
    }
    let mut entries: Vec<_> = fs_err::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(fs_err::DirEntry::file_name);
    for entry in entries {
        let p = entry.path();
        let name = rel.join(entry.file_name());
        if p.is_dir() {
            collect(&p, &name, opts, out, depth + 1)?;
        } else if p.extension().is_some_and(|e| e == "jsonnet") {
            if out.len() >= MAX_JSONNET_FILES {
                return Err(format!(
                    "more than {MAX_JSONNET_FILES} Jsonnet files (the limit)"
                ));
            }
            out.push((name.with_file_name(json_name(&p)), render(&p, opts)?));
        }
    }
    Ok(())
}

/// `x.jsonnet` → `x.json` (and `x` → `x.json`), as Waypoint names them.
fn json_name(p: &Path) -> String {
    let base = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{}.json", base.strip_suffix(".jsonnet").unwrap_or(&base))
}

/// A fresh private (0700) directory with an unpredictable name that outlives the call (its path
/// is the function's result).
fn temp_dir() -> Result<PathBuf, String> {
    tempfile::Builder::new()
        .prefix("wayline-jsonnet-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .map(tempfile::TempDir::keep)
        .map_err(|e| format!("cannot create a temporary directory: {e}"))
}

fn create_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The `options` argument: Jsonnet's four ways to parameterise a file.
#[derive(Default)]
struct Options {
    ext_vars: Vec<(String, String)>,
    ext_code: Vec<(String, String)>,
    tla_vars: Vec<(String, String)>,
    tla_code: Vec<(String, String)>,
}

impl Options {
    /// Like Waypoint, anything but an object (null included) means no options.
    fn from_args(a: &FuncArgs) -> Result<Self, String> {
        if a.len() > 2 {
            return Err(format!(
                "takes a path and at most one options object, got {} arguments",
                a.len()
            ));
        }
        let Some(Value::Object(o)) = a.get(1) else {
            return Ok(Self::default());
        };
        let strings = |key: &str| -> Result<Vec<(String, String)>, String> {
            match o.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => Ok((k.clone(), s.clone())),
                        _ => Err(format!("option {key:?} values must be strings")),
                    })
                    .collect(),
                Some(_) => Err(format!("option {key:?} must be an object or map")),
            }
        };
        Ok(Self {
            ext_vars: strings("ext_vars")?,
            ext_code: strings("ext_code")?,
            tla_vars: strings("tla_vars")?,
            tla_code: strings("tla_code")?,
        })
    }
}

/// Evaluates one file to JSON text (multi-line, 3-space indent and a final newline, as the
/// `jsonnet` tool writes it).
fn render(path: &Path, opts: &Options) -> Result<String, String> {
    let arena = Arena::new();
    let mut program = Program::new(&arena);
    let mut files = Files::default();
    let result = evaluate(&mut program, &mut files, path, opts);
    result.map_err(|e| format!("jsonnet: {}", e.describe(&program, &files)))
}

fn evaluate<'p>(
    program: &mut Program<'p>,
    files: &mut Files<'p>,
    path: &Path,
    opts: &Options,
) -> Result<String, Failure> {
    for (k, v) in &opts.ext_vars {
        let thunk = program.value_to_thunk(&JValue::string(v));
        program.add_ext_var(program.intern_str(k), &thunk);
    }
    for (k, code) in &opts.ext_code {
        let thunk = files.load_code(program, &format!("<ext_code {k}>"), code.as_bytes())?;
        program.add_ext_var(program.intern_str(k), &thunk);
    }
    let main = files.load(program, path)?;
    let mut value = program.eval_value(&main, files).map_err(Failure::Eval)?;
    // Top-level arguments apply when the file is a function, as in the `jsonnet` tool.
    if value.is_function() && !(opts.tla_vars.is_empty() && opts.tla_code.is_empty()) {
        let mut named = Vec::new();
        for (k, v) in &opts.tla_vars {
            named.push((
                program.intern_str(k),
                program.value_to_thunk(&JValue::string(v)),
            ));
        }
        for (k, code) in &opts.tla_code {
            let thunk = files.load_code(program, &format!("<tla_code {k}>"), code.as_bytes())?;
            named.push((program.intern_str(k), thunk));
        }
        value = program
            .eval_call(&main, &[], &named, files)
            .map_err(Failure::Eval)?;
    }
    let json = program.manifest_json(&value, true).map_err(Failure::Eval)?;
    if json.len() > MAX_RESULT_BYTES {
        return Err(Failure::Other(too_big("jsonnet", json.len())));
    }
    Ok(json + "\n")
}

/// Why a file did not render.
enum Failure {
    Load(String, LoadError),
    Eval(EvalError),
    Other(String),
}

impl Failure {
    fn describe<'p>(&self, program: &Program<'p>, files: &Files<'p>) -> String {
        match self {
            Failure::Load(name, e) => {
                let what = match e {
                    LoadError::Lex(e) => format!("{e:?}"),
                    LoadError::Parse(e) => format!("{e:?}"),
                    LoadError::Analyze(e) => format!("{e:?}"),
                };
                let span = match e {
                    LoadError::Parse(rsjsonnet_lang::parser::ParseError::Expected {
                        span, ..
                    })
                    | LoadError::Analyze(
                        rsjsonnet_lang::program::AnalyzeError::UnknownVariable { span, .. },
                    ) => Some(*span),
                    _ => None,
                };
                let at = span
                    .and_then(|s| files.position(program, s))
                    .unwrap_or_else(|| name.clone());
                format!("{at}: {}", without_spans(&what))
            }
            Failure::Eval(e) => {
                let at = kind_span(&e.kind)
                    .into_iter()
                    .chain(e.stack_trace.iter().filter_map(|item| match item {
                        EvalStackTraceItem::Expr { span }
                        | EvalStackTraceItem::Variable { span, .. }
                        | EvalStackTraceItem::Import { span } => Some(*span),
                        EvalStackTraceItem::Call { span, .. }
                        | EvalStackTraceItem::ArrayItem { span, .. }
                        | EvalStackTraceItem::ObjectField { span, .. } => *span,
                        _ => None,
                    }))
                    .find_map(|s| files.position(program, s));
                let what = without_spans(&format!("{:?}", e.kind));
                match at {
                    Some(at) => format!("{at}: {what}"),
                    None => what,
                }
            }
            Failure::Other(m) => m.clone(),
        }
    }
}

/// Where the error itself points, for the kinds that say.
fn kind_span(kind: &EvalErrorKind) -> Option<SpanId> {
    use EvalErrorKind as K;
    match kind {
        K::InvalidIndexedType { span, .. }
        | K::InvalidSlicedType { span, .. }
        | K::SliceIndexOrStepIsNotNumber { span, .. }
        | K::StringIndexIsNotNumber { span, .. }
        | K::ArrayIndexIsNotNumber { span, .. }
        | K::NumericIndexIsNotValid { span, .. }
        | K::NumericIndexOutOfRange { span, .. }
        | K::ObjectIndexIsNotString { span, .. }
        | K::RepeatedFieldName { span, .. }
        | K::FieldNameIsNotString { span, .. }
        | K::UnknownObjectField { span, .. }
        | K::FieldOfNonObject { span, .. }
        | K::SuperWithoutSuperObject { span, .. }
        | K::ForSpecValueIsNotArray { span, .. }
        | K::CondIsNotBool { span, .. }
        | K::InvalidUnaryOpType { span, .. }
        | K::AssertFailed { span, .. }
        | K::ExplicitError { span, .. }
        | K::ImportFailed { span, .. } => Some(*span),
        _ => None,
    }
}

/// rsjsonnet's errors are plain enums: their `Debug` without the (internal) span ids.
fn without_spans(debug: &str) -> String {
    static SPAN: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"\w*span: (?:Some\()?\w+(?: \{[^}]*\}|\([^)]*\))\)?(?:, )?")
            .expect("valid regex")
    });
    SPAN.replace_all(debug, "")
        .replace("{ }", "")
        .replace(" ,", ",")
}

/// The files a program loaded: their paths (for imports relative to the importer, and for
/// messages) and what is already loaded.
#[derive(Default)]
struct Files<'p> {
    by_context: HashMap<SpanContextId, (String, PathBuf, String)>,
    loaded: HashMap<PathBuf, Thunk<'p>>,
}

impl<'p> Files<'p> {
    fn load(&mut self, program: &mut Program<'p>, path: &Path) -> Result<Thunk<'p>, Failure> {
        let path = normalize(path);
        if let Some(t) = self.loaded.get(&path) {
            return Ok(t.clone());
        }
        if self.by_context.len() >= MAX_JSONNET_FILES {
            return Err(Failure::Other(format!(
                "more than {MAX_JSONNET_FILES} Jsonnet files (the limit)"
            )));
        }
        let name = path.display().to_string();
        let text = fs_err::read_to_string(&path).map_err(|e| Failure::Other(e.to_string()))?;
        let (ctx, _) = program.span_manager_mut().insert_source_context(text.len());
        self.by_context
            .insert(ctx, (name.clone(), path.clone(), text.clone()));
        let thunk = program
            .load_source(ctx, text.as_bytes(), true, &name)
            .map_err(|e| Failure::Load(name, e))?;
        self.loaded.insert(path, thunk.clone());
        Ok(thunk)
    }

    fn load_code(
        &mut self,
        program: &mut Program<'p>,
        name: &str,
        code: &[u8],
    ) -> Result<Thunk<'p>, Failure> {
        let (ctx, _) = program.span_manager_mut().insert_source_context(code.len());
        program
            .load_source(ctx, code, true, name)
            .map_err(|e| Failure::Load(name.to_owned(), e))
    }

    /// An import's path: relative to the importing file's directory.
    fn resolve(&self, program: &Program<'p>, from: SpanId, path: &str) -> PathBuf {
        let (ctx, _, _) = program.span_manager().get_span(from);
        let base = self
            .by_context
            .get(&ctx)
            .and_then(|(_, p, _)| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(base_dir);
        base.join(path)
    }

    /// `file:line:col` of a span in a loaded file.
    fn position(&self, program: &Program<'p>, span: SpanId) -> Option<String> {
        let (ctx, start, _) = program.span_manager().get_span(span);
        let (name, _, text) = self.by_context.get(&ctx)?;
        let before = text.get(..start)?;
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Some(format!("{name}:{line}:{col}"))
    }

    fn read(
        &self,
        program: &Program<'p>,
        from: SpanId,
        path: &str,
    ) -> Result<Vec<u8>, ImportError> {
        let p = self.resolve(program, from, path);
        match std::fs::metadata(&p) {
            Ok(m) if m.len() <= MAX_RESULT_BYTES as u64 => {
                std::fs::read(&p).map_err(|_| ImportError)
            }
            _ => Err(ImportError),
        }
    }
}

impl<'p> Callbacks<'p> for Files<'p> {
    fn import(
        &mut self,
        program: &mut Program<'p>,
        from: SpanId,
        path: &str,
    ) -> Result<Thunk<'p>, ImportError> {
        let p = self.resolve(program, from, path);
        self.load(program, &p).map_err(|_| ImportError)
    }

    fn import_str(
        &mut self,
        program: &mut Program<'p>,
        from: SpanId,
        path: &str,
    ) -> Result<String, ImportError> {
        String::from_utf8(self.read(program, from, path)?).map_err(|_| ImportError)
    }

    fn import_bin(
        &mut self,
        program: &mut Program<'p>,
        from: SpanId,
        path: &str,
    ) -> Result<Vec<u8>, ImportError> {
        self.read(program, from, path)
    }

    fn trace(&mut self, _: &mut Program<'p>, message: &str, _: &[EvalStackTraceItem]) {
        tracing::debug!("jsonnet trace: {message}");
    }

    fn native_call(
        &mut self,
        _: &mut Program<'p>,
        _: InternedStr<'p>,
        _: &[JValue<'p>],
    ) -> Result<JValue<'p>, NativeError> {
        // No native functions are registered.
        Err(NativeError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(env: &FnEnv, src: &str) -> Result<Value, String> {
        let expr: hcl::Expression = src.parse().map_err(|e: hcl::Error| e.to_string())?;
        with_env(env.clone(), || expr.evaluate(&base_context())).map_err(|e| e.kind().to_string())
    }

    fn project() -> (tempfile::TempDir, FnEnv) {
        let tmp = tempfile::tempdir().unwrap();
        let k8s = tmp.path().join("k8s");
        std::fs::create_dir_all(k8s.join("sub")).unwrap();
        std::fs::write(k8s.join("lib.libsonnet"), "{ port(p):: p + 1 }").unwrap();
        std::fs::write(
            k8s.join("app.jsonnet"),
            "local lib = import 'lib.libsonnet';\n{ name: std.extVar('name'), port: lib.port(8079), tags: [] }",
        )
        .unwrap();
        std::fs::write(
            k8s.join("sub/fn.jsonnet"),
            "function(image) { image: image }",
        )
        .unwrap();
        std::fs::write(k8s.join("README.md"), "not rendered").unwrap();
        let env = FnEnv {
            base_dir: tmp.path().to_path_buf(),
            ..FnEnv::default()
        };
        (tmp, env)
    }

    #[test]
    fn jsonnetfile_renders_to_a_private_json_file_with_ext_vars_and_imports() {
        let (_tmp, env) = project();
        let out = eval(
            &env,
            r#"jsonnetfile("k8s/app.jsonnet", { ext_vars = { name = "web" } })"#,
        )
        .unwrap();
        let path = PathBuf::from(out.as_str().unwrap());
        assert_eq!(path.file_name().unwrap(), "app.json");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "{\n   \"name\": \"web\",\n   \"port\": 8080,\n   \"tags\": [ ]\n}\n"
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&path), mode(path.parent().unwrap())), (0o600, 0o700));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn jsonnetdir_renders_every_jsonnet_file_and_applies_top_level_arguments() {
        let (_tmp, env) = project();
        let out = eval(
            &env,
            r#"jsonnetdir("k8s", { ext_code = { name = "'a' + 'b'" }, tla_vars = { image = "nginx" } })"#,
        )
        .unwrap();
        let dir = PathBuf::from(out.as_str().unwrap());
        let app = std::fs::read_to_string(dir.join("app.json")).unwrap();
        assert!(app.contains("\"name\": \"ab\""), "{app}");
        let sub = std::fs::read_to_string(dir.join("sub/fn.json")).unwrap();
        assert_eq!(sub, "{\n   \"image\": \"nginx\"\n}\n");
        assert!(!dir.join("README.md").exists() && !dir.join("lib.json").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn jsonnet_errors_name_the_file_and_position_and_validate_writes_nothing() {
        let (tmp, env) = project();
        std::fs::write(tmp.path().join("bad.jsonnet"), "{\n  a: 1,\n  b: nope,\n}").unwrap();
        let err = eval(&env, r#"jsonnetfile("bad.jsonnet")"#).unwrap_err();
        let bad = tmp.path().join("bad.jsonnet");
        assert_eq!(
            err,
            format!(
                "error calling function `jsonnetfile`: jsonnet: {}:3:6: UnknownVariable {{ name: \"nope\" }}",
                bad.display()
            )
        );
        std::fs::write(&bad, "{ a: error 'boom' }").unwrap();
        let err = eval(&env, r#"jsonnetfile("bad.jsonnet")"#).unwrap_err();
        assert!(err.contains(&format!("{}:1:", bad.display())), "{err}");
        assert!(err.contains("boom"), "{err}");
        let err = eval(
            &env,
            r#"jsonnetfile("k8s/app.jsonnet", { ext_vars = { name = 1 } })"#,
        )
        .unwrap_err();
        assert!(
            err.ends_with("option \"ext_vars\" values must be strings"),
            "{err}"
        );
        // Pure (validate): evaluated, so errors show, but nothing is written.
        let err = eval(&env, r#"jsonnetdir("k8s", { ext_vars = { name = "x" } })"#).unwrap_err();
        assert!(err.ends_with("jsonnet: ManifestFunction"), "{err}");
        let out = pure(|| {
            eval(
                &env,
                r#"jsonnetdir("k8s", { ext_vars = { name = "x" }, tla_vars = { image = "i" } })"#,
            )
        })
        .unwrap();
        assert_eq!(
            out,
            Value::String(tmp.path().join("k8s").display().to_string())
        );
    }
}
