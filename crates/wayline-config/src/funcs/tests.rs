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
    assert_eq!(
        yaml_decode("a: 1\n  b: 2\n").unwrap_err(),
        "unexpected indentation at \"b: 2\""
    );
}

#[test]
fn errors_name_the_problem() {
    assert_eq!(
        call(r#"base64decode("%%")"#).unwrap_err(),
        "error calling function `base64decode`: invalid base64: Invalid symbol 37, offset 0."
    );
    assert_eq!(
        call(r#"format("%d")"#).unwrap_err(),
        "error calling function `format`: not enough arguments for format \"%d\""
    );
    assert_eq!(
        call(r#"format("%x", 1)"#).unwrap_err(),
        "error calling function `format`: unsupported format verb `%x`"
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
