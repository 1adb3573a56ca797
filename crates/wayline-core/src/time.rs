//! Conversions between `SystemTime` and protobuf timestamps.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wayline_proto::prost_types::Timestamp;

/// The current time as a protobuf timestamp.
pub fn now() -> Timestamp {
    from_system(SystemTime::now())
}

/// Converts a `SystemTime` (clamped at the epoch).
pub fn from_system(t: SystemTime) -> Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// Converts a protobuf timestamp back (negative times clamp to the epoch).
pub fn to_system(t: &Timestamp) -> SystemTime {
    let secs = u64::try_from(t.seconds).unwrap_or(0);
    let nanos = u32::try_from(t.nanos).unwrap_or(0);
    UNIX_EPOCH + Duration::new(secs, nanos)
}

/// Milliseconds since the epoch, the form the store keeps.
pub fn to_millis(t: &Timestamp) -> i64 {
    t.seconds * 1000 + i64::from(t.nanos / 1_000_000)
}

/// The inverse of [`to_millis`].
pub fn from_millis(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// "3s ago", "5m ago", "2h ago", "4d ago" relative to now, for tables.
pub fn ago(t: &Timestamp) -> String {
    let elapsed = SystemTime::now()
        .duration_since(to_system(t))
        .unwrap_or_default()
        .as_secs();
    match elapsed {
        0..60 => format!("{elapsed}s ago"),
        60..3600 => format!("{}m ago", elapsed / 60),
        3600..86400 => format!("{}h ago", elapsed / 3600),
        _ => format!("{}d ago", elapsed / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip() {
        let t = from_millis(1_700_000_123_456);
        assert_eq!(t.seconds, 1_700_000_123);
        assert_eq!(t.nanos, 456_000_000);
        assert_eq!(to_millis(&t), 1_700_000_123_456);
    }
}
