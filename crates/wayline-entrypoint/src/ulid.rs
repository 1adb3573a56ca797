//! Instance ids (ULIDs) with the `ulid` crate, random bits from std's per-process random keys:
//! no RNG crate needed in the static binary.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// 64 unpredictable bits (SipHash keyed by OS randomness over a counter and the clock).
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish()
}

/// A new ULID: 48 bits of milliseconds then 80 random bits, in the `ulid` crate's encoding
/// (the same as the server's ids). The crate's `std` feature, which would bring an RNG crate, is
/// off: the random part comes from [`random_u64`].
pub fn new_ulid() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let random = u128::from(random_u64()) << 64 | u128::from(random_u64());
    ulid::Ulid::from_parts(ms, random).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulids_are_26_chars_unique_and_time_ordered() {
        let a = new_ulid();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_ulid();
        assert_eq!(a.len(), 26);
        assert!(
            a.bytes()
                .all(|c| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&c))
        );
        assert!(ulid::Ulid::from_string(&b).is_ok(), "{b}");
        assert_ne!(a, b);
        assert!(a[..10] < b[..10], "{a} {b}");
    }
}
