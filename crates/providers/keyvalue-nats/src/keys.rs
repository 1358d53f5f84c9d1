//! How guest keys become NATS key-value keys and back.
//!
//! NATS allows keys of `[-/_=.a-zA-Z0-9]` that neither start nor end with `.` (and, being
//! subject tokens, have no empty `..` token). A guest key that is such a key, and does not start
//! with `=`, is stored as it is, so it reads the same from the `nats` CLI or a wasmCloud
//! provider. Any other key (the empty key, one with spaces, `:`, `*`, non-ASCII, or a leading
//! `=`) is stored as `=` followed by the unpadded base64url of its UTF-8 bytes, which uses only
//! allowed characters. A stored key that starts with `=` is always such an encoding, so the
//! mapping is reversible and two guest keys never meet.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::borrow::Cow;

const ENCODED: char = '=';

fn is_plain(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with(ENCODED)
        && !key.starts_with('.')
        && !key.ends_with('.')
        && !key.contains("..")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'=' | b'.'))
}

/// The NATS key a guest key is stored under.
pub fn encode_key(key: &str) -> Cow<'_, str> {
    if is_plain(key) {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(format!("{ENCODED}{}", URL_SAFE_NO_PAD.encode(key)))
    }
}

/// The guest key a NATS key stands for, or `None` for a key starting with `=` that is not one
/// of [`encode_key`]'s encodings (written by some other client).
pub fn decode_key(stored: &str) -> Option<String> {
    match stored.strip_prefix(ENCODED) {
        None => Some(stored.to_owned()),
        Some(encoded) => URL_SAFE_NO_PAD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_keys_are_stored_as_they_are() {
        for key in ["a", "A-b_c/d=e.f", "counter", "users/42", "x.y.z", "a="] {
            assert_eq!(encode_key(key), key);
            assert_eq!(decode_key(key).as_deref(), Some(key));
        }
    }

    #[test]
    fn other_keys_round_trip_through_an_allowed_form() {
        for key in [
            "",
            "conformance:a",
            "with space",
            "a:b c",
            ".leading",
            "trailing.",
            "a..b",
            "=starts-with-equals",
            "=",
            "wild*card>",
            "ünïcödé ✓",
            "tab\there",
        ] {
            let stored = encode_key(key);
            assert_ne!(stored, key, "{key:?} must be encoded");
            assert!(stored.starts_with('='));
            assert!(
                stored[1..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{stored}"
            );
            assert_eq!(decode_key(&stored).as_deref(), Some(key));
        }
    }

    #[test]
    fn foreign_keys_starting_with_equals_are_not_guest_keys() {
        assert_eq!(decode_key("=not base64!"), None);
        assert_eq!(
            decode_key("=_w"),
            None,
            "valid base64 of bytes that are not UTF-8"
        );
    }
}
