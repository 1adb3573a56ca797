//! Fuzzing what the entrypoint parses from its environment and decodes from the network
//! (etcd's answers and watch streams; HTTP itself is hyper's), with a stable harness: proptest,
//! a bounded number of cases in the normal test run. Nothing may panic, however the bytes are
//! split.

use std::collections::HashMap;

use proptest::prelude::*;
use wayline_entrypoint::dynamic::{etcd_authority, etcd_key, range_value};
use wayline_entrypoint::etcd_watch::{WatchDecoder, classify};
use wayline_entrypoint::settings::{Settings, parse_duration};

const VARS: &[&str] = &[
    "WAYLINE_DEPLOYMENT_ID",
    "WAYLINE_ENTRYPOINT_CONFIG_REFRESH",
    "WAYLINE_ENTRYPOINT_DISABLE",
    "WAYLINE_ENTRYPOINT_DISABLE_EXEC",
    "WAYLINE_ENTRYPOINT_LOG_BUFFER",
    "WAYLINE_ENTRYPOINT_RESTART_GRACE",
    "WAYLINE_ENTRYPOINT_SERVER_REQUIRED",
    "WAYLINE_ENTRYPOINT_TOKEN",
    "WAYLINE_LOG_LEVEL",
    "WAYLINE_SERVER_ADDR",
    "WAYLINE_SERVER_TLS",
    "WAYLINE_SERVER_TLS_SKIP_VERIFY",
    "WAYPOINT_CEB_DISABLE",
    "WAYPOINT_SERVER_ADDR",
    "WAYPOINT_ENTRYPOINT_LOG_BUFFER",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,30}",
        "[0-9]{1,25}(ms|s|m|h|d)?",
        prop::sample::select(vec![
            "1",
            "0",
            "true",
            "false",
            "unix:///x",
            "http://[::1]:9",
            "localhost:99999",
            ":",
            "",
            "-1",
            "18446744073709551616"
        ])
        .prop_map(str::to_owned),
    ]
}

/// A JSON body as etcd's gateway sends one (answers, watch messages), with arbitrary damage.
fn etcd_body() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(
            prop::sample::select(vec![
                r#"{"result":{"created":true}}"#,
                r#"{"result":{"events":[{"kv":{"key":"L2s="}}]}}"#,
                r#"{"result":{"canceled":true,"cancel_reason":"x\ny"}}"#,
                r#"{"error":{"message":"no leader"}}"#,
                r#"{"kvs":[{"key":"L2s=","value":"YmFy"}]}"#,
                r#"{"kvs":[{"value":"!!"}]}"#,
                r#"{"error":"a\u00e9","code":2}"#,
                "{",
                "}",
                "\"",
                "\n",
            ]),
            0..6,
        ),
        prop::collection::vec(any::<u8>(), 0..20),
    )
        .prop_map(|(parts, junk)| {
            let mut out = parts.concat().into_bytes();
            out.extend_from_slice(&junk);
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn settings_from_any_environment_never_panic(env in prop::collection::hash_map(prop::sample::select(VARS.to_vec()), value(), 0..10)) {
        let env: HashMap<&str, String> = env;
        let _ = Settings::from_env(|k| env.get(k).cloned());
    }

    #[test]
    fn durations_never_panic(s in value()) {
        let _ = parse_duration(&s);
    }

    #[test]
    fn etcd_settings_never_panic(key in prop::option::of("\\PC{0,20}"), endpoints in prop::option::of("\\PC{0,40}")) {
        let mut config = HashMap::new();
        if let Some(k) = key { config.insert("key".to_owned(), k); }
        if let Some(e) = endpoints { config.insert("endpoints".to_owned(), e); }
        if let Ok(k) = etcd_key(&config, &[]) {
            for e in &k.endpoints {
                let _ = etcd_authority(e);
            }
        }
    }

    #[test]
    fn etcd_answers_never_panic(body in etcd_body(), status in prop::sample::select(vec![200u16, 400, 503])) {
        let _ = range_value(status, &body, "/k", "http://e:1");
    }

    /// The watch decoder gets the same bytes however the network split them.
    #[test]
    fn watch_streams_split_anywhere_never_panic(raw in etcd_body(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6)) {
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(raw.len() + 1)).collect();
        at.sort_unstable();
        let mut d = WatchDecoder::default();
        let mut prev = 0;
        for cut in at.into_iter().chain([raw.len()]) {
            if d.feed(&raw[prev..cut]).is_err() {
                break;
            }
            prev = cut;
            for _ in 0..64 {
                match d.next_message() {
                    Ok(Some(m)) => { let _ = classify(&m); }
                    _ => break,
                }
            }
        }
    }
}

/// The decoder buffered an unbounded body: it is bounded, with a clear error.
#[test]
fn watch_messages_are_bounded() {
    let mut d = WatchDecoder::default();
    d.feed(b"{\"result\":").unwrap();
    let mb = vec![b' '; 1024 * 1024];
    let mut err = None;
    for _ in 0..5 {
        if let Err(e) = d.feed(&mb) {
            err = Some(e);
            break;
        }
        assert!(d.next_message().unwrap().is_none());
    }
    assert_eq!(
        err.as_deref(),
        Some("an etcd watch message is over 4194304 bytes")
    );
}
/// Inputs that once crashed a parser, one file each under `tests/corpus/<parser>/`.
fn corpus(parser: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(parser);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    out.sort();
    out
}

#[test]
fn the_crash_corpus_stays_fixed() {
    let durations = corpus("duration");
    assert!(durations.len() >= 2);
    for d in durations {
        assert_eq!(parse_duration(&String::from_utf8_lossy(&d)), None);
    }
    // Once HTTP bytes for the hand-written decoder; HTTP is hyper's now, and the bytes still
    // must not crash the JSON side.
    for raw in corpus("http") {
        let _ = range_value(200, &raw, "/k", "http://e:1");
        let mut d = WatchDecoder::default();
        let _ = d.feed(&raw);
        let _ = d.next_message();
    }
}
