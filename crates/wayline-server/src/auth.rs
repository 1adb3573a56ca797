//! Tokens: HMAC-SHA256 signed, typed, expiring and revocable.
//!
//! A token is `wl1.<base64url(claims JSON)>.<base64url(HMAC-SHA256(key, claims))>`. The key is
//! generated on first start and kept in the store; only token ids are stored (for revocation),
//! never tokens.

use std::collections::HashSet;
use std::sync::RwLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tonic::Status;

/// What a token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// A user: every RPC except the entrypoint ones.
    Login,
    /// A runner: the runner RPCs and what jobs need.
    Runner,
    /// One deployment's entrypoint: the entrypoint RPCs of that deployment only.
    Entrypoint,
    /// Exchangeable once for a login token.
    Invite,
    /// Runs one trigger over HTTP.
    Trigger,
    /// One deployment's URL-service tunnel: opens tunnels for that deployment only, no RPCs.
    Url,
}

impl TokenKind {
    /// Lower-case name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Runner => "runner",
            Self::Entrypoint => "entrypoint",
            Self::Invite => "invite",
            Self::Trigger => "trigger",
            Self::Url => "url",
        }
    }
}

/// The signed content of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Token id (revocation key).
    pub id: String,
    /// Kind.
    pub kind: TokenKind,
    /// Expiry in milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Runner tokens: the runner id the token is bound to ("" = any runner).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub runner_id: String,
    /// Entrypoint and URL tokens: the deployment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deployment_id: String,
    /// Trigger tokens: the trigger.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trigger_id: String,
}

/// Signs and checks tokens.
pub struct Tokens {
    key: Vec<u8>,
    revoked: RwLock<HashSet<String>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").finish_non_exhaustive()
    }
}

const PREFIX: &str = "wl1.";

/// The longest lifetime a token (or a job's expiry) may ask for: ten years. Longer ones
/// overflowed the expiry into the past.
pub const MAX_LIFETIME: Duration = Duration::from_hours(10 * 365 * 24);

/// Parses a lifetime such as `720h` or `30m`, at most [`MAX_LIFETIME`]; empty gives `None`.
/// The one parser for every `expires_in` the API takes.
pub fn parse_expiry(s: &str) -> Result<Option<Duration>, Status> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    let shown: String = s.chars().take(40).collect();
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        Status::invalid_argument(format!(
            "`{shown}` is not a duration such as `720h` or `30m`: {e}"
        ))
    })?;
    if d > MAX_LIFETIME {
        return Err(Status::invalid_argument(format!(
            "`{shown}` is longer than the limit of 10 years (87600h)"
        )));
    }
    Ok(Some(d))
}

fn now_ms() -> i64 {
    wayline_core::time::to_millis(&wayline_core::time::now())
}

impl Tokens {
    /// A signer with `key` and the ids already revoked.
    pub fn new(key: Vec<u8>, revoked: impl IntoIterator<Item = String>) -> Self {
        Self {
            key,
            revoked: RwLock::new(revoked.into_iter().collect()),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts any key length")
    }

    /// New claims of `kind` with a fresh id and the given lifetime.
    pub fn claims(kind: TokenKind, expires_in: Option<Duration>) -> Claims {
        Claims {
            id: wayline_core::id::new_id(),
            kind,
            // Saturating: lifetimes are bounded by `parse_expiry`, this keeps any other caller
            // from wrapping into the past.
            exp: expires_in
                .map(|d| now_ms().saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))),
            runner_id: String::new(),
            deployment_id: String::new(),
            trigger_id: String::new(),
        }
    }

    /// Signs claims into a token string.
    pub fn sign(&self, claims: &Claims) -> String {
        let body = B64.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let sig = B64.encode(mac.finalize().into_bytes());
        format!("{PREFIX}{body}.{sig}")
    }

    /// Marks a token id revoked (the store is updated by the caller).
    pub fn revoke(&self, id: &str) {
        self.revoked
            .write()
            .expect("revoked lock")
            .insert(id.to_owned());
    }

    /// Checks signature, expiry and revocation.
    pub fn verify(&self, token: &str) -> Result<Claims, Status> {
        let malformed = || {
            Status::unauthenticated(
                "the token is malformed: expected a Wayline token (`wl1.…`); check `wayline context inspect`",
            )
        };
        let rest = token.trim().strip_prefix(PREFIX).ok_or_else(malformed)?;
        let (body, sig) = rest.split_once('.').ok_or_else(malformed)?;
        let sig = B64.decode(sig).map_err(|_| malformed())?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&sig).map_err(|_| {
            Status::unauthenticated("the token was not issued by this server (bad signature)")
        })?;
        let claims: Claims = B64
            .decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(malformed)?;
        if let Some(exp) = claims.exp
            && exp <= now_ms()
        {
            let ago = u64::try_from(now_ms().saturating_sub(exp)).unwrap_or(u64::MAX);
            let ago = Duration::from_millis(ago / 1000 * 1000);
            return Err(Status::unauthenticated(format!(
                "the {} token expired {} ago; ask for a new one",
                claims.kind.name(),
                humantime::format_duration(ago)
            )));
        }
        if self
            .revoked
            .read()
            .expect("revoked lock")
            .contains(&claims.id)
        {
            return Err(Status::unauthenticated(format!(
                "the {} token {} has been revoked",
                claims.kind.name(),
                claims.id
            )));
        }
        Ok(claims)
    }
}

/// Reads `authorization: Bearer <token>` from request metadata.
pub fn bearer(meta: &tonic::metadata::MetadataMap) -> Result<Option<&str>, Status> {
    let Some(v) = meta.get("authorization") else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| Status::unauthenticated("the authorization header is not valid text"))?;
    let token = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .ok_or_else(|| {
            Status::unauthenticated("the authorization header must be `Bearer <token>`")
        })?;
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(b"0123456789abcdef0123456789abcdef".to_vec(), [])
    }

    #[test]
    fn round_trip_and_tamper() {
        let t = tokens();
        let mut c = Tokens::claims(TokenKind::Entrypoint, None);
        c.deployment_id = "D1".into();
        let s = t.sign(&c);
        assert_eq!(t.verify(&s).unwrap(), c);
        let other = Tokens::new(b"another key".to_vec(), []);
        assert_eq!(
            other.verify(&s).unwrap_err().message(),
            "the token was not issued by this server (bad signature)"
        );
        assert!(
            t.verify("nonsense")
                .unwrap_err()
                .message()
                .starts_with("the token is malformed")
        );
    }

    #[test]
    fn expired_and_revoked() {
        let t = tokens();
        let mut c = Tokens::claims(TokenKind::Login, None);
        c.exp = Some(now_ms() - 10_000);
        let err = t.verify(&t.sign(&c)).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert!(
            err.message().starts_with("the login token expired 10s ago"),
            "{}",
            err.message()
        );
        // Found by fuzzing: the "expired … ago" arithmetic overflowed.
        c.exp = Some(i64::MIN);
        let err = t.verify(&t.sign(&c)).unwrap_err();
        assert!(err.message().starts_with("the login token expired"));
        let c = Tokens::claims(TokenKind::Runner, Some(Duration::from_mins(1)));
        let s = t.sign(&c);
        t.revoke(&c.id);
        assert_eq!(
            t.verify(&s).unwrap_err().message(),
            format!("the runner token {} has been revoked", c.id)
        );
    }

    #[test]
    fn parses_expiry() {
        assert_eq!(parse_expiry("").unwrap(), None);
        assert_eq!(parse_expiry("2h").unwrap(), Some(Duration::from_hours(2)));
        assert!(
            parse_expiry("soon")
                .unwrap_err()
                .message()
                .starts_with("`soon` is not a duration")
        );
        // 5·10^8 years overflowed the expiry into the past (issue 10).
        for s in ["500000000y", "11y", "87601h"] {
            let err = parse_expiry(s).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
            assert_eq!(
                err.message(),
                format!("`{s}` is longer than the limit of 10 years (87600h)")
            );
        }
        assert_eq!(parse_expiry("87600h").unwrap(), Some(MAX_LIFETIME));
        let far = Tokens::claims(TokenKind::Login, Some(Duration::MAX));
        assert!(far.exp.unwrap() > now_ms());
    }
}
