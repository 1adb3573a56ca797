//! Registry credentials from the Waypoint-style attributes.

use bollard::auth::DockerCredentials;

use super::DockerError;
use crate::docker::config::{Auth, Invalid};

/// Engine credentials from the Waypoint-style attributes, in Waypoint's order of preference:
/// `encoded_auth`, then the `auth {}` block, then `username`/`password`.
pub fn credentials(
    encoded_auth: Option<&str>,
    auth: Option<&Auth>,
    username: Option<&str>,
    password: Option<&str>,
) -> Result<Option<DockerCredentials>, DockerError> {
    if let Some(encoded) = encoded_auth.filter(|e| !e.is_empty()) {
        return decode_encoded_auth(encoded).map(Some);
    }
    if let Some(a) = auth {
        return Ok(Some(DockerCredentials {
            username: a.username.clone(),
            password: a.password.clone(),
            auth: a.auth.clone(),
            email: a.email.clone(),
            serveraddress: a.server_address.clone().or_else(|| a.hostname.clone()),
            identitytoken: a.identity_token.clone(),
            registrytoken: a.registry_token.clone(),
        }));
    }
    if let Some(user) = username {
        return Ok(Some(DockerCredentials {
            username: Some(user.to_owned()),
            password: password.map(str::to_owned),
            ..DockerCredentials::default()
        }));
    }
    Ok(None)
}

/// Decodes `encoded_auth`: base64 (standard or URL-safe) of the engine's JSON auth config.
fn decode_encoded_auth(encoded: &str) -> Result<DockerCredentials, DockerError> {
    use base64::Engine as _;
    let bad = || {
        DockerError::Invalid(vec![Invalid {
            attribute: "encoded_auth".to_owned(),
            message: "is not base64 of a JSON auth config ({\"username\": …, \"password\": …})"
                .to_owned(),
        }])
    };
    let trimmed = encoded.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(trimmed))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed))
        .map_err(|_| bad())?;
    #[derive(serde::Deserialize)]
    struct Raw {
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<String>,
        #[serde(default)]
        auth: Option<String>,
        #[serde(default)]
        email: Option<String>,
        #[serde(default, alias = "serveraddress")]
        #[serde(rename = "serverAddress")]
        server_address: Option<String>,
        #[serde(default, alias = "identitytoken")]
        #[serde(rename = "identityToken")]
        identity_token: Option<String>,
        #[serde(default, alias = "registrytoken")]
        #[serde(rename = "registryToken")]
        registry_token: Option<String>,
    }
    let raw: Raw = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok(DockerCredentials {
        username: raw.username,
        password: raw.password,
        auth: raw.auth,
        email: raw.email,
        serveraddress: raw.server_address,
        identitytoken: raw.identity_token,
        registrytoken: raw.registry_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_waypoints_order() {
        use base64::Engine as _;
        let enc = base64::engine::general_purpose::URL_SAFE
            .encode(r#"{"username":"e","password":"p","serveraddress":"r"}"#);
        let auth = Auth {
            username: Some("a".into()),
            ..Auth::default()
        };
        let c = credentials(Some(&enc), Some(&auth), Some("u"), None)
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.username.as_deref(), c.serveraddress.as_deref()),
            (Some("e"), Some("r"))
        );
        let c = credentials(None, Some(&auth), Some("u"), None)
            .unwrap()
            .unwrap();
        assert_eq!(c.username.as_deref(), Some("a"));
        let c = credentials(None, None, Some("u"), Some("pw"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref()),
            (Some("u"), Some("pw"))
        );
        assert!(credentials(None, None, None, None).unwrap().is_none());
        assert_eq!(
            credentials(Some("%%%"), None, None, None)
                .unwrap_err()
                .to_string(),
            "invalid config: encoded_auth: is not base64 of a JSON auth config ({\"username\": …, \"password\": …})"
        );
    }
}
