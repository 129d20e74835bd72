//! What the response side decides: may this response be stored, and which fields travel.

use super::cache_control::CacheControl;

/// Why a response was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStorable {
    /// Status outside the route's allowed set (RFC 9111 §3: only understood, cacheable statuses).
    Status,
    /// `Set-Cookie` belongs to one client; never share it.
    SetCookie,
    /// Response `Cache-Control: no-store` (RFC 9111 §5.2.2.5).
    NoStore,
    /// Response `Cache-Control: private` (RFC 9111 §5.2.2.7): not for a shared cache.
    Private,
    /// `Vary: *` can never match a later request (RFC 9111 §4.1).
    VaryStar,
    /// An `Access-Control-Allow-Origin` echoing one origin without `Vary: Origin` would be
    /// served to other origins.
    UnvariedCors,
}

impl NotStorable {
    /// Short reason, used in `Cache-Status: ...; detail=` and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            NotStorable::Status => "status",
            NotStorable::SetCookie => "set-cookie",
            NotStorable::NoStore => "no-store",
            NotStorable::Private => "private",
            NotStorable::VaryStar => "vary-star",
            NotStorable::UnvariedCors => "cors-origin",
        }
    }
}

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

/// Decides whether a response may be stored (RFC 9111 §3) under the route's allowed statuses.
pub fn check_storable(
    status: u16,
    headers: &[(&[u8], &[u8])],
    allowed_statuses: &[u16],
) -> Result<ResponseInfo, NotStorable> {
    if !allowed_statuses.contains(&status) {
        return Err(NotStorable::Status);
    }
    let mut info = ResponseInfo::default();
    let mut cache_control: Vec<&[u8]> = Vec::new();
    let mut vary_origin = false;
    let mut acao_single_origin = false;
    for &(name, value) in headers {
        if name.eq_ignore_ascii_case(b"set-cookie") {
            return Err(NotStorable::SetCookie);
        } else if name.eq_ignore_ascii_case(b"cache-control") {
            cache_control.push(value);
        } else if name.eq_ignore_ascii_case(b"etag") {
            info.etag.get_or_insert_with(|| value.to_vec());
        } else if name.eq_ignore_ascii_case(b"vary") {
            info.has_vary = true;
            for item in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                if item == b"*" {
                    return Err(NotStorable::VaryStar);
                }
                vary_origin |= item.eq_ignore_ascii_case(b"origin");
            }
        } else if name.eq_ignore_ascii_case(b"access-control-allow-origin") {
            acao_single_origin = value.trim_ascii() != b"*";
        }
    }
    if acao_single_origin && !vary_origin {
        return Err(NotStorable::UnvariedCors);
    }
    if !cache_control.is_empty() {
        info.has_cache_control = true;
        let cc = CacheControl::parse_lines(cache_control.iter().copied());
        if cc.no_store {
            return Err(NotStorable::NoStore);
        }
        if cc.private {
            return Err(NotStorable::Private);
        }
    }
    Ok(info)
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

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u16] = &[200, 203, 204, 300, 301, 308];

    use crate::http::test_headers as h;

    #[test]
    fn default_statuses_rfc9111_3() {
        assert!(check_storable(200, &[], OK).is_ok());
        for s in [201, 206, 304, 404, 500, 503] {
            assert_eq!(check_storable(s, &[], OK), Err(NotStorable::Status));
        }
    }

    #[test]
    fn never_stored() {
        let cases = [
            (("set-cookie", "a=b"), NotStorable::SetCookie),
            (("cache-control", "no-store"), NotStorable::NoStore),
            (
                ("cache-control", "max-age=5, private"),
                NotStorable::Private,
            ),
            (("vary", "accept, *"), NotStorable::VaryStar),
            (
                ("access-control-allow-origin", "https://a.example"),
                NotStorable::UnvariedCors,
            ),
        ];
        for ((n, v), why) in cases {
            assert_eq!(check_storable(200, &h(&[(n, v)]), OK), Err(why), "{n}: {v}");
        }
    }

    #[test]
    fn cors_with_vary_origin_or_star_is_fine() {
        let hs = h(&[
            ("access-control-allow-origin", "https://a.example"),
            ("vary", "Origin"),
        ]);
        assert!(check_storable(200, &hs, OK).is_ok());
        assert!(check_storable(200, &h(&[("access-control-allow-origin", "*")]), OK).is_ok());
    }

    #[test]
    fn facts_are_collected() {
        let hs = h(&[
            ("etag", "\"x\""),
            ("cache-control", "max-age=3"),
            ("vary", "accept"),
        ]);
        let info = check_storable(200, &hs, OK).unwrap();
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
