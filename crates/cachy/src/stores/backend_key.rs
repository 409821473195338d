//! Keys for backends that cannot take every key: memcached and the database store.

/// The longest key (with its prefix) that memcached and the database store keep as it is;
/// longer keys are stored as their digest (see [`backend_key`]).
pub(super) const MAX_PLAIN_KEY: usize = 250;

/// The key a backend that cannot take every key stores `key` under: `prefix` + `key` when
/// `fits` accepts it, else `prefix` + `cachy:sha1:` + the key's SHA-1. A key that itself
/// starts with the marker is always hashed, so no plain key can equal another key's
/// stand-in: two distinct keys never share an item.
pub(super) fn backend_key(prefix: &str, key: &str, fits: impl Fn(&str) -> bool) -> String {
    use sha1::Digest;
    const MARKER: &str = "cachy:sha1:";
    let full = format!("{prefix}{key}");
    if fits(&full) && !key.starts_with(MARKER) {
        full
    } else {
        format!("{prefix}{MARKER}{}", hex::encode(sha1::Sha1::digest(key)))
    }
}
