//! Unit tests of individual functions: results and the exact errors users see.

use super::*;

fn call(src: &str) -> Result<Value, String> {
    let expr: hcl::Expression = src.parse().map_err(|e: hcl::Error| e.to_string())?;
    with_env(FnEnv::default(), || expr.evaluate(&base_context())).map_err(|e| e.kind().to_string())
}

fn ok(src: &str) -> serde_json::Value {
    to_json(&call(src).unwrap_or_else(|e| panic!("{src}: {e}")))
}

#[test]
fn yaml_round_trips_through_encode_and_decode() {
    let v = ok(
        r#"yamldecode(yamlencode({ name = "web", ports = [80, 443], env = { A = "1", B = true }, items = [{ a = 1 }, { b = "x y" }] }))"#,
    );
    assert_eq!(
        v,
        serde_json::json!({"name": "web", "ports": [80, 443], "env": {"A": "1", "B": true}, "items": [{"a": 1}, {"b": "x y"}]})
    );
    let doc = "---\n# comment\nkind: Deployment\nmetadata:\n  name: web # trailing\n  labels: {\"app\": \"web\"}\nspec:\n  replicas: 3\n  script: |\n    echo a\n    echo b\n  args:\n  - --port\n  - '8080'\n";
    let v = to_json(&yaml_decode(doc).unwrap());
    assert_eq!(
        v,
        serde_json::json!({"kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"replicas": 3, "script": "echo a\necho b\n", "args": ["--port", "8080"]}})
    );
    let err = yaml_decode("a: 1\n  b: 2\n").unwrap_err();
    assert!(err.starts_with("invalid YAML: "), "{err}");
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn gzip_compresses_and_urlencode_is_query_escape() {
    use std::io::Read as _;
    let text = "wayline ".repeat(1000);
    let zipped = gzip(text.as_bytes()).unwrap();
    assert!(zipped.len() < text.len() / 20, "{} bytes", zipped.len());
    let mut back = String::new();
    flate2::read::GzDecoder::new(&zipped[..])
        .read_to_string(&mut back)
        .unwrap();
    assert_eq!(back, text);
    assert_eq!(urlencode("a b&c=d/é~"), "a+b%26c%3Dd%2F%C3%A9~");
    let v = ok(r#"csvdecode("name,port\nweb,\"8,0\"\n")"#);
    assert_eq!(v, serde_json::json!([{"name": "web", "port": "8,0"}]));
}

#[test]
fn errors_name_the_problem() {
    assert_eq!(
        call(r#"base64decode("%%")"#).unwrap_err(),
        "error calling function `base64decode`: invalid base64: Invalid symbol 37, offset 0."
    );
    assert_eq!(
        call(r#"format("%d")"#).unwrap_err(),
        "error calling function `format`: not enough arguments for format \"%d\": it needs at least 1"
    );
    assert_eq!(
        call(r#"format("%y", 1)"#).unwrap_err(),
        "error calling function `format`: unsupported format verb `%y`"
    );
    assert_eq!(
        call(r#"csvdecode("a,b\n1\n")"#).unwrap_err(),
        "error calling function `csvdecode`: line 2: expected 2 fields, found 1"
    );
    assert_eq!(
        call(r#"regex("[", "x")"#)
            .unwrap_err()
            .lines()
            .next()
            .unwrap(),
        "error calling function `regex`: invalid regex: regex parse error:"
    );
    assert_eq!(
        call(r#"timeadd("yesterday", "1h")"#).unwrap_err(),
        "error calling function `timeadd`: \"yesterday\" is not an RFC 3339 timestamp"
    );
    assert_eq!(
        call(r#"selectormatch({}, "a = b")"#).unwrap_err(),
        "error calling function `selectormatch`: invalid selector \"a = b\": column 3: unexpected `=`: use `==` to compare"
    );
    assert_eq!(
        call("range(0, 5000)").unwrap_err(),
        "error calling function `range`: range would produce more than 1024 elements"
    );
    assert_eq!(
        call("slice([1], 0, 3)").unwrap_err(),
        "error calling function `slice`: slice 0..3 is out of range for a list of 1"
    );
}

#[test]
fn dynamic_is_opaque_and_marked() {
    let v = call(r#"dynamic("vault", { path = "p" })"#).unwrap();
    assert!(is_dynamic(&v));
    assert_eq!(
        to_json(&v)[DYNAMIC_KEY],
        serde_json::json!({"from": "vault", "config": {"path": "p"}})
    );
}

#[test]
fn files_resolve_against_the_project_directory() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("tpl/sub")).unwrap();
    std::fs::write(tmp.path().join("tpl/a.txt"), "a=${a}").unwrap();
    std::fs::write(tmp.path().join("tpl/sub/b.txt"), "b=${upper(a)}").unwrap();
    let env = FnEnv {
        base_dir: tmp.path().to_path_buf(),
        vars: Map::new(),
    };
    let eval = |src: &str| {
        let expr: hcl::Expression = src.parse().unwrap();
        with_env(env.clone(), || expr.evaluate(&base_context())).unwrap()
    };
    let out = eval(r#"templatedir("tpl", { a = "x" })"#);
    let dir = PathBuf::from(out.as_str().unwrap());
    assert_eq!(std::fs::read_to_string(dir.join("a.txt")).unwrap(), "a=x");
    assert_eq!(
        std::fs::read_to_string(dir.join("sub/b.txt")).unwrap(),
        "b=X"
    );
    std::fs::remove_dir_all(dir).unwrap();
    assert_eq!(
        eval(r#"abspath("tpl/../tpl/a.txt")"#),
        Value::String(tmp.path().join("tpl/a.txt").display().to_string())
    );
    let err = with_env(env.clone(), || call(r#"file("missing.txt")"#)).unwrap_err();
    assert!(
        err.starts_with("error calling function `file`: failed to open file"),
        "{err}"
    );
}

#[test]
fn format_follows_go_verbs_flags_and_widths() {
    let f = |src: &str| ok(src).as_str().unwrap().to_owned();
    assert_eq!(
        f(r#"format("%05d|%-8s|%+.2f|%q|%x|%X|%%", 42, "ab", 3.14159, "a\"b", 255, 255)"#),
        "00042|ab      |+3.14|\"a\\\"b\"|ff|FF|%"
    );
    assert_eq!(
        f(r#"format("%8.3f|%-6d|% d|%#x|%o|%b", -1.5, 7, 5, 255, 8, 5)"#),
        "  -1.500|7     | 5|0xff|10|101"
    );
    assert_eq!(f(r#"format("%[2]s %[1]s", "a", "b")"#), "b a");
    assert_eq!(
        f(r#"format("%t %v %v %.2s", true, 3, "x", "abc")"#),
        "true 3 x ab"
    );
    assert_eq!(f(r#"format("%e", 1234.5678)"#), "1.234568e+03");
    assert_eq!(f(r#"format("%#v", {a = [1]})"#), r#"{"a":[1]}"#);
    assert_eq!(
        call(r#"format("%d", 1.5)"#).unwrap_err(),
        "error calling function `format`: `%d` needs a whole number, found 1.5"
    );
    assert_eq!(
        call(r#"format("%s", 1, 2)"#).unwrap_err(),
        "error calling function `format`: too many arguments for format \"%s\": 2 given, 1 used"
    );
    assert_eq!(
        call(r#"format("%99999d", 1)"#).unwrap_err(),
        "error calling function `format`: a width or precision in the format string is larger than the limit of 4096"
    );
}

#[test]
fn arguments_and_results_are_bounded() {
    let started = std::time::Instant::now();
    assert_eq!(
        call(r#"indent(2000000000, "a\nb\nc")"#).unwrap_err(),
        "error calling function `indent`: indenting by 2000000000 spaces would build a result of 4000000005 bytes, more than the limit of 16777216 bytes (16 MiB)"
    );
    assert_eq!(ok(r#"indent(2, "a\nb")"#), "a\n  b");
    assert!(call(r#"replace("aaaaaaaaaa", "a", format("%4096s", ""))"#).is_ok());
    let err = call(r#"replace(format("%4096s", ""), " ", format("%4096s", ""))"#).unwrap_err();
    assert!(
        err.contains("more than the limit of 16777216 bytes"),
        "{err}"
    );
    let err = call("setproduct(range(1000), range(1000))").unwrap_err();
    assert!(
        err.contains("more than 100000 elements (the limit)"),
        "{err}"
    );
    assert_eq!(
        call(r#"parseint("10", 99)"#).unwrap_err(),
        "error calling function `parseint`: base must be a whole number between 2 and 62 inclusive, found 99"
    );
    let err = call(r#"timeadd("2024-01-01T00:00:00Z", "99999999999h")"#).unwrap_err();
    assert!(err.contains("goes past the years"), "{err}");
    assert_eq!(ok(r#"substr("hello", 1, 9223372036854775807)"#), "ello");
    // Doubling by nesting stops at the limit instead of building gigabytes.
    let mut doubling = String::from(r#"format("%4096s", "")"#);
    for _ in 0..20 {
        doubling = format!(r#"format("%s%s", {doubling}, {doubling})"#);
        if doubling.len() > 200_000 {
            break;
        }
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn template_functions_take_the_vars_optionally() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("t.txt"), "ws=${workspace.name}").unwrap();
    let mut vars = Map::new();
    let mut ws = Map::new();
    ws.insert("name".to_owned(), Value::String("prod".into()));
    vars.insert("workspace".to_owned(), Value::Object(ws));
    let env = FnEnv {
        base_dir: tmp.path().to_path_buf(),
        vars,
    };
    let eval = |src: &str| {
        let expr: hcl::Expression = src.parse().unwrap();
        with_env(env.clone(), || expr.evaluate(&base_context())).map_err(|e| e.kind().to_string())
    };
    assert_eq!(
        eval(r#"templatefile("t.txt")"#).unwrap(),
        Value::String("ws=prod".into())
    );
    assert_eq!(
        eval(r#"templatestring("$${1 + 1}")"#).unwrap(),
        Value::String("2".into())
    );
    assert_eq!(
        eval(r#"templatefile("t.txt", {}, {})"#).unwrap_err(),
        "error calling function `templatefile`: takes a path and at most one vars object, got 3 arguments"
    );
    // A template that renders itself stops at the depth limit.
    std::fs::write(tmp.path().join("self.txt"), "${templatefile(\"self.txt\")}").unwrap();
    let err = eval(r#"templatefile("self.txt")"#).unwrap_err();
    assert!(err.contains("more than 16 levels deep"), "{err}");
}

#[test]
fn pure_evaluation_writes_nothing_and_runs_no_git() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("tpl")).unwrap();
    std::fs::write(tmp.path().join("tpl/a.txt"), "a=${a}").unwrap();
    let env = FnEnv {
        base_dir: tmp.path().to_path_buf(),
        vars: Map::new(),
    };
    let before: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .count()
        .to_string()
        .into_bytes();
    let out = pure(|| {
        let expr: hcl::Expression = r#"templatedir("tpl", { a = "x" })"#.parse().unwrap();
        with_env(env.clone(), || expr.evaluate(&base_context())).unwrap()
    });
    assert_eq!(
        out,
        Value::String(tmp.path().join("tpl").display().to_string())
    );
    let _ = before;
    // git functions read `.git` instead of running git: outside a repository they say so.
    let err = pure(|| {
        let expr: hcl::Expression = "gitrefhash()".parse().unwrap();
        with_env(env.clone(), || expr.evaluate(&base_context())).map_err(|e| e.kind().to_string())
    })
    .unwrap_err();
    assert!(err.contains("is not inside a git repository"), "{err}");
}

/// Every function of Waypoint's standard set (`pkg/config/funcs`: stdlib, filesystem,
/// encoding, datetime, jsonnet, selectors, templates, dynamic, git) exists here.
#[test]
fn every_waypoint_function_exists() {
    const WAYPOINT: &[&str] = &[
        "abs",
        "ceil",
        "chomp",
        "coalescelist",
        "compact",
        "concat",
        "contains",
        "csvdecode",
        "distinct",
        "element",
        "chunklist",
        "flatten",
        "floor",
        "format",
        "formatdate",
        "formatlist",
        "indent",
        "join",
        "jsondecode",
        "jsonencode",
        "keys",
        "log",
        "lower",
        "max",
        "merge",
        "min",
        "parseint",
        "pow",
        "range",
        "regex",
        "regexall",
        "replace",
        "reverse",
        "setintersection",
        "setproduct",
        "setsubtract",
        "setunion",
        "signum",
        "slice",
        "sort",
        "split",
        "strrev",
        "substr",
        "timeadd",
        "title",
        "trim",
        "trimprefix",
        "trimspace",
        "trimsuffix",
        "upper",
        "values",
        "yamldecode",
        "yamlencode",
        "zipmap",
        "file",
        "filebase64",
        "fileexists",
        "fileset",
        "basename",
        "dirname",
        "abspath",
        "pathexpand",
        "base64decode",
        "base64encode",
        "base64gzip",
        "urlencode",
        "timestamp",
        "jsonnetfile",
        "jsonnetdir",
        "selectormatch",
        "selectorlookup",
        "templatefile",
        "templatestring",
        "templatedir",
        "dynamic",
        "configdynamic",
        "gitrefpretty",
        "gitrefhash",
        "gitreftag",
        "gitremoteurl",
    ];
    let missing: Vec<&&str> = WAYPOINT.iter().filter(|n| def(n).is_none()).collect();
    assert!(missing.is_empty(), "missing: {missing:?}");
}

/// Where Wayline's functions differed from cty's (arity, argument rules, results).
#[test]
fn functions_follow_cty_arities_and_edge_cases() {
    // join takes any number of lists after the separator.
    assert_eq!(ok(r#"join("-", ["a", "b"], ["c"], [])"#), "a-b-c");
    assert_eq!(ok(r#"join(",")"#), "");
    // element wraps around, refuses negative indexes.
    assert_eq!(ok("element([1, 2, 3], 4)"), 2);
    assert_eq!(
        call("element([1, 2], -1)").unwrap_err(),
        "error calling function `element`: cannot use element function with a negative index"
    );
    // chunklist: size 0 is one chunk.
    assert_eq!(
        ok("chunklist([1, 2, 3], 0)"),
        serde_json::json!([[1, 2, 3]])
    );
    assert_eq!(
        ok("chunklist([1, 2, 3], 2)"),
        serde_json::json!([[1, 2], [3]])
    );
    assert_eq!(
        call("chunklist([1], -1)").unwrap_err(),
        "error calling function `chunklist`: the size argument must be a whole number >= 0"
    );
    // setproduct needs two sets; setunion one.
    assert_eq!(
        call(r#"setproduct(["a"])"#).unwrap_err(),
        "error calling function `setproduct`: at least two arguments are required"
    );
    assert!(call("setunion()").is_err());
    // parseint: bases up to 62, signs.
    assert_eq!(ok(r#"parseint("-ff", 16)"#), -255);
    assert_eq!(ok(r#"parseint("FF", 16)"#), 255);
    assert_eq!(ok(r#"parseint("Z", 62)"#), 61);
    assert_eq!(ok(r#"parseint("z", 62)"#), 35);
    assert_eq!(
        call(r#"parseint("12", 2)"#).unwrap_err(),
        "error calling function `parseint`: cannot parse \"12\" as a base 2 integer"
    );
    // Arity is checked like cty: too few or too many arguments.
    let err = call(r#"upper("a", "b")"#).unwrap_err();
    assert!(err.contains("upper"), "{err}");
    assert!(call(r#"templatefile("a", {}, {})"#).is_err());
    assert!(call(r#"jsonnetfile("a", {}, {})"#).is_err());
}
