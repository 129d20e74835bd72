//! One reply for both ways in: what the cache sends for a stored response (a hit, a stale
//! answer, the entry a miss just stored), for a response it passes on without storing, and for
//! `only-if-cached` with nothing stored. The decorator's `RouteCache` and the middleware's
//! `MiddlewareEngine` decide *when* to reply; this module decides *what*: the status (200 or
//! 304, RFC 9110 §13.1.2, §13.1.3, §13.2.2, RFC 9111 §4.3.2), which stored fields go out (RFC
//! 9110 §15.4.5 for a 304), whether the body does (RFC 9110 §9.3.2: none for HEAD), and the
//! fields the cache adds: the ones kept aside from the stored header list, `Age` (RFC 9111
//! §5.1), the HIT/MISS/STALE label and `Cache-Status` (RFC 9211).
//!
//! A [`Reply`] holds no bytes of the stored response: the binding layer walks the stored
//! fields (Python objects, shared between entries) asking [`Reply::keeps`] (a 200 keeps them
//! all), then writes the fields of [`Reply::try_for_each_added`] after them.

use super::cache_status::{CacheStatus, Forward};
use super::conditional::if_none_match_hits;
use super::last_modified::if_modified_since_hits;
use super::response::allowed_in_304;

/// The outcome label sent in the field named by `header_name` (`X-Cache` by default), for users
/// coming from the other libraries (RFC 9211 `Cache-Status` always goes with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// Answered from a fresh stored response.
    Hit,
    /// Answered by the app.
    Miss,
    /// Answered from a stale stored response.
    Stale,
    /// Passed to the app without the cache.
    Bypass,
}

impl Label {
    /// The field value.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Label::Hit => b"HIT",
            Label::Miss => b"MISS",
            Label::Stale => b"STALE",
            Label::Bypass => b"BYPASS",
        }
    }
}

/// The fields this cache writes on its replies: the label (lower-case name), `Cache-Status`
/// (RFC 9211) and `Age` (RFC 9111 §5.1). A copy of one from a handler, an app or an entry is
/// stale by the time it would go out again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnFields<'a> {
    /// The label's field name, lower-case.
    pub label: &'a [u8],
}

impl OwnFields<'_> {
    /// The label or `Cache-Status`: the fields that name this cache's outcome.
    pub fn names_outcome(&self, name: &[u8]) -> bool {
        name.eq_ignore_ascii_case(self.label) || name.eq_ignore_ascii_case(b"cache-status")
    }

    /// Any field this cache writes itself: the outcome fields and `Age`.
    pub fn is_own(&self, name: &[u8]) -> bool {
        name.eq_ignore_ascii_case(b"age") || self.names_outcome(name)
    }
}

/// What a stored response brings to a reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredResponse<'a> {
    /// Its status.
    pub status: u16,
    /// Its entity tag, compared with If-None-Match (RFC 9110 §13.1.2); None or empty when it
    /// has none.
    pub etag: Option<&'a str>,
    /// Its Last-Modified, else its Date (Unix seconds), compared with If-Modified-Since
    /// (RFC 9110 §13.1.3, RFC 9111 §4.3.2).
    pub modified: Option<i64>,
    /// Fields the store keeps out of the stored header list (so that one list is shared by
    /// many entries) and writes back after it.
    pub set_aside: SetAside<'a>,
}

/// The fields an entry keeps beside its shared header list (see [`StoredResponse`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAside<'a> {
    /// `Content-Length`: the body's length (it matched when the entry was stored).
    pub content_length: Option<usize>,
    /// `Last-Modified` (Unix seconds), formatted as an IMF-fixdate (RFC 9110 §5.6.7).
    pub last_modified: Option<i64>,
    /// `ETag`.
    pub etag: Option<&'a str>,
}

/// The request's side of a reply: its method and its conditionals (RFC 9110 §13.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Conditions<'a> {
    /// The request is HEAD: the reply has no body (RFC 9110 §9.3.2).
    pub head: bool,
    /// Its If-None-Match field lines.
    pub if_none_match: &'a [Vec<u8>],
    /// Its If-Modified-Since field value (the first line).
    pub if_modified_since: Option<&'a [u8]>,
}

/// Which fields of the base list (the stored response's, or the app's response passed on)
/// go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep<'a> {
    /// All of them.
    All,
    /// Those a 304 carries from the 200 it stands for (RFC 9110 §15.4.5).
    NotModified,
    /// All but the outcome fields of this cache (a new label follows), and its `Age` too
    /// when `age` (a handler's copy); an app's `Age` from a cache behind this one stays.
    NotOwn {
        /// The cache's own fields.
        own: OwnFields<'a>,
        /// Drop `Age` too.
        age: bool,
    },
}

/// A field the cache writes after the base list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field<'a> {
    /// `Content-Length` of the stored body.
    ContentLength(usize),
    /// `Last-Modified` (Unix seconds).
    LastModified(i64),
    /// `ETag`.
    ETag(&'a str),
    /// `Age`, in whole seconds (RFC 9111 §5.1).
    Age(u64),
    /// The outcome label, in the field named `header_name`.
    Label(Label),
    /// This cache's `Cache-Status` member (RFC 9211).
    CacheStatus(CacheStatus<'a>),
}

impl Field<'_> {
    /// The field's name; `label` names the label field.
    pub fn name<'n>(&self, label: &'n [u8]) -> &'n [u8] {
        match self {
            Field::ContentLength(_) => b"content-length",
            Field::LastModified(_) => b"last-modified",
            Field::ETag(_) => b"etag",
            Field::Age(_) => b"age",
            Field::Label(_) => label,
            Field::CacheStatus(_) => b"cache-status",
        }
    }

    /// The field's value.
    pub fn value(&self) -> Vec<u8> {
        let mut digits = itoa::Buffer::new();
        match self {
            Field::ContentLength(n) => digits.format(*n).as_bytes().to_vec(),
            Field::LastModified(t) => super::dates::format_http_date(*t).into_bytes(),
            Field::ETag(e) => e.as_bytes().to_vec(),
            Field::Age(n) => digits.format(*n).as_bytes().to_vec(),
            Field::Label(l) => l.as_bytes().to_vec(),
            Field::CacheStatus(s) => s.to_vec(),
        }
    }
}

/// What to send: the status, which base fields, whether the body, and the fields added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply<'a> {
    /// The status.
    pub status: u16,
    /// The body goes out (false for a 304 and for HEAD; the 504 of only-if-cached has none).
    pub body: bool,
    /// Which base fields go out.
    pub keep: Keep<'a>,
    /// The fields written first after the base list: an entry's fields kept aside (the
    /// 504 of only-if-cached: its `Content-Length: 0`).
    set_aside: SetAside<'a>,
    age: Option<u64>,
    label: Label,
    cache_status: CacheStatus<'a>,
}

impl<'a> Reply<'a> {
    /// Whether the base field `name` goes out.
    pub fn keeps(&self, name: &[u8]) -> bool {
        match self.keep {
            Keep::All => true,
            Keep::NotModified => allowed_in_304(name),
            Keep::NotOwn { own, age } => {
                !(own.names_outcome(name) || (age && name.eq_ignore_ascii_case(b"age")))
            }
        }
    }

    /// Calls `f` with each field written after the base list, in order: the fields kept
    /// aside, `Age`, the label, `Cache-Status`.
    #[inline]
    pub fn try_for_each_added<E>(
        &self,
        mut f: impl FnMut(Field<'a>) -> Result<(), E>,
    ) -> Result<(), E> {
        if let Some(n) = self.set_aside.content_length {
            f(Field::ContentLength(n))?;
        }
        if let Some(t) = self.set_aside.last_modified {
            f(Field::LastModified(t))?;
        }
        if let Some(e) = self.set_aside.etag {
            f(Field::ETag(e))?;
        }
        if let Some(age) = self.age {
            f(Field::Age(age))?;
        }
        f(Field::Label(self.label))?;
        f(Field::CacheStatus(self.cache_status))
    }

    /// The fields written after the base list, in order.
    pub fn added(&self) -> Vec<Field<'a>> {
        let mut out = Vec::with_capacity(6);
        let _ = self.try_for_each_added(|f| {
            out.push(f);
            Ok::<(), ()>(())
        });
        out
    }

    /// A 304 Not Modified (RFC 9110 §15.4.5).
    pub fn not_modified(&self) -> bool {
        self.status == 304 && self.keep == Keep::NotModified
    }
}

/// Whether the request's conditionals let the stored response answer 304 (RFC 9111 §4.3.2):
/// If-None-Match when present (RFC 9110 §13.1.2, weak comparison), else If-Modified-Since
/// against Last-Modified or Date (RFC 9110 §13.1.3), in the order of RFC 9110 §13.2.2.
pub fn is_not_modified(stored: &StoredResponse<'_>, request: &Conditions<'_>) -> bool {
    if !request.if_none_match.is_empty() {
        return if_none_match_hits(request.if_none_match.iter().map(Vec::as_slice), stored.etag);
    }
    match (request.if_modified_since, stored.modified) {
        // Only GET and HEAD ever reach a stored response; the rule is the same for both.
        (Some(ims), Some(modified)) => if_modified_since_hits(ims, modified, false, b"GET"),
        _ => false,
    }
}

/// The reply from a stored response: a 304 when the request's conditionals say the client's
/// copy is current (RFC 9111 §4.3.2), carrying only the fields of RFC 9110 §15.4.5 and no
/// `Content-Length` (a 304 has no content); else the stored status, fields and body, without
/// the body for HEAD (RFC 9110 §9.3.2). The fields kept aside are written back after the stored
/// ones, then `Age` when given (RFC 9111 §5.1: a response from the cache says how old it is),
/// the label and `Cache-Status`.
#[inline]
pub fn replay<'a>(
    stored: &StoredResponse<'a>,
    request: &Conditions<'_>,
    age: Option<u64>,
    label: Label,
    status: CacheStatus<'a>,
) -> Reply<'a> {
    let not_modified = is_not_modified(stored, request);
    let (code, body, keep) = if not_modified {
        (304, false, Keep::NotModified)
    } else {
        (stored.status, !request.head, Keep::All)
    };
    Reply {
        status: code,
        body,
        keep,
        set_aside: SetAside {
            // A 304 has no content, so no Content-Length (RFC 9110 §15.4.5, §8.6).
            content_length: stored.set_aside.content_length.filter(|_| !not_modified),
            last_modified: stored.set_aside.last_modified,
            etag: stored.set_aside.etag.filter(|e| !e.is_empty()),
        },
        age,
        label,
        cache_status: status,
    }
}

/// The reply for a response the cache passes on without storing it: its status, fields and
/// body (none for HEAD, RFC 9110 §9.3.2) as the app made them, less this cache's stale
/// labels (and `Age` when `drop_age`), labelled MISS with `status`.
pub fn pass_on<'a>(
    response_status: u16,
    head: bool,
    own: OwnFields<'a>,
    drop_age: bool,
    status: CacheStatus<'a>,
) -> Reply<'a> {
    Reply {
        status: response_status,
        body: !head,
        keep: Keep::NotOwn { own, age: drop_age },
        set_aside: SetAside::default(),
        age: None,
        label: Label::Miss,
        cache_status: status,
    }
}

/// The 504 (Gateway Timeout) of a request that said `only-if-cached` when nothing stored may
/// answer it (RFC 9111 §5.2.1.7), empty, for both ways in.
pub fn only_if_cached() -> Reply<'static> {
    Reply {
        status: 504,
        body: false,
        keep: Keep::All,
        set_aside: SetAside {
            content_length: Some(0),
            ..SetAside::default()
        },
        age: None,
        label: Label::Miss,
        cache_status: CacheStatus::forward(Forward::Miss).detail("only-if-cached"),
    }
}

/// The label of a response the middleware passes on untouched (`reason`: why it bypassed the
/// cache), to append to the app's fields: `BYPASS` unless the response already has a label of
/// this cache's name (an `@cache` route labels its own answers), and `fwd=bypass` unless a
/// `Cache-Status` line has this cache's member already; another cache's member stays, this
/// cache's after it (RFC 9211 §2).
pub fn bypass_label<'a>(
    response: &[(&[u8], &[u8])],
    own: OwnFields<'_>,
    reason: &'a str,
) -> impl Iterator<Item = Field<'a>> {
    let labelled = response
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(own.label));
    let has_member = response.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case(b"cache-status") && super::cache_status::names_this_cache(v)
    });
    let label = (!labelled).then_some(Field::Label(Label::Bypass));
    let status = (!has_member).then(|| Field::CacheStatus(super::cache_status::bypass(reason)));
    label.into_iter().chain(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::dates::format_http_date;

    const LM: i64 = 1_700_000_000;

    fn entry() -> StoredResponse<'static> {
        StoredResponse {
            status: 200,
            etag: Some("\"v1\""),
            modified: Some(LM),
            set_aside: SetAside {
                content_length: Some(5),
                last_modified: Some(LM),
                etag: Some("\"v1\""),
            },
        }
    }

    /// The added fields as `name: value` text, with `x-cache` as the label's name.
    fn added(reply: &Reply<'_>) -> Vec<String> {
        reply
            .added()
            .into_iter()
            .map(|f| {
                let name = String::from_utf8(f.name(b"x-cache").to_vec()).unwrap();
                format!("{name}: {}", String::from_utf8(f.value()).unwrap())
            })
            .collect()
    }

    fn get() -> Conditions<'static> {
        Conditions::default()
    }

    #[test]
    fn rfc9111_4_a_hit_replays_status_fields_body_then_age_and_labels() {
        let reply = replay(&entry(), &get(), Some(7), Label::Hit, CacheStatus::hit(53));
        assert_eq!((reply.status, reply.body), (200, true));
        assert!(reply.keeps(b"content-type") && reply.keeps(b"x-anything"));
        assert_eq!(
            added(&reply),
            [
                "content-length: 5".to_string(),
                format!("last-modified: {}", format_http_date(LM)),
                "etag: \"v1\"".into(),
                "age: 7".into(),
                "x-cache: HIT".into(),
                "cache-status: oxicache; hit; ttl=53".into(),
            ]
        );
    }

    #[test]
    fn rfc9110_9_3_2_head_gets_the_fields_but_no_body() {
        let head = Conditions {
            head: true,
            ..get()
        };
        let reply = replay(&entry(), &head, Some(0), Label::Hit, CacheStatus::hit(1));
        assert_eq!((reply.status, reply.body), (200, false));
        assert!(added(&reply).contains(&"content-length: 5".to_string()));
    }

    #[test]
    fn rfc9110_13_1_2_a_matching_if_none_match_gets_a_304_with_the_15_4_5_fields() {
        let inm = [b"W/\"v1\"".to_vec()];
        let request = Conditions {
            if_none_match: &inm,
            ..get()
        };
        let reply = replay(&entry(), &request, Some(3), Label::Hit, CacheStatus::hit(1));
        assert!(reply.not_modified());
        assert_eq!((reply.status, reply.body), (304, false));
        for kept in [
            "etag",
            "cache-control",
            "vary",
            "date",
            "expires",
            "content-location",
        ] {
            assert!(reply.keeps(kept.as_bytes()), "{kept}");
        }
        assert!(!reply.keeps(b"content-type") && !reply.keeps(b"content-length"));
        // No Content-Length: a 304 has no content (RFC 9110 §15.4.5, §8.6).
        assert_eq!(
            added(&reply),
            [
                format!("last-modified: {}", format_http_date(LM)),
                "etag: \"v1\"".into(),
                "age: 3".into(),
                "x-cache: HIT".into(),
                "cache-status: oxicache; hit; ttl=1".into(),
            ]
        );
    }

    #[test]
    fn rfc9110_13_1_2_star_matches_any_stored_response() {
        let inm = [b"*".to_vec()];
        let request = Conditions {
            if_none_match: &inm,
            ..get()
        };
        let no_etag = StoredResponse {
            etag: None,
            ..entry()
        };
        assert!(is_not_modified(&no_etag, &request));
    }

    #[test]
    fn rfc9110_13_1_2_another_tag_gets_the_full_response() {
        let inm = [b"\"v0\", \"v2\"".to_vec()];
        let request = Conditions {
            if_none_match: &inm,
            ..get()
        };
        let reply = replay(&entry(), &request, Some(0), Label::Hit, CacheStatus::hit(1));
        assert_eq!((reply.status, reply.body), (200, true));
        // An empty stored tag is no tag at all.
        let untagged = StoredResponse {
            etag: Some(""),
            ..entry()
        };
        assert!(!is_not_modified(&untagged, &request));
    }

    #[test]
    fn rfc9110_13_1_3_if_modified_since_compares_with_last_modified() {
        let since = format_http_date(LM);
        let request = Conditions {
            if_modified_since: Some(since.as_bytes()),
            ..get()
        };
        assert!(is_not_modified(&entry(), &request));
        let earlier = format_http_date(LM - 1);
        let request = Conditions {
            if_modified_since: Some(earlier.as_bytes()),
            ..get()
        };
        assert!(!is_not_modified(&entry(), &request));
        let undated = StoredResponse {
            modified: None,
            ..entry()
        };
        assert!(!is_not_modified(&undated, &request));
    }

    #[test]
    fn rfc9110_13_2_2_if_none_match_wins_over_if_modified_since() {
        let inm = [b"\"other\"".to_vec()];
        let since = format_http_date(LM + 100);
        let request = Conditions {
            if_none_match: &inm,
            if_modified_since: Some(since.as_bytes()),
            head: false,
        };
        assert!(!is_not_modified(&entry(), &request));
    }

    #[test]
    fn rfc9111_5_1_age_only_when_given() {
        // The entry a miss just stored goes out without Age (the app made it just now).
        let status = CacheStatus::forward(Forward::Miss).stored();
        let reply = replay(&entry(), &get(), None, Label::Miss, status);
        assert!(!added(&reply).iter().any(|f| f.starts_with("age:")));
        assert_eq!(
            added(&reply).last().unwrap(),
            "cache-status: oxicache; fwd=miss; stored"
        );
    }

    #[test]
    fn an_entry_without_set_aside_fields_replays_its_own_list_only() {
        let stored = StoredResponse {
            set_aside: SetAside::default(),
            ..entry()
        };
        let status = CacheStatus::hit(-2).detail("max-stale");
        let reply = replay(&stored, &get(), Some(62), Label::Stale, status);
        assert_eq!(
            added(&reply),
            [
                "age: 62",
                "x-cache: STALE",
                "cache-status: oxicache; hit; ttl=-2; detail=max-stale"
            ]
        );
    }

    #[test]
    fn rfc9211_a_response_passed_on_loses_the_cache_own_stale_labels() {
        let own = OwnFields { label: b"x-cache" };
        let status = CacheStatus::forward(Forward::Miss).detail("no-store");
        let reply = pass_on(201, false, own, true, status);
        assert_eq!((reply.status, reply.body), (201, true));
        assert!(!reply.keeps(b"X-Cache") && !reply.keeps(b"Cache-Status"));
        assert!(!reply.keeps(b"age") && reply.keeps(b"content-type"));
        assert_eq!(
            added(&reply),
            [
                "x-cache: MISS",
                "cache-status: oxicache; fwd=miss; detail=no-store"
            ]
        );
        // An Age from a cache behind this one stays (RFC 9111 §5.1 counts its time too).
        let kept_age = pass_on(200, true, own, false, status);
        assert!(kept_age.keeps(b"age") && !kept_age.body);
    }

    #[test]
    fn rfc9111_5_2_1_7_only_if_cached_with_nothing_stored_is_an_empty_504() {
        let reply = only_if_cached();
        assert_eq!((reply.status, reply.body), (504, false));
        assert_eq!(
            added(&reply),
            [
                "content-length: 0",
                "x-cache: MISS",
                "cache-status: oxicache; fwd=miss; detail=only-if-cached"
            ]
        );
    }

    #[test]
    fn rfc9211_2_a_bypass_label_leaves_an_inner_label_and_other_caches_alone() {
        let own = OwnFields { label: b"x-cache" };
        let name = |f: &Field<'_>| String::from_utf8(f.name(b"x-cache").to_vec()).unwrap();
        let bare: Vec<_> = bypass_label(&[(b"content-type", b"text/plain")], own, "unsafe")
            .map(|f| format!("{}: {}", name(&f), String::from_utf8(f.value()).unwrap()))
            .collect();
        assert_eq!(
            bare,
            [
                "x-cache: BYPASS",
                "cache-status: oxicache; fwd=bypass; detail=method"
            ]
        );
        let other_cache: &[(&[u8], &[u8])] = &[(b"Cache-Status", b"cdn; hit")];
        assert_eq!(bypass_label(other_cache, own, "range").count(), 2);
        let inner: &[(&[u8], &[u8])] = &[
            (b"X-Cache", b"HIT"),
            (b"cache-status", b"cdn; fwd=miss, oxicache; hit; ttl=3"),
        ];
        assert_eq!(bypass_label(inner, own, "range").count(), 0);
    }
}
