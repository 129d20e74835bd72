//! May this response be stored? The storability decision of RFC 9111 §3 for
//! the header-honouring (middleware) mode, with the stricter policies of
//! docs/http.md layered on top.
//!
//! Inputs are the request method and headers, the response status and
//! headers, and [`StoreSettings`]. Header names are compared
//! case-insensitively (RFC 9110 §5.1).

use super::cache_control::CacheControl;
use super::dates::unix_now;
use super::freshness::{has_explicit_freshness, is_heuristically_cacheable, Expires};
use super::response::is_hop_by_hop;
use super::vary::Vary;
use crate::http::trim_ows;

/// The statuses stored by default (docs/http.md): those RFC 9110 §15.1 makes
/// heuristically cacheable, minus 206 (never an entry), 404/405/410/414
/// (opt-in or not useful) and 501 (never a 5xx).
pub const DEFAULT_STATUSES: [u16; 6] = [200, 203, 204, 300, 301, 308];

/// How the storability decision is made.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreSettings {
    /// A shared cache (RFC 9111 §1): `private` forbids storing,
    /// `s-maxage` grants it, and requests with credentials are restricted
    /// (RFC 9111 §3.5). Default true.
    pub shared: bool,
    /// The statuses that may be stored (default [`DEFAULT_STATUSES`]). They
    /// are also the statuses whose caching rules this cache "understands"
    /// for `must-understand` (RFC 9111 §5.2.2.3). 206, 304 and 5xx are never
    /// stored even when listed (docs/http.md).
    pub statuses: Vec<u16>,
    /// Also store 404 and 410 (docs/http.md: only when asked). Default false.
    pub allow_not_found: bool,
    /// The largest body stored, in bytes; `None` for no limit. Checked
    /// against `Content-Length` here and against the real body with
    /// [`body_fits`]. Default 1 MiB.
    pub max_body_size: Option<u64>,
    /// The deployment or route opted in to storing responses to requests
    /// that carry `Authorization` or `Cookie`, when the response allows it
    /// (RFC 9111 §3.5, docs/http.md). Default false: such responses are never
    /// stored in a shared cache.
    pub honour_authorization_opt_in: bool,
    /// Store responses without explicit freshness when they qualify for
    /// heuristic freshness (RFC 9111 §3, §4.2.2). Default false (docs/http.md:
    /// no heuristic freshness by default).
    pub heuristic: bool,
    /// The caller declares the freshness lifetime itself (a `@cache(ttl=...)` route): that
    /// declaration is the explicit permission to store of RFC 9111 §3, so a response without
    /// `max-age`, `s-maxage` or `Expires` of its own is stored. Default false.
    pub declared_lifetime: bool,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            shared: true,
            statuses: DEFAULT_STATUSES.to_vec(),
            allow_not_found: false,
            max_body_size: Some(1024 * 1024),
            honour_authorization_opt_in: false,
            heuristic: false,
            declared_lifetime: false,
        }
    }
}

impl StoreSettings {
    /// Whether `status` may be stored under these settings: listed (or
    /// 404/410 with `allow_not_found`), final, and not 206, 304 or 5xx.
    pub fn status_allowed(&self, status: u16) -> bool {
        let listed = self.statuses.contains(&status)
            || (self.allow_not_found && matches!(status, 404 | 410));
        listed && (200..500).contains(&status) && !matches!(status, 206 | 304)
    }
}

/// Why a response may not be stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotStorableReason {
    /// The request method is not GET (RFC 9111 §3: the method must be
    /// understood and cacheable; docs/http.md caches GET only).
    Method,
    /// A HEAD response: never stored as an entry, but it may update the
    /// headers of a stored GET response (RFC 9111 §4.3.5).
    HeadOnly,
    /// 206 or 304: never stored as an entry (docs/http.md; RFC 9111 §3.3, §3.4
    /// and §4.3.4 only let them complete or update a stored response).
    PartialOrNotModified,
    /// A status that is not final or not allowed by the settings (RFC 9111
    /// §3: the status must be final and understood), including with
    /// `must-understand` a status whose rules the cache does not implement
    /// (RFC 9111 §5.2.2.3).
    Status,
    /// Request `Cache-Control: no-store` (RFC 9111 §5.2.1.5).
    RequestNoStore,
    /// Response `Cache-Control: no-store` (RFC 9111 §5.2.2.5).
    NoStore,
    /// Response `Cache-Control: private` in a shared cache (RFC 9111
    /// §5.2.2.7).
    Private,
    /// The request carried `Authorization` (or `Cookie`, docs/http.md) and the
    /// response did not allow a shared cache to store it, or the deployment
    /// did not opt in (RFC 9111 §3.5).
    Credentials,
    /// No explicit permission to store: no `max-age`, `s-maxage` (shared)
    /// or `Expires`, and heuristic freshness is off or does not apply
    /// (RFC 9111 §3, docs/http.md).
    NoExplicitFreshness,
    /// `Set-Cookie`: the response belongs to one client (docs/http.md; stricter
    /// than RFC 9111, which lets caches store it).
    SetCookie,
    /// `Vary: *`, or a Vary member that is not a field name: it can never
    /// match a later request (RFC 9111 §4.1).
    VaryStar,
    /// An `Access-Control-Allow-Origin` naming one origin without
    /// `Vary: Origin` would be served to other origins (docs/http.md).
    UnvariedCors,
    /// `Content-Length` above [`StoreSettings::max_body_size`] (docs/http.md).
    BodyTooLarge,
    /// `Content-Type: text/event-stream`: a live, unbounded stream (WHATWG HTML, server-sent
    /// events), whose replay would hand a later client events that are over; never complete
    /// (RFC 9111 §3.3), so never stored, whatever its Cache-Control says.
    EventStream,
    /// A field name or value holding CR, LF or NUL (RFC 9110 §5.5: invalid and dangerous).
    /// Stored and replayed, it could split a response downstream.
    InvalidField,
}

impl NotStorableReason {
    /// Short reason, for `Cache-Status: ...; detail=` (RFC 9211 §2.8) and
    /// logs.
    pub fn as_str(self) -> &'static str {
        match self {
            NotStorableReason::Method => "method",
            NotStorableReason::HeadOnly => "head",
            NotStorableReason::PartialOrNotModified => "partial-or-304",
            NotStorableReason::Status => "status",
            NotStorableReason::RequestNoStore => "request-no-store",
            NotStorableReason::NoStore => "no-store",
            NotStorableReason::Private => "private",
            NotStorableReason::Credentials => "credentials",
            NotStorableReason::NoExplicitFreshness => "no-freshness",
            NotStorableReason::SetCookie => "set-cookie",
            NotStorableReason::VaryStar => "vary-star",
            NotStorableReason::UnvariedCors => "cors-origin",
            NotStorableReason::BodyTooLarge => "too-large",
            NotStorableReason::EventStream => "streaming",
            NotStorableReason::InvalidField => "invalid-field",
        }
    }
}

/// What the cache learned while deciding to store a response; enough to
/// build the entry without parsing the headers again.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreDecision {
    /// The response's Cache-Control, all lines combined (RFC 9111 §5.2).
    pub cache_control: CacheControl,
    /// The response's Vary names (RFC 9111 §4.1), never [`Vary::Any`].
    pub vary: Vary,
    /// The response's Expires (RFC 9111 §5.3), if present.
    pub expires: Option<Expires>,
    /// True when stored on explicit freshness (`max-age`, `s-maxage` in a
    /// shared cache, `Expires`); false when stored only because heuristic
    /// freshness is enabled and applies (RFC 9111 §4.2.2).
    pub explicit_freshness: bool,
    /// The request carried `Authorization` or `Cookie` and the response was
    /// stored under the opt-in of RFC 9111 §3.5. The entry must then only
    /// answer requests as the response allows (for `must-revalidate` or
    /// `s-maxage` without `public`, only after revalidation when stale).
    pub credentialed: bool,
    /// `must-understand` was present and the status is understood, so a
    /// `no-store` beside it was ignored (RFC 9111 §5.2.2.3).
    pub must_understand_override: bool,
}

/// The field lines named `name` in a header list.
fn lines<'a>(
    headers: &'a [(&'a [u8], &'a [u8])],
    name: &'static [u8],
) -> impl Iterator<Item = &'a [u8]> {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, v)| v)
}

fn has(headers: &[(&[u8], &[u8])], name: &'static [u8]) -> bool {
    lines(headers, name).next().is_some()
}

/// The storability decision of RFC 9111 §3 in header-honouring mode.
/// Every rule, in the order it is checked:
///
/// 1. the method is GET; a HEAD response only updates a stored GET
///    (RFC 9111 §3, §4.3.5; docs/http.md). Method names are case-sensitive
///    (RFC 9110 §9.1);
/// 2. 206 and 304 are never stored as entries (docs/http.md, RFC 9111 §3.3,
///    §3.4, §4.3.4), other statuses must be final and allowed by the settings,
///    which are also the statuses the cache understands (RFC 9111 §3);
/// 3. request `no-store` (RFC 9111 §5.2.1.5);
/// 4. response `no-store` (RFC 9111 §5.2.2.5), ignored when
///    `must-understand` is present and the status is understood
///    (RFC 9111 §5.2.2.3; the status check above already refused every
///    status not understood);
/// 5. `private` in a shared cache (RFC 9111 §5.2.2.7);
/// 6. `Set-Cookie` (docs/http.md, stricter than RFC 9111);
/// 7. `Vary: *` or an unusable Vary member (RFC 9111 §4.1), and an
///    `Access-Control-Allow-Origin` for one origin without `Vary: Origin`
///    (docs/http.md);
/// 8. in a shared cache, a request with `Authorization` (RFC 9111 §3.5) or
///    `Cookie` (docs/http.md) only with `public`, `s-maxage` or
///    `must-revalidate` in the response, and only with
///    [`StoreSettings::honour_authorization_opt_in`];
/// 9. explicit permission to store (RFC 9111 §3): `max-age`, `s-maxage`
///    (shared) or `Expires` (any value: an invalid one is stored as already
///    expired, RFC 9111 §5.3). With [`StoreSettings::heuristic`], a
///    heuristically cacheable status (RFC 9110 §15.1) or `public`
///    (or `private` in a private cache) also qualifies (RFC 9111 §3,
///    §4.2.2);
/// 10. `Content-Length` within [`StoreSettings::max_body_size`] (docs/http.md).
///
/// Where the RFC leaves room: RFC 9111 §3 lists `public` alone as
/// permission to store, but storing is only ever allowed, never required
/// ("MAY"), and without heuristic freshness such a response is stale on
/// arrival. docs/http.md asks for explicit freshness, so `public` alone is
/// refused ([`NotStorableReason::NoExplicitFreshness`]) unless heuristics
/// are on. `no-cache` (response) does not prevent storing: the entry is
/// then revalidated on every use (RFC 9111 §5.2.2.4).
pub fn decide(
    method: &[u8],
    request_headers: &[(&[u8], &[u8])],
    status: u16,
    response_headers: &[(&[u8], &[u8])],
    settings: &StoreSettings,
) -> Result<StoreDecision, NotStorableReason> {
    match method {
        b"GET" => {}
        b"HEAD" => return Err(NotStorableReason::HeadOnly),
        _ => return Err(NotStorableReason::Method),
    }
    if matches!(status, 206 | 304) {
        return Err(NotStorableReason::PartialOrNotModified);
    }
    if !settings.status_allowed(status) {
        return Err(NotStorableReason::Status);
    }
    let request_cc = CacheControl::parse_lines(lines(request_headers, b"cache-control"));
    if request_cc.no_store {
        return Err(NotStorableReason::RequestNoStore);
    }
    let cc = CacheControl::parse_lines(lines(response_headers, b"cache-control"));
    // Only statuses the cache understands reach this point.
    let must_understand_override = cc.must_understand && cc.no_store;
    if cc.no_store && !cc.must_understand {
        return Err(NotStorableReason::NoStore);
    }
    if settings.shared && cc.private {
        return Err(NotStorableReason::Private);
    }
    if has(response_headers, b"set-cookie") {
        return Err(NotStorableReason::SetCookie);
    }
    if response_headers
        .iter()
        .any(|(n, v)| has_forbidden_octet(n) || has_forbidden_octet(v))
    {
        return Err(NotStorableReason::InvalidField);
    }
    if lines(response_headers, b"content-type").any(is_event_stream) {
        return Err(NotStorableReason::EventStream);
    }
    let vary = Vary::from_headers(response_headers);
    if vary.is_any() {
        return Err(NotStorableReason::VaryStar);
    }
    let single_origin =
        lines(response_headers, b"access-control-allow-origin").any(|v| trim_ows(v) != b"*");
    if single_origin && !vary.names().iter().any(|n| n == "origin") {
        return Err(NotStorableReason::UnvariedCors);
    }
    let credentialed = has(request_headers, b"authorization") || has(request_headers, b"cookie");
    if settings.shared && credentialed {
        let allowed = cc.public || cc.must_revalidate || cc.s_maxage.is_some();
        if !(allowed && settings.honour_authorization_opt_in) {
            return Err(NotStorableReason::Credentials);
        }
    }
    // The clock only anchors two-digit rfc850 years (RFC 9110 §5.6.7).
    let expires = Expires::parse_lines(lines(response_headers, b"expires"), unix_now());
    let explicit_freshness = has_explicit_freshness(&cc, expires, settings.shared);
    if !explicit_freshness && !settings.declared_lifetime {
        let heuristic = settings.heuristic
            && (is_heuristically_cacheable(status)
                || cc.public
                || (!settings.shared && cc.private));
        if !heuristic {
            return Err(NotStorableReason::NoExplicitFreshness);
        }
    }
    if let Some(max) = settings.max_body_size {
        let too_large = lines(response_headers, b"content-length")
            .filter_map(|v| std::str::from_utf8(trim_ows(v)).ok()?.parse::<u64>().ok())
            .any(|len| len > max);
        if too_large {
            return Err(NotStorableReason::BodyTooLarge);
        }
    }
    Ok(StoreDecision {
        cache_control: cc,
        vary,
        expires,
        explicit_freshness,
        credentialed: credentialed && settings.shared,
        must_understand_override,
    })
}

/// CR, LF or NUL anywhere in a field name or value (RFC 9110 §5.5).
fn has_forbidden_octet(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0))
}

/// A `Content-Type` of `text/event-stream` (case-insensitive, parameters ignored; RFC 9110
/// §8.3.1).
fn is_event_stream(value: &[u8]) -> bool {
    let media = value.split(|&b| b == b';').next().unwrap_or_default();
    trim_ows(media).eq_ignore_ascii_case(b"text/event-stream")
}

/// Whether a body of `len` bytes fits [`StoreSettings::max_body_size`]
/// (docs/http.md: never store a body over the size limit).
pub fn body_fits(len: u64, settings: &StoreSettings) -> bool {
    settings.max_body_size.is_none_or(|max| len <= max)
}

/// The response header lines a cache may store (RFC 9111 §3.1): all but the
/// hop-by-hop fields (RFC 9110 §7.6.1; `Connection`, `Keep-Alive`,
/// `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`),
/// the fields named in `Connection` (RFC 9110 §7.6.1), and the proxy
/// authentication fields (`Proxy-Authenticate`, `Proxy-Authentication-Info`,
/// `Proxy-Authorization`; RFC 9111 §3.1). Order and repeated lines are
/// kept.
pub fn headers_to_store<'a>(headers: &[(&'a [u8], &'a [u8])]) -> Vec<(&'a [u8], &'a [u8])> {
    let nominated = connection_options(headers);
    headers
        .iter()
        .filter(|(name, _)| is_storable_field(name, &nominated))
        .copied()
        .collect()
}

/// The field names a `Connection` header lists (its connection options, RFC 9110 §7.6.1).
pub fn connection_options<'a>(headers: &'a [(&'a [u8], &'a [u8])]) -> Vec<&'a [u8]> {
    lines(headers, b"connection")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(trim_ows)
        .filter(|n| !n.is_empty())
        .collect()
}

/// Whether a cache may store the field `name` of a response whose `Connection` header lists
/// `nominated` ([`headers_to_store`]'s rule for one field).
pub fn is_storable_field(name: &[u8], nominated: &[&[u8]]) -> bool {
    !is_hop_by_hop(name)
        && !name.eq_ignore_ascii_case(b"proxy-authentication-info")
        && !nominated.iter().any(|n| name.eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_headers as h;
    use proptest::prelude::*;

    fn d(status: u16, resp: &[(&str, &str)]) -> Result<StoreDecision, NotStorableReason> {
        decide(b"GET", &[], status, &h(resp), &StoreSettings::default())
    }

    fn reason(status: u16, resp: &[(&str, &str)]) -> Option<NotStorableReason> {
        d(status, resp).err()
    }

    const FRESH: (&str, &str) = ("cache-control", "max-age=60");

    #[test]
    fn event_streams_are_never_stored_whatever_cache_control_says() {
        for ct in ["text/event-stream", "Text/Event-Stream; charset=utf-8"] {
            assert_eq!(
                reason(200, &[FRESH, ("content-type", ct)]),
                Some(NotStorableReason::EventStream)
            );
        }
        assert!(d(200, &[FRESH, ("content-type", "text/plain")]).is_ok());
    }

    #[test]
    fn rfc9110_5_5_cr_lf_nul_in_a_field_are_never_stored() {
        for bad in ["a\r\nSet-Cookie: x=y", "a\nb", "a\0b"] {
            assert_eq!(
                reason(200, &[FRESH, ("x-note", bad)]),
                Some(NotStorableReason::InvalidField)
            );
            assert_eq!(
                reason(200, &[FRESH, (bad, "v")]),
                Some(NotStorableReason::InvalidField)
            );
        }
    }

    #[test]
    fn rfc9111_3_only_get_is_stored_head_updates() {
        let s = StoreSettings::default();
        let resp = h(&[FRESH]);
        assert!(decide(b"GET", &[], 200, &resp, &s).is_ok());
        assert_eq!(
            decide(b"HEAD", &[], 200, &resp, &s).err(),
            Some(NotStorableReason::HeadOnly)
        );
        for m in [
            &b"POST"[..],
            b"PUT",
            b"DELETE",
            b"OPTIONS",
            b"get",
            b"M-SEARCH",
            b"",
        ] {
            assert_eq!(
                decide(m, &[], 200, &resp, &s).err(),
                Some(NotStorableReason::Method)
            );
        }
    }

    #[test]
    fn rfc9111_3_statuses() {
        for ok in DEFAULT_STATUSES {
            assert!(d(ok, &[FRESH]).is_ok(), "{ok}");
        }
        for no in [
            100, 101, 199, 201, 202, 299, 302, 303, 307, 400, 404, 410, 499, 500, 503, 599, 999, 0,
        ] {
            assert_eq!(
                reason(no, &[FRESH]),
                Some(NotStorableReason::Status),
                "{no}"
            );
        }
        for never in [206, 304] {
            assert_eq!(
                reason(never, &[FRESH]),
                Some(NotStorableReason::PartialOrNotModified)
            );
        }
        let nf = StoreSettings {
            allow_not_found: true,
            ..StoreSettings::default()
        };
        for s in [404, 410] {
            assert!(decide(b"GET", &[], s, &h(&[FRESH]), &nf).is_ok());
        }
        // 5xx, 206 and 304 never, even when listed.
        let listed = StoreSettings {
            statuses: vec![200, 206, 304, 500, 503, 302, 199],
            ..StoreSettings::default()
        };
        assert!(decide(b"GET", &[], 302, &h(&[FRESH]), &listed).is_ok());
        for s in [206, 304, 500, 503, 199] {
            assert!(
                decide(b"GET", &[], s, &h(&[FRESH]), &listed).is_err(),
                "{s}"
            );
            assert!(!listed.status_allowed(s));
        }
    }

    #[test]
    fn rfc9111_5_2_1_5_request_no_store() {
        let req = h(&[("Cache-Control", "No-Store")]);
        let r = decide(b"GET", &req, 200, &h(&[FRESH]), &StoreSettings::default());
        assert_eq!(r.err(), Some(NotStorableReason::RequestNoStore));
    }

    #[test]
    fn rfc9111_5_2_2_5_response_no_store() {
        assert_eq!(
            reason(200, &[("cache-control", "no-store")]),
            Some(NotStorableReason::NoStore)
        );
        assert_eq!(
            reason(200, &[("cache-control", "No-StOrE")]),
            Some(NotStorableReason::NoStore)
        );
        assert_eq!(
            reason(
                200,
                &[
                    ("cache-control", "max-age=10000, no-store"),
                    ("expires", "Thu, 01 Jan 2099 00:00:00 GMT")
                ]
            ),
            Some(NotStorableReason::NoStore)
        );
        assert_eq!(
            reason(
                200,
                &[
                    ("cache-control", "max-age=60"),
                    ("cache-control", "no-store")
                ]
            ),
            Some(NotStorableReason::NoStore)
        );
    }

    #[test]
    fn rfc9111_5_2_2_3_must_understand_overrides_no_store_for_understood_status() {
        let mu = [("cache-control", "max-age=60, must-understand, no-store")];
        let ok = d(200, &mu);
        assert!(ok.as_ref().is_ok_and(|x| x.must_understand_override));
        // A status the cache does not implement stays unstored.
        assert_eq!(reason(299, &mu), Some(NotStorableReason::Status));
        assert_eq!(reason(500, &mu), Some(NotStorableReason::Status));
        // must-understand does not lift private or the need for freshness.
        assert_eq!(
            reason(
                200,
                &[(
                    "cache-control",
                    "must-understand, no-store, private, max-age=5"
                )]
            ),
            Some(NotStorableReason::Private)
        );
        assert_eq!(
            reason(200, &[("cache-control", "must-understand, no-store")]),
            Some(NotStorableReason::NoExplicitFreshness)
        );
        assert!(d(200, &[("cache-control", "max-age=5, must-understand")])
            .is_ok_and(|x| !x.must_understand_override));
    }

    #[test]
    fn rfc9111_5_2_2_7_private_in_shared_cache_only() {
        let p = [("cache-control", "private, max-age=3600")];
        assert_eq!(reason(200, &p), Some(NotStorableReason::Private));
        assert_eq!(
            reason(
                200,
                &[("cache-control", "private=\"set-cookie\", max-age=5")]
            ),
            Some(NotStorableReason::Private)
        );
        let private = StoreSettings {
            shared: false,
            ..StoreSettings::default()
        };
        assert!(decide(b"GET", &[], 200, &h(&p), &private).is_ok());
    }

    #[test]
    fn set_cookie_never_stored_http_md() {
        assert_eq!(
            reason(200, &[FRESH, ("Set-Cookie", "a=b")]),
            Some(NotStorableReason::SetCookie)
        );
        assert_eq!(
            reason(
                200,
                &[("cache-control", "public, max-age=60"), ("set-cookie", "")]
            ),
            Some(NotStorableReason::SetCookie)
        );
    }

    #[test]
    fn rfc9111_4_1_vary_star_and_names() {
        for v in ["*", "*, *", ", *", "Foo, *", "a b"] {
            assert_eq!(
                reason(200, &[FRESH, ("vary", v)]),
                Some(NotStorableReason::VaryStar),
                "{v}"
            );
        }
        assert_eq!(
            reason(200, &[FRESH, ("vary", ""), ("vary", "*")]),
            Some(NotStorableReason::VaryStar)
        );
        let ok = d(
            200,
            &[
                FRESH,
                ("Vary", "Accept-Encoding"),
                ("vary", "Foo, accept-encoding"),
            ],
        );
        assert_eq!(
            ok.map(|x| x.vary.to_header()),
            Ok("accept-encoding, foo".to_owned())
        );
    }

    #[test]
    fn cors_single_origin_needs_vary_origin_http_md() {
        let acao = ("access-control-allow-origin", "https://a.example");
        assert_eq!(
            reason(200, &[FRESH, acao]),
            Some(NotStorableReason::UnvariedCors)
        );
        assert!(d(200, &[FRESH, acao, ("vary", "Accept, ORIGIN")]).is_ok());
        assert!(d(200, &[FRESH, ("access-control-allow-origin", " * ")]).is_ok());
        assert_eq!(
            reason(200, &[FRESH, ("access-control-allow-origin", "null")]),
            Some(NotStorableReason::UnvariedCors)
        );
    }

    #[test]
    fn rfc9111_3_5_authorization_needs_response_permission_and_opt_in() {
        let auth = h(&[("Authorization", "FOO")]);
        let cookie = h(&[("cookie", "session=1")]);
        let default = StoreSettings::default();
        let opted = StoreSettings {
            honour_authorization_opt_in: true,
            ..StoreSettings::default()
        };
        let run = |req: &[(&[u8], &[u8])], resp: &[(&str, &str)], s: &StoreSettings| {
            decide(b"GET", req, 200, &h(resp), s)
        };
        let expires = [
            ("expires", "Thu, 01 Jan 2099 00:00:00 GMT"),
            ("date", "Thu, 01 Jan 2026 00:00:00 GMT"),
        ];
        assert_eq!(
            run(&auth, &expires, &opted).err(),
            Some(NotStorableReason::Credentials)
        );
        assert_eq!(
            run(&auth, &[FRESH], &opted).err(),
            Some(NotStorableReason::Credentials)
        );
        for allowed in [
            "max-age=3600, public",
            "max-age=3600, must-revalidate",
            "s-maxage=3600",
        ] {
            let resp = [("cache-control", allowed)];
            assert_eq!(
                run(&auth, &resp, &default).err(),
                Some(NotStorableReason::Credentials),
                "{allowed}"
            );
            assert!(
                run(&auth, &resp, &opted).is_ok_and(|x| x.credentialed),
                "{allowed}"
            );
            assert_eq!(
                run(&cookie, &resp, &default).err(),
                Some(NotStorableReason::Credentials)
            );
            assert!(run(&cookie, &resp, &opted).is_ok());
        }
        // A private cache may store them (RFC 9111 §3.5 is about shared caches).
        let private = StoreSettings {
            shared: false,
            ..StoreSettings::default()
        };
        assert!(run(&auth, &[FRESH], &private).is_ok_and(|x| !x.credentialed));
        assert!(run(&[], &[FRESH], &default).is_ok_and(|x| !x.credentialed));
    }

    #[test]
    fn rfc9111_3_explicit_permission_to_store() {
        assert!(d(200, &[FRESH]).is_ok_and(|x| x.explicit_freshness));
        assert!(d(200, &[("cache-control", "s-maxage=60")]).is_ok());
        assert!(d(200, &[("expires", "Thu, 01 Jan 2099 00:00:00 GMT")]).is_ok());
        // An invalid Expires is still explicit: stored as already expired.
        assert!(d(200, &[("expires", "0")]).is_ok_and(|x| x.expires == Some(Expires::Invalid)));
        // max-age=0 is explicit (store, revalidate on use); no-cache alone is not.
        assert!(d(200, &[("cache-control", "max-age=0, must-revalidate")]).is_ok());
        assert!(d(200, &[("cache-control", "no-cache, max-age=60")]).is_ok());
        for none in [
            &[][..],
            &[("cache-control", "public")],
            &[("cache-control", "no-cache")],
            &[("cache-control", "max-age=abc")],
            &[("last-modified", "Thu, 01 Jan 2000 00:00:00 GMT")],
        ] {
            assert_eq!(
                reason(200, none),
                Some(NotStorableReason::NoExplicitFreshness),
                "{none:?}"
            );
        }
        // s-maxage is no permission in a private cache.
        let private = StoreSettings {
            shared: false,
            ..StoreSettings::default()
        };
        let r = decide(
            b"GET",
            &[],
            200,
            &h(&[("cache-control", "s-maxage=60")]),
            &private,
        );
        assert_eq!(r.err(), Some(NotStorableReason::NoExplicitFreshness));
    }

    #[test]
    fn rfc9111_3_a_declared_lifetime_is_the_permission_decorator_mode() {
        // `@cache(ttl=...)`: the route declares the lifetime, so a bare response is stored;
        // every other rule is the middleware's.
        let route = StoreSettings {
            declared_lifetime: true,
            max_body_size: None,
            ..StoreSettings::default()
        };
        let run =
            |status: u16, resp: &[(&str, &str)]| decide(b"GET", &[], status, &h(resp), &route);
        assert!(run(200, &[]).is_ok_and(|x| !x.explicit_freshness));
        for (status, resp, why) in [
            (500, &[][..], NotStorableReason::Status),
            (206, &[], NotStorableReason::PartialOrNotModified),
            (200, &[("set-cookie", "a=b")], NotStorableReason::SetCookie),
            (
                200,
                &[("cache-control", "no-store")],
                NotStorableReason::NoStore,
            ),
            (
                200,
                &[("cache-control", "max-age=5, private")],
                NotStorableReason::Private,
            ),
            (200, &[("vary", "accept, *")], NotStorableReason::VaryStar),
            (
                200,
                &[("access-control-allow-origin", "https://a.example")],
                NotStorableReason::UnvariedCors,
            ),
        ] {
            assert_eq!(run(status, resp).err(), Some(why), "{status} {resp:?}");
        }
    }

    #[test]
    fn rfc9111_4_2_2_heuristic_permission_only_when_enabled() {
        let heur = StoreSettings {
            heuristic: true,
            statuses: vec![200, 302],
            ..StoreSettings::default()
        };
        let run = |status: u16, resp: &[(&str, &str)], s: &StoreSettings| {
            decide(b"GET", &[], status, &h(resp), s)
        };
        assert!(run(200, &[], &heur).is_ok_and(|x| !x.explicit_freshness));
        // 302 is not heuristically cacheable, unless public.
        assert_eq!(
            run(302, &[], &heur).err(),
            Some(NotStorableReason::NoExplicitFreshness)
        );
        assert!(run(302, &[("cache-control", "public")], &heur).is_ok());
        let private = StoreSettings {
            shared: false,
            ..heur.clone()
        };
        assert!(run(302, &[("cache-control", "private")], &private).is_ok());
    }

    #[test]
    fn body_size_limit_http_md() {
        assert_eq!(
            reason(200, &[FRESH, ("content-length", "1048577")]),
            Some(NotStorableReason::BodyTooLarge)
        );
        assert!(d(200, &[FRESH, ("content-length", "1048576")]).is_ok());
        assert!(d(200, &[FRESH, ("content-length", "junk")]).is_ok());
        let s = StoreSettings::default();
        assert!(body_fits(1024 * 1024, &s) && !body_fits(1024 * 1024 + 1, &s));
        let unlimited = StoreSettings {
            max_body_size: None,
            ..StoreSettings::default()
        };
        assert!(body_fits(u64::MAX, &unlimited));
        assert!(decide(
            b"GET",
            &[],
            200,
            &h(&[FRESH, ("content-length", "99999999999")]),
            &unlimited
        )
        .is_ok());
    }

    #[test]
    fn decision_carries_parsed_facts() {
        let x = d(
            200,
            &[
                ("Cache-Control", "max-age=5"),
                ("cache-control", "stale-if-error=9"),
                ("expires", "0"),
            ],
        );
        let x = x.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(x.cache_control.max_age, Some(5));
        assert_eq!(x.cache_control.stale_if_error, Some(9));
        assert_eq!(x.expires, Some(Expires::Invalid));
        assert_eq!(x.vary, Vary::Fields(Vec::new()));
        assert!(x.explicit_freshness && !x.credentialed && !x.must_understand_override);
        assert_eq!(NotStorableReason::VaryStar.as_str(), "vary-star");
    }

    #[test]
    fn rfc9111_3_1_hop_by_hop_and_connection_fields_not_stored() {
        let hs = h(&[
            ("content-type", "text/plain"),
            ("Connection", "close, X-Secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("Transfer-Encoding", "chunked"),
            ("proxy-authenticate", "Basic"),
            ("Proxy-Authentication-Info", "x"),
            ("upgrade", "h2c"),
            ("x-other", "a"),
            ("x-other", "b"),
        ]);
        let kept: Vec<(String, String)> = headers_to_store(&hs)
            .iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("content-type", "text/plain"),
            ("x-other", "a"),
            ("x-other", "b"),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(kept, want);
    }

    proptest! {
        #[test]
        fn decide_never_panics(
            method in prop_oneof![Just("GET".to_owned()), Just("HEAD".to_owned()), "[A-Z]{0,6}"],
            status in any::<u16>(),
            req in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..16), proptest::collection::vec(any::<u8>(), 0..24)), 0..4),
            resp in proptest::collection::vec((
                prop_oneof![
                    Just(b"cache-control".to_vec()), Just(b"vary".to_vec()), Just(b"expires".to_vec()),
                    Just(b"content-length".to_vec()), Just(b"set-cookie".to_vec()), Just(b"connection".to_vec()),
                    proptest::collection::vec(any::<u8>(), 0..12),
                ],
                proptest::collection::vec(any::<u8>(), 0..32),
            ), 0..6),
            shared in any::<bool>(), heuristic in any::<bool>(), opt_in in any::<bool>(),
        ) {
            let req: Vec<(&[u8], &[u8])> = req.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect();
            let resp: Vec<(&[u8], &[u8])> = resp.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect();
            let s = StoreSettings { shared, heuristic, honour_authorization_opt_in: opt_in, ..StoreSettings::default() };
            if let Ok(x) = decide(method.as_bytes(), &req, status, &resp, &s) {
                prop_assert_eq!(method.as_str(), "GET");
                prop_assert!(s.status_allowed(status));
                prop_assert!(!x.vary.is_any());
                prop_assert!(!(shared && x.cache_control.private));
                prop_assert!(!x.cache_control.no_store || x.cache_control.must_understand);
            }
            let kept = headers_to_store(&resp);
            prop_assert!(kept.len() <= resp.len());
            prop_assert!(kept.iter().all(|(n, _)| !is_hop_by_hop(n)));
        }
    }
}
