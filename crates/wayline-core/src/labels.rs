//! Labels: `key=value` pairs on operations, runners and config.

use std::collections::BTreeMap;

/// An error in a `key=value` argument.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LabelError {
    #[error("`{0}` is not of the form key=value")]
    NotKeyValue(String),
    #[error(
        "label key `{0}` is reserved: keys starting with `wayline/` or `waypoint/` are set by Wayline"
    )]
    Reserved(String),
}

/// Parses `key=value` (the value may contain `=`).
pub fn parse_key_value(s: &str) -> Result<(String, String), LabelError> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(LabelError::NotKeyValue(s.to_owned())),
    }
}

/// Parses user labels, rejecting reserved keys.
pub fn parse_user_labels<'a>(
    items: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<String, String>, LabelError> {
    let mut out = BTreeMap::new();
    for item in items {
        let (k, v) = parse_key_value(item)?;
        if is_reserved(&k) {
            return Err(LabelError::Reserved(k));
        }
        out.insert(k, v);
    }
    Ok(out)
}

/// Keys Wayline sets itself.
pub fn is_reserved(key: &str) -> bool {
    key.starts_with("wayline/") || key.starts_with("waypoint/")
}

/// True when every label in `wanted` is present in `have` with the same value.
pub fn is_subset<'a, I, S>(wanted: I, have: &std::collections::HashMap<String, String, S>) -> bool
where
    I: IntoIterator<Item = (&'a String, &'a String)>,
    S: std::hash::BuildHasher,
{
    wanted.into_iter().all(|(k, v)| have.get(k) == Some(v))
}

/// Renders labels as `{a=1, b=2}` in key order, for messages.
pub fn display<'a, I>(labels: I) -> String
where
    I: IntoIterator<Item = (&'a String, &'a String)>,
{
    let sorted: BTreeMap<_, _> = labels.into_iter().collect();
    let parts: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn parses_key_value() {
        assert_eq!(
            parse_key_value("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert_eq!(
            parse_key_value("novalue").unwrap_err().to_string(),
            "`novalue` is not of the form key=value"
        );
        assert!(parse_user_labels(["waypoint/x=1"]).is_err());
    }

    #[test]
    fn subset_matching() {
        let have: HashMap<String, String> = [
            ("os".to_owned(), "linux".to_owned()),
            ("gpu".to_owned(), "yes".to_owned()),
        ]
        .into();
        let want: HashMap<String, String> = [("os".to_owned(), "linux".to_owned())].into();
        assert!(is_subset(&want, &have));
        let want2: HashMap<String, String> = [("os".to_owned(), "mac".to_owned())].into();
        assert!(!is_subset(&want2, &have));
        assert_eq!(display(&have), "{gpu=yes, os=linux}");
    }
}
