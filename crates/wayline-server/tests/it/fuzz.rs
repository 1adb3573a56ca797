//! Fuzzing what the server decodes itself, with a stable harness (proptest, a bounded number of
//! cases in the normal run): bearer tokens, including well-signed tokens with arbitrary claims,
//! and entrypoint log batches with arbitrary text. Nothing may panic; every limit holds.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use futures::stream;
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use sha2::Sha256;
use wayline_proto::v1 as pb;
use wayline_server::auth::{TokenKind, Tokens};
use wayline_server::entrypoint::{EntrypointHub, HubOptions};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

/// A token over `body` with a valid signature: only the server could make one, but its claims
/// are whatever the fuzzer says.
fn signed(body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).unwrap();
    mac.update(body.as_bytes());
    format!("wl1.{body}.{}", B64.encode(mac.finalize().into_bytes()))
}

fn claims_json() -> impl Strategy<Value = String> {
    (
        "[a-zA-Z0-9]{0,30}",
        prop::sample::select(vec![
            "login",
            "runner",
            "entrypoint",
            "invite",
            "trigger",
            "admin",
            "",
        ]),
        prop::option::of(any::<i64>()),
        "\\PC{0,20}",
    )
        .prop_map(|(id, kind, exp, extra)| {
            let mut v = serde_json::json!({ "id": id, "kind": kind, "deployment_id": extra });
            if let Some(exp) = exp {
                v["exp"] = exp.into();
            }
            v.to_string()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_tokens_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let tokens = Tokens::new(KEY.to_vec(), []);
        let s = String::from_utf8_lossy(&bytes);
        prop_assert!(tokens.verify(&s).is_err());
        let _ = tokens.verify(&format!("wl1.{s}"));
    }

    /// A signed token with any claims: accepted or refused, never a panic (an `exp` of
    /// i64::MIN overflowed the "expired … ago" message).
    #[test]
    fn well_signed_arbitrary_claims_never_panic(json in claims_json(), raw in prop::collection::vec(any::<u8>(), 0..64)) {
        let tokens = Tokens::new(KEY.to_vec(), []);
        let _ = tokens.verify(&signed(&B64.encode(json.as_bytes())));
        let _ = tokens.verify(&signed(&B64.encode(&raw)));
    }

    /// Flipping any byte of a real token is refused (or, where the byte is trimmed, the same
    /// claims come back).
    #[test]
    fn tampered_tokens_are_refused(at in any::<prop::sample::Index>(), to in any::<u8>()) {
        let tokens = Tokens::new(KEY.to_vec(), []);
        let claims = Tokens::claims(TokenKind::Runner, None);
        let good = tokens.sign(&claims);
        let mut bytes = good.clone().into_bytes();
        let i = at.index(bytes.len());
        bytes[i] = to;
        let bad = String::from_utf8_lossy(&bytes).into_owned();
        if let Ok(c) = tokens.verify(&bad) {
            prop_assert_eq!(c, claims);
        }
    }

}

proptest! {
    // Generating long Unicode lines is the slow part: fewer cases.
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// Log lines of any text and length are kept within the line and window limits.
    #[test]
    fn log_lines_of_any_text_stay_within_the_limits(lines in prop::collection::vec("\\PC{0,300}", 1..20)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let opts = HubOptions { max_log_line_bytes: 50, log_window_bytes: 2000, ..HubOptions::default() };
            let hub = EntrypointHub::new(opts);
            let batch = pb::EntrypointLogBatch {
                instance_id: "I".into(),
                lines: lines.iter().map(|l| pb::LogLine { line: l.clone(), ..Default::default() }).collect(),
                ..Default::default()
            };
            hub.entrypoint_logs_from("D".into(), stream::iter([Ok(batch)])).await.unwrap();
            let got: Vec<Result<pb::LogBatch, tonic::Status>> = futures::StreamExt::collect(hub.log_stream(vec![], pb::GetLogStreamRequest::default())).await;
            let kept: Vec<String> = got.into_iter().flat_map(|b| b.unwrap().lines).map(|l| l.line).collect();
            let marker = " … [line cut at 50 of 1200 bytes]".len();
            prop_assert!(kept.iter().all(|l| l.len() <= 50 + marker), "{kept:?}");
            prop_assert!(kept.iter().map(String::len).sum::<usize>() <= 2000 + 50 + marker);
            prop_assert!(!kept.is_empty());
            Ok(())
        })?;
    }
}
