//! Record ids: ULIDs, sortable by creation time, rendered in Crockford base32.

/// A new unique id, e.g. `01HZX3N8Q5V2E6J9K7M4T1R0AB`.
pub fn new_id() -> String {
    ulid::Ulid::new().to_string()
}

/// Renders a per-app sequence the way users type it: `v3`.
pub fn format_sequence(seq: u64) -> String {
    format!("v{seq}")
}

/// Parses `v3`, `V3` or `3` into a sequence number.
pub fn parse_sequence(s: &str) -> Option<u64> {
    let digits = s.strip_prefix(['v', 'V']).unwrap_or(s);
    digits.parse().ok().filter(|n| *n > 0)
}

/// Shortens an id for tables, as `-long-ids` turns off.
pub fn short_id(id: &str) -> &str {
    let n = id.len().min(10);
    &id[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_round_trip() {
        assert_eq!(parse_sequence("v3"), Some(3));
        assert_eq!(parse_sequence("V12"), Some(12));
        assert_eq!(parse_sequence("7"), Some(7));
        assert_eq!(parse_sequence("v0"), None);
        assert_eq!(parse_sequence("vx"), None);
        assert_eq!(format_sequence(4), "v4");
    }

    #[test]
    fn ids_are_unique_and_sortable() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 26);
    }
}
