//! What the request side decides: bypass, credentials, request directives, Vary values.
//!
//! Input is the ASGI header list (lower-cased names by the ASGI spec; compared
//! case-insensitively anyway, RFC 9110 §5.1).

use super::cache_control::CacheControl;
use super::freshness::RequestDirectives;

/// Why a request skips the cache entirely (no read, no write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bypass {
    /// A GET/HEAD with content: the content may change the answer but is not in the key
    /// (RFC 9110 §9.3.1: content on GET has no defined semantics).
    BodyPresent,
    /// Method-override or URL-rewrite headers: the app may route this request differently
    /// from what the method and path say.
    Override,
}

impl Bypass {
    /// Short reason, used in `Cache-Status: ...; detail=` and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Bypass::BodyPresent => "request-body",
            Bypass::Override => "method-override",
        }
    }
}

/// Headers that let a client change the method or URL the app sees.
const OVERRIDE_HEADERS: &[&[u8]] = &[
    b"x-http-method-override",
    b"x-http-method",
    b"x-method-override",
    b"x-original-url",
    b"x-rewrite-url",
];

/// Headers through which a proxy (or a client pretending to be one) tells the app another
/// host, scheme, port or prefix than the request's own (RFC 7239 `Forwarded`, and the
/// de-facto `X-Forwarded-*` family). An app, or a library in it, may build URLs and redirects
/// from them, so a response to a request carrying them must never answer a request without
/// them (web cache poisoning): they are part of the middleware's key when present.
pub const FORWARDING_HEADERS: &[&[u8]] = &[
    b"x-forwarded-host",
    b"x-host",
    b"x-forwarded-server",
    b"x-forwarded-scheme",
    b"x-forwarded-proto",
    b"x-forwarded-ssl",
    b"x-forwarded-port",
    b"x-forwarded-prefix",
    b"forwarded",
];

/// The forwarding headers present in a request, as `(index in FORWARDING_HEADERS, value)`,
/// all lines of one field combined (RFC 9110 §5.3). `Forwarded` contributes only its
/// `host`, `proto` and `by` parameters (RFC 7239 §5): its `for` names the client, which
/// would give every client its own entry without changing what the app builds.
pub fn forwarding_values(headers: &[(&[u8], &[u8])]) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    // The common case in one pass: no header starts like a forwarding one.
    let maybe = headers.iter().any(|(n, _)| {
        n.len() >= 6
            && (n[..2].eq_ignore_ascii_case(b"x-") || n[..6].eq_ignore_ascii_case(b"forwar"))
    });
    if !maybe {
        return out;
    }
    for (i, name) in FORWARDING_HEADERS.iter().enumerate() {
        let mut value: Option<Vec<u8>> = None;
        for &(n, v) in headers {
            if !n.eq_ignore_ascii_case(name) {
                continue;
            }
            let v = if *name == b"forwarded" {
                forwarded_origin_params(v)
            } else {
                v.to_vec()
            };
            let combined = value.get_or_insert_with(Vec::new);
            if !combined.is_empty() {
                combined.push(b',');
            }
            combined.extend_from_slice(&v);
        }
        if let Some(v) = value {
            out.push((i, v));
        }
    }
    out
}

/// The `host=`, `proto=` and `by=` pairs of a `Forwarded` field line, lower-cased names, in
/// order (RFC 7239 §4: `;`-separated pairs in `,`-separated elements).
fn forwarded_origin_params(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for element in line.split(|&b| b == b',') {
        for pair in element.split(|&b| b == b';') {
            let pair = crate::http::trim_ows(pair);
            let name = pair.split(|&b| b == b'=').next().unwrap_or_default();
            if [&b"host"[..], b"proto", b"by"]
                .iter()
                .any(|k| name.eq_ignore_ascii_case(k))
            {
                if !out.is_empty() {
                    out.push(b';');
                }
                out.extend_from_slice(pair);
            }
        }
        out.push(b',');
    }
    out
}

/// The request facts the cache needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo<'a> {
    /// Skip the cache entirely.
    pub bypass: Option<Bypass>,
    /// `Authorization` or `Cookie` present: a shared entry may not answer it (RFC 9111 §3.5).
    pub has_credentials: bool,
    /// Request `Cache-Control: no-store`: do not store the response (RFC 9111 §5.2.1.5).
    pub no_store: bool,
    /// The request's reuse directives: no-cache (or `Pragma: no-cache` without
    /// Cache-Control, RFC 9111 §5.4), max-age, min-fresh, max-stale, only-if-cached and
    /// stale-if-error (RFC 9111 §5.2.1, RFC 5861 §4). The same struct drives
    /// [`crate::http::freshness::reuse`] for the decorator and the middleware.
    pub directives: RequestDirectives,
    /// The `Host` field value, if any.
    pub host: Option<&'a [u8]>,
    /// The `If-None-Match` field lines.
    pub if_none_match: Vec<&'a [u8]>,
    /// The first `If-Modified-Since` field line (RFC 9110 §13.1.3).
    pub if_modified_since: Option<&'a [u8]>,
}

/// Reads the request headers once and collects what the cache needs.
pub fn analyze<'a>(headers: &[(&'a [u8], &'a [u8])]) -> RequestInfo<'a> {
    let mut info = RequestInfo::default();
    let mut cache_control: Vec<&[u8]> = Vec::new();
    let mut pragma_no_cache = false;
    for &(name, value) in headers {
        if name.eq_ignore_ascii_case(b"cache-control") {
            cache_control.push(value);
        } else if name.eq_ignore_ascii_case(b"authorization")
            || name.eq_ignore_ascii_case(b"cookie")
        {
            info.has_credentials = true;
        } else if name.eq_ignore_ascii_case(b"host") {
            info.host.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"if-none-match") {
            info.if_none_match.push(value);
        } else if name.eq_ignore_ascii_case(b"if-modified-since") {
            info.if_modified_since.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"pragma") {
            // RFC 9111 §5.4: only `no-cache` is defined, and only when Cache-Control is absent.
            pragma_no_cache |= value
                .split(|b| *b == b',')
                .any(|item| item.trim_ascii().eq_ignore_ascii_case(b"no-cache"));
        } else if name.eq_ignore_ascii_case(b"content-length") {
            if value.trim_ascii() != b"0" {
                info.bypass = Some(Bypass::BodyPresent);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            info.bypass = Some(Bypass::BodyPresent);
        } else if OVERRIDE_HEADERS
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
        {
            info.bypass.get_or_insert(Bypass::Override);
        }
    }
    if cache_control.is_empty() {
        info.directives.no_cache = pragma_no_cache;
    } else {
        let cc = CacheControl::parse_lines(cache_control.iter().copied());
        info.no_store = cc.no_store;
        info.directives = RequestDirectives::from_cache_control(&cc);
    }
    info
}

/// The value of a request header selected by Vary, all its lines combined in order
/// (RFC 9110 §5.3), or `None` when absent: an absent header is not the same as an empty one
/// (RFC 9111 §4.1).
pub fn vary_value(headers: &[(&[u8], &[u8])], name: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for &(n, v) in headers {
        if n.eq_ignore_ascii_case(name) {
            let buf = out.get_or_insert_with(Vec::new);
            if !buf.is_empty() {
                buf.extend_from_slice(b", ");
            }
            buf.extend_from_slice(v.trim_ascii());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::http::test_headers as h;

    #[test]
    fn credentials_are_detected_rfc9111_3_5() {
        assert!(analyze(&h(&[("authorization", "Bearer x")])).has_credentials);
        assert!(analyze(&h(&[("Cookie", "a=b")])).has_credentials);
        assert!(!analyze(&h(&[("accept", "*/*")])).has_credentials);
    }

    #[test]
    fn request_directives_rfc9111_5_2_1() {
        let i = analyze(&h(&[("cache-control", "no-store")]));
        assert!(i.no_store && !i.directives.no_cache);
        let i = analyze(&h(&[("cache-control", "max-age=0, NO-CACHE")]));
        assert!(i.directives.no_cache);
    }

    #[test]
    fn freshness_directives_rfc9111_5_2_1_1_3_7() {
        let i = analyze(&h(&[(
            "cache-control",
            "max-age=5, min-fresh=10, max-stale=7, only-if-cached",
        )]));
        let d = i.directives;
        assert_eq!(
            (d.max_age, d.min_fresh, d.only_if_cached),
            (Some(5), Some(10), true)
        );
        assert_eq!(
            d.max_stale,
            Some(crate::http::cache_control::MaxStale::Seconds(7))
        );
        let i = analyze(&h(&[("cache-control", "max-age=abc")]));
        assert_eq!(i.directives.max_age, None);
    }

    #[test]
    fn pragma_only_counts_without_cache_control_rfc9111_5_4() {
        assert!(analyze(&h(&[("pragma", "no-cache")])).directives.no_cache);
        assert!(
            !analyze(&h(&[
                ("pragma", "no-cache"),
                ("cache-control", "max-age=5")
            ]))
            .directives
            .no_cache
        );
    }

    #[test]
    fn body_and_overrides_bypass() {
        assert_eq!(
            analyze(&h(&[("content-length", "3")])).bypass,
            Some(Bypass::BodyPresent)
        );
        assert_eq!(analyze(&h(&[("content-length", "0")])).bypass, None);
        assert_eq!(
            analyze(&h(&[("transfer-encoding", "chunked")])).bypass,
            Some(Bypass::BodyPresent)
        );
        assert_eq!(
            analyze(&h(&[("x-http-method-override", "DELETE")])).bypass,
            Some(Bypass::Override)
        );
        assert_eq!(
            analyze(&h(&[("x-original-url", "/admin")])).bypass,
            Some(Bypass::Override)
        );
    }

    #[test]
    fn vary_values_combine_and_absent_differs_from_empty_rfc9111_4_1() {
        let hs = h(&[("accept", "a"), ("x", ""), ("Accept", " b ")]);
        assert_eq!(vary_value(&hs, b"accept"), Some(b"a, b".to_vec()));
        assert_eq!(vary_value(&hs, b"x"), Some(Vec::new()));
        assert_eq!(vary_value(&hs, b"missing"), None);
    }

    #[test]
    fn forwarding_headers_are_collected_and_forwarded_keeps_host_and_proto() {
        let hs = h(&[
            ("X-Forwarded-Host", "evil.example"),
            ("x-forwarded-host", "second"),
            ("forwarded", "for=1.2.3.4;host=evil.example;proto=http"),
            ("accept", "*/*"),
        ]);
        let got = forwarding_values(&hs);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (0, b"evil.example,second".to_vec()));
        let (i, v) = &got[1];
        assert_eq!(FORWARDING_HEADERS[*i], b"forwarded");
        assert!(!v.windows(7).any(|w| w == b"1.2.3.4"));
        assert!(v.windows(16).any(|w| w == b"host=evil.exampl"));
        assert!(forwarding_values(&h(&[("accept", "*/*")])).is_empty());
        // Every client behind one proxy shares a key: `for=` is not part of it.
        assert_eq!(
            forwarding_values(&h(&[("forwarded", "for=1.1.1.1;proto=https")])),
            forwarding_values(&h(&[("forwarded", "for=2.2.2.2;proto=https")]))
        );
    }

    #[test]
    fn junk_headers_do_not_panic() {
        let hs = h(&[("cache-control", "\u{0}\u{1},,=,max-age=\"")]);
        let _ = analyze(&hs);
        let bin: Vec<(&[u8], &[u8])> = vec![(b"\xff\xfe", b"\x00\x80")];
        let _ = analyze(&bin);
    }
}
