//! Entity tags (RFC 9110 §8.8.3): parsing, the two comparison functions and
//! a body-derived tag that is stable across processes.

use crate::http::trim_ows;

/// One entity-tag (RFC 9110 §8.8.3).
///
/// `opaque` is stored without its surrounding double quotes. Values produced
/// by [`EntityTag::parse`] and [`from_body`] only ever contain `etagc`
/// characters; a hand-built value with other characters is sanitised by
/// [`EntityTag::to_header`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityTag {
    /// True for a weak validator (`W/` prefix, RFC 9110 §8.8.1).
    pub weak: bool,
    /// The opaque-tag without its double quotes.
    pub opaque: String,
}

/// `etagc = %x21 / %x23-7E / obs-text` (RFC 9110 §8.8.3); obs-text is
/// %x80-FF (RFC 9110 §5.5).
fn is_etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7E).contains(&b) || b >= 0x80
}

impl EntityTag {
    /// Parses exactly one entity-tag, `"abc"` or `W/"abc"`; anything else is
    /// `None`.
    ///
    /// Surrounding SP/HTAB is tolerated because it is not part of a field
    /// value (RFC 9110 §5.5). The `W/` prefix is case-sensitive (`%s"W/"`,
    /// RFC 9110 §8.8.3). obs-text is accepted only when the opaque bytes are
    /// valid UTF-8, since `opaque` is a `String`; rejecting the rest fails
    /// safe, because an unparsed validator can only cost a 304, never cause
    /// a wrong one.
    pub fn parse(s: &[u8]) -> Option<EntityTag> {
        let s = trim_ows(s);
        let (weak, rest) = match s.strip_prefix(b"W/") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let inner = rest.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
        if !inner.iter().copied().all(is_etagc) {
            return None;
        }
        let opaque = std::str::from_utf8(inner).ok()?.to_owned();
        Some(EntityTag { weak, opaque })
    }

    /// Weak comparison (RFC 9110 §8.8.3.2): opaque-tags match, whatever
    /// either side's weakness. This is the comparison If-None-Match uses.
    pub fn weak_eq(&self, other: &EntityTag) -> bool {
        self.opaque == other.opaque
    }

    /// Strong comparison (RFC 9110 §8.8.3.2): both tags are strong and their
    /// opaque-tags match.
    pub fn strong_eq(&self, other: &EntityTag) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Renders the tag as a field value, `W/"..."` or `"..."`.
    ///
    /// Characters that are not `etagc` (RFC 9110 §8.8.3) are left out, so a
    /// hand-built tag can never inject a quote, CR/LF or NUL into a header.
    pub fn to_header(&self) -> String {
        let mut out = String::with_capacity(self.opaque.len() + 4);
        if self.weak {
            out.push_str("W/");
        }
        out.push('"');
        // Non-ASCII chars are all obs-text bytes in UTF-8, hence allowed.
        out.extend(
            self.opaque
                .chars()
                .filter(|&c| !c.is_ascii() || is_etagc(c as u8)),
        );
        out.push('"');
        out
    }
}

/// Entity tag derived from the body bytes alone, so it is identical across
/// processes and restarts: blake3 of the body, first 16 bytes, base64url
/// without padding (22 chars).
///
/// 128 bits keep accidental collisions out of reach while the header stays
/// short; base64url (RFC 4648 §5) only uses `etagc` characters. A weak tag
/// suits bodies the application may re-encode (RFC 9110 §8.8.1).
pub fn from_body(body: &[u8], weak: bool) -> EntityTag {
    let hash = blake3::hash(body);
    let prefix = hash.as_bytes().iter().take(16).copied();
    EntityTag {
        weak,
        opaque: base64url(prefix),
    }
}

/// The 64-symbol URL-safe alphabet of RFC 4648 §5, without indexing a table.
fn base64url_symbol(v: u32) -> char {
    let v = v & 0x3F;
    let c = match v {
        0..=25 => b'A' + v as u8,
        26..=51 => b'a' + (v as u8 - 26),
        52..=61 => b'0' + (v as u8 - 52),
        62 => b'-',
        _ => b'_',
    };
    c as char
}

/// Unpadded base64url (RFC 4648 §5, padding omitted as §3.2 allows): the
/// length already tells a decoder how many bytes the last group holds.
fn base64url<I: IntoIterator<Item = u8>>(bytes: I) -> String {
    let mut out = String::new();
    // Fused: after a short final group the loop must see None, not more bytes.
    let mut iter = bytes.into_iter().fuse();
    while let Some(b0) = iter.next() {
        let b1 = iter.next();
        let b2 = iter.next();
        let n =
            (u32::from(b0) << 16) | (u32::from(b1.unwrap_or(0)) << 8) | u32::from(b2.unwrap_or(0));
        // k input bytes yield k + 1 symbols.
        let symbols = 2 + usize::from(b1.is_some()) + usize::from(b2.is_some());
        for shift in [18u32, 12, 6, 0].into_iter().take(symbols) {
            out.push(base64url_symbol(n >> shift));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tag(weak: bool, opaque: &str) -> EntityTag {
        EntityTag {
            weak,
            opaque: opaque.to_owned(),
        }
    }

    #[test]
    fn rfc9110_8_8_3_parse_strong_and_weak() {
        assert_eq!(EntityTag::parse(b"\"xyzzy\""), Some(tag(false, "xyzzy")));
        assert_eq!(EntityTag::parse(b"W/\"xyzzy\""), Some(tag(true, "xyzzy")));
        assert_eq!(EntityTag::parse(b"\"\""), Some(tag(false, "")));
        assert_eq!(EntityTag::parse(b" \t\"a\" "), Some(tag(false, "a")));
        // Backslash is plain etagc: entity-tags have no quoted-pair.
        assert_eq!(EntityTag::parse(b"\"a\\\""), Some(tag(false, "a\\")));
        assert_eq!(EntityTag::parse(b"\"a,b\""), Some(tag(false, "a,b")));
    }

    #[test]
    fn rfc9110_8_8_3_parse_rejects_non_grammar() {
        for bad in [
            &b""[..],
            b"xyzzy",
            b"\"",
            b"\"abc",
            b"abc\"",
            b"w/\"a\"", // the W/ prefix is case-sensitive
            b"W/ \"a\"",
            b"W/abc",
            b"\"a\"b\"",
            b"\"a b\"",
            b"\"a\x00\"",
            b"\"a\x7f\"",
            b"\"a\" \"b\"",
            b"\"a\",\"b\"",
            b"*",
            b"\"\xff\"", // obs-text that is not UTF-8
        ] {
            assert_eq!(EntityTag::parse(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn rfc9110_5_5_obs_text_utf8_accepted() {
        let t = EntityTag::parse("\"caf\u{e9}\"".as_bytes());
        assert_eq!(t, Some(tag(false, "caf\u{e9}")));
    }

    #[test]
    fn rfc9110_8_8_3_2_comparison_table() {
        let (w1, w1b, w2, s1) = (
            tag(true, "1"),
            tag(true, "1"),
            tag(true, "2"),
            tag(false, "1"),
        );
        assert!(!w1.strong_eq(&w1b) && w1.weak_eq(&w1b));
        assert!(!w1.strong_eq(&w2) && !w1.weak_eq(&w2));
        assert!(!w1.strong_eq(&s1) && w1.weak_eq(&s1));
        assert!(s1.strong_eq(&s1.clone()) && s1.weak_eq(&s1.clone()));
    }

    #[test]
    fn to_header_forms_and_sanitising() {
        assert_eq!(tag(false, "abc").to_header(), "\"abc\"");
        assert_eq!(tag(true, "abc").to_header(), "W/\"abc\"");
        assert_eq!(tag(false, "a\"b\r\nc d\0").to_header(), "\"abcd\"");
        assert_eq!(tag(true, "\u{e9}").to_header(), "W/\"\u{e9}\"");
    }

    #[test]
    fn base64url_rfc4648_vectors() {
        assert_eq!(base64url(b"".iter().copied()), "");
        assert_eq!(base64url(b"f".iter().copied()), "Zg");
        assert_eq!(base64url(b"fo".iter().copied()), "Zm8");
        assert_eq!(base64url(b"foo".iter().copied()), "Zm9v");
        assert_eq!(base64url(b"foobar".iter().copied()), "Zm9vYmFy");
        // The URL-safe symbols replace '+' and '/' (RFC 4648 §5).
        assert_eq!(base64url([0xfb, 0xff]), "-_8");
        let all: String = (0..64).map(base64url_symbol).collect();
        assert_eq!(
            all,
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        );
    }

    #[test]
    fn from_body_is_pinned_to_blake3() {
        // blake3("") = af1349b9f5f9a1a6a0404dea36dcc949...; pinning the value
        // catches any change that would invalidate every client's validator.
        assert_eq!(from_body(b"", false), tag(false, "rxNJufX5oaagQE3qNtzJSQ"));
        let w = from_body(b"hello", true);
        assert!(w.weak);
        assert_eq!(w.opaque.len(), 22);
        assert_eq!(EntityTag::parse(w.to_header().as_bytes()), Some(w));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = EntityTag::parse(&bytes);
        }

        #[test]
        fn to_header_parse_round_trip(weak in any::<bool>(), opaque in "[!#-~\u{80}-\u{10ffff}]{0,24}") {
            let t = EntityTag { weak, opaque };
            prop_assert_eq!(EntityTag::parse(t.to_header().as_bytes()), Some(t));
        }

        #[test]
        fn to_header_always_parses(weak in any::<bool>(), opaque in any::<String>()) {
            let t = EntityTag { weak, opaque };
            prop_assert!(EntityTag::parse(t.to_header().as_bytes()).is_some());
        }

        #[test]
        fn from_body_deterministic_and_distinct(
            a in proptest::collection::vec(any::<u8>(), 0..256),
            b in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let ta = from_body(&a, false);
            prop_assert_eq!(&ta, &from_body(&a, false));
            prop_assert_eq!(ta.opaque.len(), 22);
            prop_assert!(ta.opaque.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
            if a != b {
                prop_assert_ne!(ta.opaque, from_body(&b, false).opaque);
            }
        }
    }
}
