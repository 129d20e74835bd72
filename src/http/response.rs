//! What the response side decides: may this response be stored, and which fields travel.

/// Facts about a storable response that decide which fields the cache adds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseInfo {
    /// The response set its own `Cache-Control`.
    pub has_cache_control: bool,
    /// The response's own `ETag` value, if any.
    pub etag: Option<Vec<u8>>,
    /// The response has a `Vary` field.
    pub has_vary: bool,
}

impl ResponseInfo {
    /// Reads the facts from a response header list (names compared case-insensitively,
    /// RFC 9110 §5.1). Whether the response may be stored at all is
    /// [`crate::http::storable::decide`]'s question.
    pub fn read(headers: &[(&[u8], &[u8])]) -> ResponseInfo {
        let mut info = ResponseInfo::default();
        for &(name, value) in headers {
            if name.eq_ignore_ascii_case(b"cache-control") {
                info.has_cache_control = true;
            } else if name.eq_ignore_ascii_case(b"etag") {
                info.etag.get_or_insert_with(|| value.to_vec());
            } else if name.eq_ignore_ascii_case(b"vary") {
                info.has_vary = true;
            }
        }
        info
    }
}

/// Whether every header named by the response's `Vary` lines is one the entry is keyed on
/// (`keyed`: lower-case names). A stored response may only answer requests whose values of
/// those headers match (RFC 9111 §4.1); a name the key does not see cannot be matched, so such
/// a response must not be stored. Empty list members are ignored (RFC 9110 §5.6.1).
pub fn vary_is_keyed(headers: &[(&[u8], &[u8])], keyed: &[Vec<u8>]) -> bool {
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(b"vary"))
        .flat_map(|(_, value)| value.split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|item| !item.is_empty())
        .all(|item| keyed.iter().any(|k| item.eq_ignore_ascii_case(k)))
}

/// Hop-by-hop fields that a cache must not store (RFC 9111 §3.1, RFC 9110 §7.6.1).
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    const HOP: &[&[u8]] = &[
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    ];
    HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// Fields a 304 carries from the 200 it stands for (RFC 9110 §15.4.5).
pub fn allowed_in_304(name: &[u8]) -> bool {
    const KEEP: &[&[u8]] = &[
        b"cache-control",
        b"content-location",
        b"date",
        b"etag",
        b"expires",
        b"vary",
    ];
    KEEP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// Whether `text` is `n` written in decimal, as `n.to_string()` would (no sign, no leading
/// zero), without allocating.
pub fn is_decimal_of(text: &[u8], mut n: usize) -> bool {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    text == &digits[at..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_content_length_is_the_body_length_in_plain_decimal() {
        assert!(is_decimal_of(b"0", 0) && is_decimal_of(b"2048", 2048));
        assert!(!is_decimal_of(b"02048", 2048) && !is_decimal_of(b"+2048", 2048));
        assert!(!is_decimal_of(b"", 0) && !is_decimal_of(b"204", 2048));
    }

    use crate::http::test_headers as h;

    #[test]
    fn facts_are_collected() {
        let hs = h(&[
            ("etag", "\"x\""),
            ("cache-control", "max-age=3"),
            ("vary", "accept"),
        ]);
        let info = ResponseInfo::read(&hs);
        assert!(info.has_cache_control && info.has_vary);
        assert_eq!(info.etag.as_deref(), Some(&b"\"x\""[..]));
    }

    #[test]
    fn vary_must_name_keyed_headers_rfc9111_4_1() {
        let keyed = vec![b"accept-language".to_vec(), b"authorization".to_vec()];
        assert!(vary_is_keyed(&h(&[("content-type", "x")]), &keyed));
        assert!(vary_is_keyed(
            &h(&[("Vary", "Accept-Language, ,authorization")]),
            &keyed
        ));
        assert!(vary_is_keyed(
            &h(&[("vary", ""), ("vary", "ACCEPT-LANGUAGE")]),
            &keyed
        ));
        assert!(!vary_is_keyed(
            &h(&[("vary", "accept-language, origin")]),
            &keyed
        ));
        assert!(!vary_is_keyed(
            &h(&[("vary", "accept-language"), ("vary", "cookie")]),
            &keyed
        ));
        assert!(!vary_is_keyed(&h(&[("vary", "accept")]), &[]));
    }

    #[test]
    fn hop_by_hop_rfc9111_3_1_and_304_fields_rfc9110_15_4_5() {
        assert!(is_hop_by_hop(b"Connection") && is_hop_by_hop(b"transfer-encoding"));
        assert!(!is_hop_by_hop(b"content-type"));
        assert!(allowed_in_304(b"ETag") && allowed_in_304(b"vary"));
        assert!(!allowed_in_304(b"content-length") && !allowed_in_304(b"content-type"));
    }
}
