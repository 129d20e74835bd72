//! Freshness and reuse of a stored response: the freshness lifetime
//! (RFC 9111 §4.2.1, §4.2.2), its current age (RFC 9111 §4.2.3, §5.1), the
//! reuse decision against request and response directives (RFC 9111 §4.2.4,
//! §5.2.1, §5.2.2) and the stale-serving windows of RFC 5861 §3, §4.
//!
//! Times are Unix seconds. Header dates are whole seconds (`i64`); clock
//! readings taken by the cache (`request_time`, `response_time`, `now`) are
//! `f64`. Ages and lifetimes are `f64` seconds; only the emitted `Age` field
//! is rounded (down) to an integer, as its grammar requires (RFC 9111 §5.1).
//!
//! Nothing here panics: non-finite clock readings make a response stale
//! rather than fresh, and every count saturates.

use super::cache_control::{CacheControl, MaxStale, DELTA_SECONDS_MAX};
use super::dates::parse_http_date_at;
use crate::http::trim_ows;

/// The `Expires` field of a stored response (RFC 9111 §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expires {
    /// A valid HTTP-date, in Unix seconds.
    At(i64),
    /// Present but not a valid HTTP-date (for example `0`), or several lines
    /// with different values: "already expired" (RFC 9111 §5.3, §4.2.1).
    Invalid,
}

impl Expires {
    /// Reads the Expires field lines; `None` when there are none.
    ///
    /// A value that is not a valid HTTP-date means a time in the past
    /// (RFC 9111 §5.3). Expires is a single value, so several lines are
    /// fine only when they agree; differing lines are read as stale, one of
    /// the two choices RFC 9111 §4.2.1 offers ("either the first occurrence
    /// should be used or the response should be considered stale"), the one
    /// that cannot serve content for longer than the origin meant. `now`
    /// only resolves two-digit years ([`parse_http_date_at`]).
    pub fn parse_lines<'a, I: IntoIterator<Item = &'a [u8]>>(
        lines: I,
        now: i64,
    ) -> Option<Expires> {
        let mut out: Option<Expires> = None;
        for line in lines {
            let this = parse_http_date_at(line, now).map_or(Expires::Invalid, Expires::At);
            out = match out {
                None => Some(this),
                Some(prev) if prev == this => Some(prev),
                Some(_) => Some(Expires::Invalid),
            };
        }
        out
    }
}

/// Reads the Date field lines (RFC 9110 §6.6.1); `None` when absent, when a
/// line is not a valid HTTP-date, or when lines disagree. The cache then
/// uses the time it received the response instead (RFC 9110 §6.6.1,
/// RFC 9111 §4.2.1).
pub fn parse_date_lines<'a, I: IntoIterator<Item = &'a [u8]>>(lines: I, now: i64) -> Option<i64> {
    let mut out: Option<i64> = None;
    for line in lines {
        let this = parse_http_date_at(line, now)?;
        if out.is_some_and(|prev| prev != this) {
            return None;
        }
        out = Some(this);
    }
    out
}

/// Reads the Age field lines (RFC 9111 §5.1); `None` when absent or invalid.
///
/// `Age = delta-seconds`: digits only, saturating at 2^31 (RFC 9111
/// §1.2.2). Age is a singleton field, and RFC 9111 §5.1 says a cache that
/// meets a list-based value "SHOULD use the first member of the field
/// value, discarding subsequent ones", then ignore the field if what is
/// left is invalid. So `7200, 0` and the lines `7200` / `0` read as 7200,
/// while `-1`, `1.5` and `abc` are ignored. A parameter after the number
/// (`7200;foo=bar`) is dropped and the number kept: it can only make the
/// response older, never fresher than its sender said.
pub fn parse_age_lines<'a, I: IntoIterator<Item = &'a [u8]>>(lines: I) -> Option<u64> {
    let first_line = lines.into_iter().next()?;
    let member = first_line.split(|&b| b == b',').next().unwrap_or_default();
    let number = trim_ows(member.split(|&b| b == b';').next().unwrap_or_default());
    if number.is_empty() || !number.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(number.iter().fold(0u64, |n, &d| {
        (n * 10 + u64::from(d - b'0')).min(DELTA_SECONDS_MAX)
    }))
}

/// The times that decide a stored response's age and Expires-based
/// lifetime (RFC 9111 §4.2.1, §4.2.3).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResponseTimes {
    /// The response's `Date` (RFC 9110 §6.6.1), if present and valid.
    pub date: Option<i64>,
    /// The response's `Expires` (RFC 9111 §5.3), if present.
    pub expires: Option<Expires>,
    /// The response's `Age` (RFC 9111 §5.1), if present and valid.
    pub age_header: Option<u64>,
    /// When the cache sent the request that produced the response
    /// (`request_time` of RFC 9111 §4.2.3).
    pub request_time: f64,
    /// When the cache received the response (`response_time` of RFC 9111
    /// §4.2.3).
    pub response_time: f64,
}

impl ResponseTimes {
    /// Reads `Date`, `Expires` and `Age` from a response header list (names
    /// compared case-insensitively, RFC 9110 §5.1). `response_time` also
    /// anchors the two-digit years of rfc850-dates (RFC 9110 §5.6.7).
    pub fn from_headers(
        headers: &[(&[u8], &[u8])],
        request_time: f64,
        response_time: f64,
    ) -> ResponseTimes {
        let lines = |name: &'static [u8]| {
            headers
                .iter()
                .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
                .map(|&(_, v)| v)
        };
        // `as` saturates and maps NaN to 0.
        let now = response_time as i64;
        ResponseTimes {
            date: parse_date_lines(lines(b"date"), now),
            expires: Expires::parse_lines(lines(b"expires"), now),
            age_header: parse_age_lines(lines(b"age")),
            request_time,
            response_time,
        }
    }

    /// `date_value` (RFC 9111 §4.2.3): the Date field, or, without one, the
    /// time the response was received (RFC 9110 §6.6.1).
    pub fn date_value(&self) -> f64 {
        self.date.map_or(self.response_time, |d| d as f64)
    }
}

/// True when the response carries explicit freshness information that
/// applies to this cache (RFC 9111 §4.2.1): `s-maxage` in a shared cache,
/// `max-age`, or an `Expires` field (even an invalid one, which reads as
/// "already expired", RFC 9111 §5.3).
pub fn has_explicit_freshness(cc: &CacheControl, expires: Option<Expires>, shared: bool) -> bool {
    (shared && cc.s_maxage.is_some()) || cc.max_age.is_some() || expires.is_some()
}

/// The freshness lifetime in seconds (RFC 9111 §4.2.1), first match wins:
///
/// 1. invalid or conflicting freshness information (`cc.conflicting`:
///    duplicate directives with different values, or a non-integer
///    delta-seconds) → 0, i.e. stale, as RFC 9111 §4.2.1 encourages;
/// 2. in a shared cache, `s-maxage` (RFC 9111 §5.2.2.10);
/// 3. `max-age` (RFC 9111 §5.2.2.1);
/// 4. `Expires` minus `Date`, or minus the receive time without a `Date`
///    (RFC 9111 §4.2.1); an invalid `Expires` gives 0 (RFC 9111 §5.3), a
///    past one is clamped to 0.
///
/// `None` when there is no explicit freshness: no heuristic is applied here
/// (see [`heuristic_freshness`], off by default).
pub fn freshness_lifetime(cc: &CacheControl, times: &ResponseTimes, shared: bool) -> Option<f64> {
    if cc.conflicting {
        return Some(0.0);
    }
    if shared {
        if let Some(s) = cc.s_maxage {
            return Some(s as f64);
        }
    }
    if let Some(m) = cc.max_age {
        return Some(m as f64);
    }
    match times.expires? {
        Expires::Invalid => Some(0.0),
        Expires::At(e) => Some((e as f64 - times.date_value()).max(0.0)),
    }
}

/// Settings of heuristic freshness (RFC 9111 §4.2.2). Off by default: a
/// response without explicit freshness is then never fresh.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeuristicSettings {
    /// Whether heuristic freshness is used at all.
    pub enabled: bool,
    /// The fraction of the time since `Last-Modified` that the response is
    /// deemed fresh; RFC 9111 §4.2.2 notes 10% as typical.
    pub fraction: f64,
    /// The cap, in seconds, of a heuristic lifetime.
    pub max_seconds: f64,
}

impl Default for HeuristicSettings {
    fn default() -> Self {
        HeuristicSettings {
            enabled: false,
            fraction: 0.1,
            max_seconds: 86_400.0,
        }
    }
}

/// The status codes RFC 9110 defines as heuristically cacheable (RFC 9110
/// §15.1, referenced by RFC 9111 §4.2.2).
pub const HEURISTICALLY_CACHEABLE: [u16; 12] =
    [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];

/// Whether `status` is heuristically cacheable by default (RFC 9110 §15.1).
pub fn is_heuristically_cacheable(status: u16) -> bool {
    HEURISTICALLY_CACHEABLE.contains(&status)
}

/// A heuristic freshness lifetime (RFC 9111 §4.2.2), or `None`.
///
/// Only when `settings.enabled`, when the response has no explicit
/// freshness and no invalid freshness information (RFC 9111 §4.2.2: "MUST
/// NOT use heuristics ... when an explicit expiration time is present"),
/// when its status is heuristically cacheable or it is marked `public`
/// (RFC 9111 §4.2.2, §5.2.2.9), and when it has a `Last-Modified` to base
/// the estimate on: `fraction × (date_value − Last-Modified)`, clamped to
/// `0..=max_seconds`.
pub fn heuristic_freshness(
    status: u16,
    cc: &CacheControl,
    times: &ResponseTimes,
    last_modified: Option<i64>,
    shared: bool,
    settings: &HeuristicSettings,
) -> Option<f64> {
    if !settings.enabled
        || cc.conflicting
        || has_explicit_freshness(cc, times.expires, shared)
        || !(is_heuristically_cacheable(status) || cc.public)
    {
        return None;
    }
    let since = times.date_value() - last_modified? as f64;
    let lifetime = since * settings.fraction;
    if !lifetime.is_finite() {
        return None;
    }
    Some(lifetime.min(settings.max_seconds).max(0.0))
}

/// The current age of a stored response in seconds (RFC 9111 §4.2.3):
///
/// ```text
/// apparent_age          = max(0, response_time - date_value)
/// response_delay        = response_time - request_time
/// corrected_age_value   = age_value + response_delay
/// corrected_initial_age = max(apparent_age, corrected_age_value)
/// resident_time         = now - response_time
/// current_age           = corrected_initial_age + resident_time
/// ```
///
/// `response_delay` and `resident_time` are clamped at 0, so a clock that
/// steps backwards never makes a response younger than it arrived.
pub fn current_age(times: &ResponseTimes, now: f64) -> f64 {
    let apparent_age = (times.response_time - times.date_value()).max(0.0);
    let response_delay = (times.response_time - times.request_time).max(0.0);
    let age_value = times.age_header.unwrap_or(0) as f64;
    let corrected_age_value = age_value + response_delay;
    let corrected_initial_age = apparent_age.max(corrected_age_value);
    let resident_time = (now - times.response_time).max(0.0);
    corrected_initial_age + resident_time
}

/// The `Age` field value to send with a stored response (RFC 9111 §5.1,
/// §4.2.3): the current age in whole seconds (rounded down), saturating at
/// 2^31 (RFC 9111 §1.2.2).
pub fn age_header_value(times: &ResponseTimes, now: f64) -> u64 {
    seconds_field(current_age(times, now))
}

/// Whole seconds for a delta-seconds field: rounded down, NaN and negatives
/// as 0, saturating at 2^31 (RFC 9111 §1.2.2).
fn seconds_field(secs: f64) -> u64 {
    // `as` saturates and maps NaN to 0.
    (secs.floor() as u64).min(DELTA_SECONDS_MAX)
}

/// `response_is_fresh = (freshness_lifetime > current_age)` (RFC 9111
/// §4.2); a response without a lifetime is never fresh.
pub fn is_fresh(lifetime: Option<f64>, age: f64) -> bool {
    lifetime.is_some_and(|l| l > age)
}

/// The request directives that bear on reuse (RFC 9111 §5.2.1, RFC 5861 §4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestDirectives {
    /// `no-cache` (RFC 9111 §5.2.1.4), or `Pragma: no-cache` without a
    /// Cache-Control field (RFC 9111 §5.4).
    pub no_cache: bool,
    /// `max-age` (RFC 9111 §5.2.1.1).
    pub max_age: Option<u64>,
    /// `min-fresh` (RFC 9111 §5.2.1.3).
    pub min_fresh: Option<u64>,
    /// `max-stale` (RFC 9111 §5.2.1.2).
    pub max_stale: Option<MaxStale>,
    /// `only-if-cached` (RFC 9111 §5.2.1.7).
    pub only_if_cached: bool,
    /// `stale-if-error` sent by the client (RFC 5861 §4).
    pub stale_if_error: Option<u64>,
}

impl RequestDirectives {
    /// The reuse-related directives of a parsed request Cache-Control.
    pub fn from_cache_control(cc: &CacheControl) -> RequestDirectives {
        RequestDirectives {
            no_cache: cc.no_cache,
            max_age: cc.max_age,
            min_fresh: cc.min_fresh,
            max_stale: cc.max_stale,
            only_if_cached: cc.only_if_cached,
            stale_if_error: cc.stale_if_error,
        }
    }

    /// Reads a request header list: every Cache-Control line, and
    /// `Pragma: no-cache` only when there is no Cache-Control line
    /// (RFC 9111 §5.4).
    pub fn from_headers(headers: &[(&[u8], &[u8])]) -> RequestDirectives {
        let lines: Vec<&[u8]> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"cache-control"))
            .map(|&(_, v)| v)
            .collect();
        if !lines.is_empty() {
            return RequestDirectives::from_cache_control(&CacheControl::parse_lines(lines));
        }
        let pragma_no_cache = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"pragma"))
            .flat_map(|(_, v)| v.split(|&b| b == b','))
            .any(|m| trim_ows(m).eq_ignore_ascii_case(b"no-cache"));
        RequestDirectives {
            no_cache: pragma_no_cache,
            ..RequestDirectives::default()
        }
    }
}

/// How the cache applies the reuse rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReusePolicy {
    /// A shared cache (RFC 9111 §1): `s-maxage` and `proxy-revalidate`
    /// apply.
    pub shared: bool,
    /// Whether a client may force recomputation with request `no-cache`,
    /// `Pragma: no-cache`, `max-age` or `min-fresh`. When false these are
    /// ignored, which RFC 9111 §5.2.1 allows: request directives "are
    /// advisory; caches MAY implement them, but are not required to". The
    /// directives that only accept more (`max-stale`) or forbid contacting
    /// the origin (`only-if-cached`) are always honoured.
    pub honour_client_refresh: bool,
}

impl Default for ReusePolicy {
    fn default() -> Self {
        ReusePolicy {
            shared: true,
            honour_client_refresh: true,
        }
    }
}

/// What to do with a stored response that matched a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// Fresh and acceptable to the client: serve it (RFC 9111 §4.2).
    Fresh,
    /// Stale, but the client's `max-stale` accepts it and nothing forbids
    /// serving it stale (RFC 9111 §4.2.4, §5.2.1.2): serve it.
    StaleAllowed,
    /// Stale, inside the response's `stale-while-revalidate` window: serve
    /// it and refresh it in the background, one refresh per key (RFC 5861
    /// §3).
    StaleWhileRevalidate,
    /// Must not be served without a successful validation: go to the origin
    /// (conditionally when the entry has validators, RFC 9111 §4.3). If the
    /// origin fails, [`stale_if_error_allows`] says whether the entry may be
    /// served instead.
    MustRevalidate,
    /// The entry may not be served without validation, and the request's
    /// `only-if-cached` forbids contacting the origin: answer 504 (RFC 9111
    /// §5.2.1.7).
    NotUsable,
}

/// True when an explicit directive forbids serving the response stale
/// (RFC 9111 §4.2.4): `must-revalidate` (§5.2.2.2), `no-cache` (§5.2.2.4:
/// never without validation, stale or not), and in a shared cache
/// `proxy-revalidate` (§5.2.2.8) and `s-maxage`, which implies it
/// (§5.2.2.10). This also bounds RFC 5861 stale serving (docs/http.md: never past
/// must-revalidate, no-cache or s-maxage).
pub fn stale_prohibited(cc: &CacheControl, shared: bool) -> bool {
    cc.must_revalidate || cc.no_cache || (shared && (cc.proxy_revalidate || cc.s_maxage.is_some()))
}

/// The reuse decision for a stored response that matched the request
/// (RFC 9111 §4), given the response's Cache-Control, its freshness
/// lifetime (`None`: no freshness information, i.e. stale) and its current
/// age. First match wins:
///
/// 1. response `no-cache` → revalidate (RFC 9111 §5.2.2.4);
/// 2. request `no-cache` → revalidate (RFC 9111 §5.2.1.4, §5.4);
/// 3. request `max-age` below the age → revalidate, even with `max-stale`,
///    which only widens freshness, not age (RFC 9111 §5.2.1.1);
/// 4. request `min-fresh`: fresh for at least that many more seconds, or
///    revalidate (RFC 9111 §5.2.1.3);
/// 5. fresh → [`Reuse::Fresh`] (RFC 9111 §4.2);
/// 6. stale and [`stale_prohibited`] → revalidate (RFC 9111 §4.2.4);
/// 7. stale by no more than the request's `max-stale` →
///    [`Reuse::StaleAllowed`] (RFC 9111 §5.2.1.2);
/// 8. stale by no more than the response's `stale-while-revalidate` →
///    [`Reuse::StaleWhileRevalidate`] (RFC 5861 §3);
/// 9. otherwise revalidate (RFC 9111 §4.2.4).
///
/// "Revalidate" is [`Reuse::MustRevalidate`], or [`Reuse::NotUsable`] when
/// the request says `only-if-cached` (RFC 9111 §5.2.1.7). Steps 2–4 are
/// skipped when `policy.honour_client_refresh` is false. A request
/// `no-store` (RFC 9111 §5.2.1.5) forbids storing, not reuse, so it is not
/// an input here.
pub fn reuse(
    cc: &CacheControl,
    lifetime: Option<f64>,
    age: f64,
    request: &RequestDirectives,
    policy: &ReusePolicy,
) -> Reuse {
    let revalidate = if request.only_if_cached {
        Reuse::NotUsable
    } else {
        Reuse::MustRevalidate
    };
    let lifetime = lifetime.unwrap_or(0.0);
    let client = policy.honour_client_refresh;
    if cc.no_cache || (client && request.no_cache) {
        return revalidate;
    }
    // Written so that a NaN age or lifetime fails both tests.
    let young_enough = |max_age: u64| age <= max_age as f64;
    let fresh_for = |secs: u64| lifetime > age + secs as f64;
    if client && request.max_age.is_some_and(|m| !young_enough(m)) {
        return revalidate;
    }
    if client && request.min_fresh.is_some_and(|m| !fresh_for(m)) {
        return revalidate;
    }
    if lifetime > age {
        return Reuse::Fresh;
    }
    if stale_prohibited(cc, policy.shared) {
        return revalidate;
    }
    let staleness = age - lifetime;
    let within = |window: u64| staleness <= window as f64;
    match request.max_stale {
        Some(MaxStale::Any) => return Reuse::StaleAllowed,
        Some(MaxStale::Seconds(n)) if within(n) => return Reuse::StaleAllowed,
        _ => {}
    }
    if cc.stale_while_revalidate.is_some_and(within) {
        return Reuse::StaleWhileRevalidate;
    }
    revalidate
}

/// Whether a stored response may be served because producing a new one
/// failed (the handler raised or returned a 5xx): RFC 5861 §4 and RFC 9111
/// §4.3.3.
///
/// - Never with response `no-cache`: it may not be used without a
///   successful validation (RFC 9111 §5.2.2.4).
/// - A response that is still fresh may be (RFC 9111 §4.3.3: the cache may
///   act as if the origin did not answer and send a stored response,
///   subject only to the rules on serving stale responses).
/// - A stale one only when stale serving is not prohibited
///   ([`stale_prohibited`], RFC 9111 §4.2.4) and its staleness is within
///   the response's `stale-if-error`, or the request's (RFC 5861 §4 defines
///   both), whichever is larger.
///
/// The request's freshness directives do not count here: RFC 5861 §4 lets
/// the stale response be used "regardless of other freshness information",
/// and the alternative is an error.
pub fn stale_if_error_allows(
    cc: &CacheControl,
    lifetime: Option<f64>,
    age: f64,
    request: &RequestDirectives,
    shared: bool,
) -> bool {
    if cc.no_cache {
        return false;
    }
    let staleness = age - lifetime.unwrap_or(0.0);
    if staleness < 0.0 {
        return true;
    }
    if stale_prohibited(cc, shared) {
        return false;
    }
    cc.stale_if_error
        .max(request.stale_if_error)
        .is_some_and(|w| staleness <= w as f64)
}

/// How long past its freshness lifetime a stored response may be served
/// (RFC 5861), for recording with the entry.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StaleWindows {
    /// `stale-while-revalidate` seconds (RFC 5861 §3).
    pub while_revalidate: f64,
    /// `stale-if-error` seconds (RFC 5861 §4).
    pub if_error: f64,
}

/// The response's stale-serving windows: its `stale-while-revalidate` and
/// `stale-if-error` values, both 0 when [`stale_prohibited`] (RFC 9111
/// §4.2.4: never past must-revalidate, no-cache, or in a shared cache
/// proxy-revalidate or s-maxage).
pub fn stale_windows(cc: &CacheControl, shared: bool) -> StaleWindows {
    if stale_prohibited(cc, shared) {
        return StaleWindows::default();
    }
    StaleWindows {
        while_revalidate: cc.stale_while_revalidate.unwrap_or(0) as f64,
        if_error: cc.stale_if_error.unwrap_or(0) as f64,
    }
}

/// Everything a hit needs, computed once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Assessment {
    /// The freshness lifetime ([`freshness_lifetime`]).
    pub lifetime: Option<f64>,
    /// The current age ([`current_age`]).
    pub age: f64,
    /// The `Age` field value to send ([`age_header_value`]).
    pub age_header: u64,
    /// The reuse decision ([`reuse`]).
    pub reuse: Reuse,
}

/// [`freshness_lifetime`], [`current_age`], [`age_header_value`] and
/// [`reuse`] in one call, with explicit freshness only (no heuristic; to use
/// one, compute the lifetime with [`heuristic_freshness`] and call
/// [`reuse`]).
pub fn assess(
    cc: &CacheControl,
    times: &ResponseTimes,
    now: f64,
    request: &RequestDirectives,
    policy: &ReusePolicy,
) -> Assessment {
    let lifetime = freshness_lifetime(cc, times, policy.shared);
    let age = current_age(times, now);
    Assessment {
        lifetime,
        age,
        age_header: seconds_field(age),
        reuse: reuse(cc, lifetime, age, request, policy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_headers as h;
    use proptest::prelude::*;

    const T0: f64 = 1_767_225_600.0; // 2026-01-01T00:00:00Z

    fn cc(s: &str) -> CacheControl {
        CacheControl::parse(s.as_bytes())
    }

    fn times(date: Option<i64>, expires: Option<Expires>, age: Option<u64>) -> ResponseTimes {
        ResponseTimes {
            date,
            expires,
            age_header: age,
            request_time: T0,
            response_time: T0,
        }
    }

    fn req(s: &str) -> RequestDirectives {
        RequestDirectives::from_cache_control(&cc(s))
    }

    const SHARED: ReusePolicy = ReusePolicy {
        shared: true,
        honour_client_refresh: true,
    };
    const PRIVATE: ReusePolicy = ReusePolicy {
        shared: false,
        honour_client_refresh: true,
    };

    /// The reuse decision for a response with `resp` Cache-Control,
    /// explicit lifetime from it, at `age`, for request `rq`.
    fn decide(resp: &str, age: f64, rq: &str, policy: &ReusePolicy) -> Reuse {
        let c = cc(resp);
        let t = times(Some(T0 as i64), None, None);
        reuse(
            &c,
            freshness_lifetime(&c, &t, policy.shared),
            age,
            &req(rq),
            policy,
        )
    }

    #[test]
    fn rfc9111_4_2_1_s_maxage_first_in_shared_cache_only() {
        let t = times(None, None, None);
        let c = cc("max-age=3600, s-maxage=1");
        assert_eq!(freshness_lifetime(&c, &t, true), Some(1.0));
        assert_eq!(freshness_lifetime(&c, &t, false), Some(3600.0));
        let c = cc("max-age=1, s-maxage=3600");
        assert_eq!(freshness_lifetime(&c, &t, true), Some(3600.0));
        assert_eq!(freshness_lifetime(&c, &t, false), Some(1.0));
        let lines = CacheControl::parse_lines([&b"max-age=3600"[..], b"s-maxage=1"]);
        assert_eq!(freshness_lifetime(&lines, &t, true), Some(1.0));
        assert_eq!(freshness_lifetime(&cc("s-maxage=60"), &t, false), None);
    }

    #[test]
    fn rfc9111_4_2_1_max_age_wins_over_expires() {
        let past = times(Some(1000), Some(Expires::At(0)), None);
        assert_eq!(
            freshness_lifetime(&cc("max-age=3600"), &past, true),
            Some(3600.0)
        );
        let invalid = times(Some(1000), Some(Expires::Invalid), None);
        assert_eq!(
            freshness_lifetime(&cc("max-age=3600"), &invalid, true),
            Some(3600.0)
        );
        let future = times(Some(0), Some(Expires::At(10_000)), None);
        assert_eq!(
            freshness_lifetime(&cc("max-age=0"), &future, true),
            Some(0.0)
        );
    }

    #[test]
    fn rfc9111_4_2_1_expires_minus_date_or_receive_time() {
        let none = CacheControl::default();
        let t = times(Some(100), Some(Expires::At(400)), None);
        assert_eq!(freshness_lifetime(&none, &t, true), Some(300.0));
        // Date absent: the receive time stands in (RFC 9110 §6.6.1).
        let t = times(None, Some(Expires::At(T0 as i64 + 60)), None);
        assert_eq!(freshness_lifetime(&none, &t, true), Some(60.0));
        // Expires older than Date: already stale.
        let t = times(Some(400), Some(Expires::At(300)), None);
        assert_eq!(freshness_lifetime(&none, &t, true), Some(0.0));
    }

    #[test]
    fn rfc9111_5_3_invalid_expires_means_expired() {
        let none = CacheControl::default();
        let t = times(Some(100), Some(Expires::Invalid), None);
        assert_eq!(freshness_lifetime(&none, &t, true), Some(0.0));
        assert_eq!(Expires::parse_lines([&b"0"[..]], 0), Some(Expires::Invalid));
        assert_eq!(
            Expires::parse_lines([&b"Thu, 18 Aug 2050 02:01:18 UTC"[..]], 0),
            Some(Expires::Invalid)
        );
        assert_eq!(
            Expires::parse_lines([&b"Thu, 01 Jan 1970 00:01:40 GMT"[..]], 0),
            Some(Expires::At(100))
        );
        assert_eq!(Expires::parse_lines(std::iter::empty(), 0), None);
    }

    #[test]
    fn rfc9111_4_2_1_duplicate_expires_agree_or_stale() {
        let a = &b"Thu, 01 Jan 1970 00:01:40 GMT"[..];
        let b = &b"Thu, 01 Jan 1970 00:01:41 GMT"[..];
        assert_eq!(Expires::parse_lines([a, a], 0), Some(Expires::At(100)));
        assert_eq!(Expires::parse_lines([a, b], 0), Some(Expires::Invalid));
        assert_eq!(
            Expires::parse_lines([a, &b"0"[..]], 0),
            Some(Expires::Invalid)
        );
    }

    #[test]
    fn rfc9111_4_2_1_conflicting_or_invalid_is_stale() {
        let t = times(None, Some(Expires::At(T0 as i64 + 1000)), None);
        for bad in [
            "max-age=5, max-age=10",
            "max-age=a100",
            "max-age=100a",
            "max-age=-100",
            "max-age='3600'",
            "s-maxage=1, s-maxage=2",
        ] {
            assert_eq!(freshness_lifetime(&cc(bad), &t, true), Some(0.0), "{bad}");
        }
        // Quoted values and extensions are fine.
        assert_eq!(
            freshness_lifetime(&cc("max-age=\"3600\""), &t, true),
            Some(3600.0)
        );
        assert_eq!(
            freshness_lifetime(&cc("extension=\"max-age=100\", max-age=1"), &t, true),
            Some(1.0)
        );
    }

    #[test]
    fn rfc9111_4_2_1_no_explicit_freshness_is_none() {
        let t = times(Some(0), None, None);
        assert_eq!(freshness_lifetime(&CacheControl::default(), &t, true), None);
        assert_eq!(freshness_lifetime(&cc("public, no-cache"), &t, true), None);
        assert!(!is_fresh(None, 0.0));
        assert!(!has_explicit_freshness(&cc("public"), None, true));
        assert!(has_explicit_freshness(
            &cc("public"),
            Some(Expires::Invalid),
            true
        ));
        assert!(has_explicit_freshness(&cc("s-maxage=1"), None, true));
        assert!(!has_explicit_freshness(&cc("s-maxage=1"), None, false));
    }

    #[test]
    fn rfc9111_1_2_2_huge_max_age_saturates() {
        let t = times(None, None, None);
        let l = freshness_lifetime(&cc("max-age=99999999999"), &t, true);
        assert_eq!(l, Some(2_147_483_648.0));
        assert!(is_fresh(l, 1e9));
    }

    #[test]
    fn rfc9111_5_1_age_parsing() {
        let age = |lines: &[&str]| parse_age_lines(lines.iter().map(|l| l.as_bytes()));
        assert_eq!(age(&["15"]), Some(15));
        assert_eq!(age(&[" 15\t"]), Some(15));
        assert_eq!(age(&[]), None);
        for bad in [
            "abc", "-7200", "7200.0", "", "+5", "1 2", "a7200", "7200a", ", 5",
        ] {
            assert_eq!(age(&[bad]), None, "{bad}");
        }
        // The first member wins, on one line or across lines.
        assert_eq!(age(&["7200,0"]), Some(7200));
        assert_eq!(age(&["0, 7200"]), Some(0));
        assert_eq!(age(&["7200", "0"]), Some(7200));
        assert_eq!(age(&["0", "7200"]), Some(0));
        assert_eq!(age(&["0, 0"]), Some(0));
        // A parameter is dropped; the number stays.
        assert_eq!(age(&["7200;foo=bar"]), Some(7200));
        assert_eq!(age(&["99999999999999999999999"]), Some(DELTA_SECONDS_MAX));
    }

    #[test]
    fn rfc9110_6_6_1_date_lines() {
        let d = &b"Thu, 01 Jan 1970 00:01:40 GMT"[..];
        assert_eq!(parse_date_lines([d], 0), Some(100));
        assert_eq!(parse_date_lines([d, d], 0), Some(100));
        assert_eq!(
            parse_date_lines([d, &b"Thu, 01 Jan 1970 00:01:41 GMT"[..]], 0),
            None
        );
        assert_eq!(parse_date_lines([&b"foo"[..]], 0), None);
        assert_eq!(parse_date_lines(std::iter::empty(), 0), None);
    }

    #[test]
    fn from_headers_reads_date_expires_age() {
        let hs = h(&[
            ("DATE", "Thu, 01 Jan 1970 00:01:40 GMT"),
            ("expires", "Thu, 01 Jan 1970 00:02:00 GMT"),
            ("Age", "7"),
            ("x", "y"),
        ]);
        let t = ResponseTimes::from_headers(&hs, 90.0, 100.0);
        assert_eq!(t.date, Some(100));
        assert_eq!(t.expires, Some(Expires::At(120)));
        assert_eq!(t.age_header, Some(7));
        assert_eq!((t.request_time, t.response_time), (90.0, 100.0));
        let t = ResponseTimes::from_headers(&h(&[("date", "foo"), ("expires", "0")]), 0.0, 5.0);
        assert_eq!(
            (t.date, t.expires, t.age_header),
            (None, Some(Expires::Invalid), None)
        );
        assert_eq!(t.date_value(), 5.0);
    }

    #[test]
    fn rfc9111_4_2_3_age_calculation() {
        // Date in the past by 5 s, Age 2, 1 s of response delay, 10 s resident.
        let t = ResponseTimes {
            date: Some(995),
            expires: None,
            age_header: Some(2),
            request_time: 999.0,
            response_time: 1000.0,
        };
        // apparent_age 5, corrected_age_value 3 → corrected_initial_age 5.
        assert_eq!(current_age(&t, 1010.0), 15.0);
        // An Age larger than the apparent age wins.
        let t2 = ResponseTimes {
            age_header: Some(20),
            ..t
        };
        assert_eq!(current_age(&t2, 1010.0), 31.0);
        // A Date in the future gives apparent age 0, not negative.
        let t3 = ResponseTimes {
            date: Some(2000),
            age_header: None,
            ..t
        };
        assert_eq!(current_age(&t3, 1000.0), 1.0);
        // Clocks stepping backwards never lower the age.
        let t4 = ResponseTimes {
            request_time: 1100.0,
            ..t3
        };
        assert_eq!(current_age(&t4, 900.0), 0.0);
    }

    #[test]
    fn rfc9111_5_1_age_header_is_integer_and_saturates() {
        let mut t = times(None, None, None);
        assert_eq!(age_header_value(&t, T0), 0);
        assert_eq!(age_header_value(&t, T0 + 2.9), 2);
        t.age_header = Some(DELTA_SECONDS_MAX);
        assert_eq!(age_header_value(&t, T0 + 1e12), DELTA_SECONDS_MAX);
        assert_eq!(age_header_value(&t, f64::NAN), DELTA_SECONDS_MAX);
        t.response_time = f64::NAN;
        t.age_header = None;
        assert_eq!(age_header_value(&t, f64::NAN), 0);
    }

    #[test]
    fn rfc9111_4_2_3_cache_tests_scenarios() {
        // max-age=10 with Age: 15 is stale on arrival.
        let c = cc("max-age=10");
        let t = times(Some(T0 as i64), None, Some(15));
        assert!(!is_fresh(
            freshness_lifetime(&c, &t, true),
            current_age(&t, T0)
        ));
        // Expires − Date = 20 with Age 25 (Date slow), and 10 with Age 15 (fast).
        let none = CacheControl::default();
        let slow = times(
            Some(T0 as i64 - 10),
            Some(Expires::At(T0 as i64 + 10)),
            Some(25),
        );
        assert!(!is_fresh(
            freshness_lifetime(&none, &slow, true),
            current_age(&slow, T0)
        ));
        let fast = times(
            Some(T0 as i64 + 10),
            Some(Expires::At(T0 as i64 + 20)),
            Some(15),
        );
        assert!(!is_fresh(
            freshness_lifetime(&none, &fast, true),
            current_age(&fast, T0)
        ));
        // Expires with an invalid Date: receive time stands in, still fresh.
        let inv = times(None, Some(Expires::At(T0 as i64 + 10)), None);
        assert!(is_fresh(
            freshness_lifetime(&none, &inv, true),
            current_age(&inv, T0 + 1.0)
        ));
    }

    #[test]
    fn rfc9111_4_2_fresh_while_lifetime_exceeds_age() {
        assert!(is_fresh(Some(10.0), 9.99));
        assert!(!is_fresh(Some(10.0), 10.0));
        assert!(!is_fresh(Some(0.0), 0.0));
        assert!(!is_fresh(Some(f64::NAN), 0.0));
        assert_eq!(decide("max-age=10", 9.0, "", &SHARED), Reuse::Fresh);
        assert_eq!(
            decide("max-age=10", 10.0, "", &SHARED),
            Reuse::MustRevalidate
        );
        assert_eq!(decide("max-age=0", 0.0, "", &SHARED), Reuse::MustRevalidate);
        assert_eq!(decide("", 0.0, "", &SHARED), Reuse::MustRevalidate);
    }

    #[test]
    fn rfc9111_4_2_2_heuristic_off_by_default_and_bounded() {
        let on = HeuristicSettings {
            enabled: true,
            ..HeuristicSettings::default()
        };
        let none = CacheControl::default();
        let t = times(Some(10_000), None, None);
        assert_eq!(
            heuristic_freshness(200, &none, &t, Some(0), true, &HeuristicSettings::default()),
            None
        );
        assert_eq!(
            heuristic_freshness(200, &none, &t, Some(0), true, &on),
            Some(1000.0)
        );
        assert_eq!(heuristic_freshness(200, &none, &t, None, true, &on), None);
        // Not heuristically cacheable unless public (RFC 9111 §4.2.2).
        assert_eq!(
            heuristic_freshness(302, &none, &t, Some(0), true, &on),
            None
        );
        assert_eq!(
            heuristic_freshness(302, &cc("public"), &t, Some(0), true, &on),
            Some(1000.0)
        );
        // Explicit freshness or invalid freshness information excludes heuristics.
        assert_eq!(
            heuristic_freshness(200, &cc("max-age=5"), &t, Some(0), true, &on),
            None
        );
        assert_eq!(
            heuristic_freshness(200, &cc("max-age=x"), &t, Some(0), true, &on),
            None
        );
        let exp = times(Some(10_000), Some(Expires::Invalid), None);
        assert_eq!(
            heuristic_freshness(200, &none, &exp, Some(0), true, &on),
            None
        );
        // s-maxage only counts as explicit in a shared cache.
        assert_eq!(
            heuristic_freshness(200, &cc("s-maxage=5"), &t, Some(0), true, &on),
            None
        );
        assert_eq!(
            heuristic_freshness(200, &cc("s-maxage=5"), &t, Some(0), false, &on),
            Some(1000.0)
        );
        // Capped, never negative.
        assert_eq!(
            heuristic_freshness(200, &none, &t, Some(-10_000_000), true, &on),
            Some(86_400.0)
        );
        assert_eq!(
            heuristic_freshness(200, &none, &t, Some(20_000), true, &on),
            Some(0.0)
        );
        let nan = HeuristicSettings {
            fraction: f64::NAN,
            ..on
        };
        assert_eq!(
            heuristic_freshness(200, &none, &t, Some(0), true, &nan),
            None
        );
        assert!(is_heuristically_cacheable(404) && !is_heuristically_cacheable(500));
    }

    #[test]
    fn rfc9111_5_2_1_1_request_max_age() {
        assert_eq!(
            decide("max-age=3600", 0.0, "max-age=0", &SHARED),
            Reuse::Fresh
        );
        assert_eq!(
            decide("max-age=3600", 1.0, "max-age=0", &SHARED),
            Reuse::MustRevalidate
        );
        assert_eq!(
            decide("max-age=3600", 1800.0, "max-age=600", &SHARED),
            Reuse::MustRevalidate
        );
        assert_eq!(
            decide("max-age=3600", 600.0, "max-age=600", &SHARED),
            Reuse::Fresh
        );
        // max-stale widens freshness, not the client's age limit.
        assert_eq!(
            decide("max-age=1", 5.0, "max-age=2, max-stale", &SHARED),
            Reuse::MustRevalidate
        );
    }

    #[test]
    fn rfc9111_5_2_1_2_request_max_stale() {
        assert_eq!(
            decide("max-age=1", 500.0, "max-stale=1000", &SHARED),
            Reuse::StaleAllowed
        );
        assert_eq!(
            decide("max-age=1500", 2000.0, "max-stale=1000", &SHARED),
            Reuse::StaleAllowed
        );
        assert_eq!(
            decide("max-age=1500", 2500.0, "max-stale=1000", &SHARED),
            Reuse::StaleAllowed
        );
        assert_eq!(
            decide("max-age=1500", 2501.0, "max-stale=1000", &SHARED),
            Reuse::MustRevalidate
        );
        assert_eq!(
            decide("max-age=1", 1e9, "max-stale", &SHARED),
            Reuse::StaleAllowed
        );
        assert_eq!(decide("", 10.0, "max-stale", &SHARED), Reuse::StaleAllowed);
    }

    #[test]
    fn rfc9111_5_2_1_3_request_min_fresh() {
        assert_eq!(
            decide("max-age=1500", 0.0, "min-fresh=2000", &SHARED),
            Reuse::MustRevalidate
        );
        assert_eq!(
            decide("max-age=1500", 1000.0, "min-fresh=1000", &SHARED),
            Reuse::MustRevalidate
        );
        assert_eq!(
            decide("max-age=1500", 400.0, "min-fresh=1000", &SHARED),
            Reuse::Fresh
        );
        assert_eq!(
            decide("max-age=1500", 500.0, "min-fresh=1000", &SHARED),
            Reuse::MustRevalidate
        );
        // Wanting fresh for N more seconds excludes stale answers, even with max-stale.
        assert_eq!(
            decide("max-age=1", 5.0, "min-fresh=1, max-stale", &SHARED),
            Reuse::MustRevalidate
        );
    }

    #[test]
    fn rfc9111_5_2_1_4_request_no_cache_and_5_4_pragma() {
        assert_eq!(
            decide("max-age=3600", 0.0, "no-cache", &SHARED),
            Reuse::MustRevalidate
        );
        let p = RequestDirectives::from_headers(&h(&[("pragma", "no-cache")]));
        assert!(p.no_cache);
        let p = RequestDirectives::from_headers(&h(&[("Pragma", "foo, No-Cache")]));
        assert!(p.no_cache);
        // Pragma is ignored when Cache-Control is present (RFC 9111 §5.4).
        let p = RequestDirectives::from_headers(&h(&[
            ("pragma", "no-cache"),
            ("cache-control", "max-stale"),
        ]));
        assert!(!p.no_cache);
        assert_eq!(p.max_stale, Some(MaxStale::Any));
        let all = RequestDirectives::from_headers(&h(&[(
            "Cache-Control",
            "no-cache, max-age=1, min-fresh=2, max-stale=3, only-if-cached, stale-if-error=4",
        )]));
        assert_eq!(
            all,
            RequestDirectives {
                no_cache: true,
                max_age: Some(1),
                min_fresh: Some(2),
                max_stale: Some(MaxStale::Seconds(3)),
                only_if_cached: true,
                stale_if_error: Some(4),
            }
        );
        assert_eq!(
            RequestDirectives::from_headers(&[]),
            RequestDirectives::default()
        );
    }

    #[test]
    fn rfc9111_5_2_1_7_only_if_cached() {
        assert_eq!(
            decide("max-age=3600", 0.0, "only-if-cached", &SHARED),
            Reuse::Fresh
        );
        assert_eq!(
            decide("max-age=1", 5.0, "only-if-cached", &SHARED),
            Reuse::NotUsable
        );
        assert_eq!(
            decide("max-age=1", 5.0, "only-if-cached, max-stale", &SHARED),
            Reuse::StaleAllowed
        );
        assert_eq!(
            decide("no-cache, max-age=60", 0.0, "only-if-cached", &SHARED),
            Reuse::NotUsable
        );
    }

    #[test]
    fn rfc9111_5_2_2_4_response_no_cache_always_revalidates() {
        assert_eq!(
            decide("max-age=10000, no-cache", 0.0, "", &SHARED),
            Reuse::MustRevalidate
        );
        assert_eq!(
            decide("max-age=10000, No-CaChE", 0.0, "", &SHARED),
            Reuse::MustRevalidate
        );
        assert_eq!(
            decide("no-cache=\"a\", max-age=60", 0.0, "", &SHARED),
            Reuse::MustRevalidate
        );
        assert_eq!(
            decide("no-cache, max-age=1", 5.0, "max-stale", &SHARED),
            Reuse::MustRevalidate
        );
    }

    #[test]
    fn rfc9111_5_2_2_2_must_revalidate_blocks_stale() {
        assert_eq!(
            decide("max-age=10000, must-revalidate", 5.0, "", &SHARED),
            Reuse::Fresh
        );
        assert_eq!(
            decide("max-age=2, must-revalidate", 5.0, "max-stale", &SHARED),
            Reuse::MustRevalidate
        );
        assert_eq!(
            decide(
                "max-age=2, must-revalidate, stale-while-revalidate=60",
                5.0,
                "",
                &PRIVATE
            ),
            Reuse::MustRevalidate
        );
    }

    #[test]
    fn rfc9111_5_2_2_8_proxy_revalidate_shared_only() {
        let r = "max-age=2, proxy-revalidate";
        assert_eq!(decide(r, 5.0, "max-stale", &SHARED), Reuse::MustRevalidate);
        assert_eq!(decide(r, 5.0, "max-stale", &PRIVATE), Reuse::StaleAllowed);
    }

    #[test]
    fn rfc9111_5_2_2_10_s_maxage_implies_proxy_revalidate() {
        let r = "s-maxage=2, stale-while-revalidate=60";
        assert_eq!(decide(r, 5.0, "max-stale", &SHARED), Reuse::MustRevalidate);
        assert_eq!(decide(r, 5.0, "", &SHARED), Reuse::MustRevalidate);
        // In a private cache s-maxage is ignored: no freshness, but stale serving allowed.
        assert_eq!(decide(r, 5.0, "", &PRIVATE), Reuse::StaleWhileRevalidate);
    }

    #[test]
    fn rfc5861_3_stale_while_revalidate_window() {
        let r = "max-age=10, stale-while-revalidate=30";
        assert_eq!(decide(r, 5.0, "", &SHARED), Reuse::Fresh);
        assert_eq!(decide(r, 10.0, "", &SHARED), Reuse::StaleWhileRevalidate);
        assert_eq!(decide(r, 40.0, "", &SHARED), Reuse::StaleWhileRevalidate);
        assert_eq!(decide(r, 40.5, "", &SHARED), Reuse::MustRevalidate);
        assert_eq!(decide(r, 40.5, "only-if-cached", &SHARED), Reuse::NotUsable);
        assert_eq!(
            decide(r, 20.0, "only-if-cached", &SHARED),
            Reuse::StaleWhileRevalidate
        );
        // The client's own demands win over the server's permission.
        assert_eq!(decide(r, 20.0, "no-cache", &SHARED), Reuse::MustRevalidate);
        assert_eq!(
            decide(r, 20.0, "max-age=15", &SHARED),
            Reuse::MustRevalidate
        );
        assert_eq!(
            decide(r, 20.0, "min-fresh=1", &SHARED),
            Reuse::MustRevalidate
        );
        // max-stale comes first when both apply.
        assert_eq!(
            decide(r, 20.0, "max-stale=100", &SHARED),
            Reuse::StaleAllowed
        );
        for prohibited in [
            "max-age=10, stale-while-revalidate=30, must-revalidate",
            "max-age=10, stale-while-revalidate=30, proxy-revalidate",
            "max-age=10, stale-while-revalidate=30, no-cache",
            "max-age=10, s-maxage=10, stale-while-revalidate=30",
        ] {
            assert_eq!(
                decide(prohibited, 20.0, "", &SHARED),
                Reuse::MustRevalidate,
                "{prohibited}"
            );
            assert_eq!(
                stale_windows(&cc(prohibited), true),
                StaleWindows::default()
            );
        }
    }

    #[test]
    fn rfc5861_4_stale_if_error_window() {
        let sie = |resp: &str, age: f64, rq: &str, shared: bool| {
            let c = cc(resp);
            let t = times(None, None, None);
            stale_if_error_allows(
                &c,
                freshness_lifetime(&c, &t, shared),
                age,
                &req(rq),
                shared,
            )
        };
        let r = "max-age=10, stale-if-error=60";
        assert!(sie(r, 5.0, "", true));
        assert!(sie(r, 70.0, "", true));
        assert!(!sie(r, 70.5, "", true));
        assert!(!sie("max-age=10", 11.0, "", true));
        // The request may widen the window (RFC 5861 §4), not override prohibitions.
        assert!(sie("max-age=10", 11.0, "stale-if-error=5", true));
        assert!(sie(r, 100.0, "stale-if-error=100", true));
        // Regardless of the request's other freshness directives.
        assert!(sie(r, 30.0, "no-cache, max-age=0, min-fresh=100", true));
        // Fresh responses may stand in for a failure; no-cache ones never.
        assert!(sie("max-age=10", 5.0, "", true));
        assert!(!sie(
            "max-age=10, no-cache, stale-if-error=60",
            5.0,
            "",
            true
        ));
        assert!(!sie(
            "max-age=10, must-revalidate, stale-if-error=60",
            20.0,
            "",
            true
        ));
        assert!(!sie(
            "max-age=10, proxy-revalidate, stale-if-error=60",
            20.0,
            "",
            true
        ));
        assert!(sie(
            "max-age=10, proxy-revalidate, stale-if-error=60",
            20.0,
            "",
            false
        ));
        assert!(!sie("s-maxage=10, stale-if-error=60", 20.0, "", true));
        assert_eq!(
            stale_windows(
                &cc("max-age=1, stale-while-revalidate=5, stale-if-error=9"),
                true
            ),
            StaleWindows {
                while_revalidate: 5.0,
                if_error: 9.0
            }
        );
        assert_eq!(
            stale_windows(&cc("s-maxage=1, stale-if-error=9"), false).if_error,
            9.0
        );
    }

    #[test]
    fn rfc9111_5_2_1_client_refresh_can_be_turned_off() {
        let off = ReusePolicy {
            shared: true,
            honour_client_refresh: false,
        };
        for rq in ["no-cache", "max-age=0", "min-fresh=100000"] {
            assert_eq!(decide("max-age=3600", 1.0, rq, &off), Reuse::Fresh, "{rq}");
        }
        let pragma = RequestDirectives::from_headers(&h(&[("pragma", "no-cache")]));
        let c = cc("max-age=60");
        assert_eq!(reuse(&c, Some(60.0), 1.0, &pragma, &off), Reuse::Fresh);
        // Loosening and only-if-cached still apply; response no-cache still wins.
        assert_eq!(
            decide("max-age=1", 5.0, "max-stale", &off),
            Reuse::StaleAllowed
        );
        assert_eq!(
            decide("max-age=1", 5.0, "only-if-cached", &off),
            Reuse::NotUsable
        );
        assert_eq!(
            decide("max-age=60, no-cache", 1.0, "", &off),
            Reuse::MustRevalidate
        );
        assert_eq!(ReusePolicy::default(), SHARED);
    }

    #[test]
    fn assess_combines_the_steps() {
        let c = cc("max-age=100");
        let t = ResponseTimes {
            date: Some(T0 as i64 - 3),
            expires: None,
            age_header: Some(10),
            request_time: T0 - 1.0,
            response_time: T0,
        };
        let a = assess(&c, &t, T0 + 20.5, &RequestDirectives::default(), &SHARED);
        assert_eq!(a.lifetime, Some(100.0));
        assert_eq!(a.age, 31.5);
        assert_eq!(a.age_header, 31);
        assert_eq!(a.reuse, Reuse::Fresh);
        let late = assess(&c, &t, T0 + 100.0, &req("only-if-cached"), &SHARED);
        assert_eq!(late.reuse, Reuse::NotUsable);
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            -1e10..1e10f64,
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
        ]
    }

    proptest! {
        #[test]
        fn age_and_date_parsers_never_panic(
            lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4),
            now in any::<i64>(),
        ) {
            let _ = parse_age_lines(lines.iter().map(Vec::as_slice));
            let _ = parse_date_lines(lines.iter().map(Vec::as_slice), now);
            let _ = Expires::parse_lines(lines.iter().map(Vec::as_slice), now);
        }

        #[test]
        fn age_parser_reads_plain_numbers(n in 0u64..=DELTA_SECONDS_MAX) {
            prop_assert_eq!(parse_age_lines([n.to_string().as_bytes()]), Some(n));
        }

        #[test]
        fn decisions_never_panic_on_any_clock(
            req_t in any_f64(), resp_t in any_f64(), now in any_f64(),
            date in proptest::option::of(any::<i64>()),
            expires in proptest::option::of(prop_oneof![Just(Expires::Invalid), any::<i64>().prop_map(Expires::At)]),
            age in proptest::option::of(any::<u64>()),
            resp in "[a-z=0-9, -]{0,40}",
            rq in "[a-z=0-9, -]{0,40}",
            shared in any::<bool>(),
            honour in any::<bool>(),
        ) {
            let t = ResponseTimes { date, expires, age_header: age, request_time: req_t, response_time: resp_t };
            let c = cc(&resp);
            let r = req(&rq);
            let policy = ReusePolicy { shared, honour_client_refresh: honour };
            let a = assess(&c, &t, now, &r, &policy);
            prop_assert!(a.age_header <= DELTA_SECONDS_MAX);
            let _ = stale_if_error_allows(&c, a.lifetime, a.age, &r, shared);
            let _ = heuristic_freshness(200, &c, &t, date, shared, &HeuristicSettings { enabled: true, ..HeuristicSettings::default() });
            // Fresh is only ever returned for a fresh response.
            if a.reuse == Reuse::Fresh {
                prop_assert!(is_fresh(a.lifetime, a.age));
            }
            // Stale serving never happens past a prohibition.
            if matches!(a.reuse, Reuse::StaleAllowed | Reuse::StaleWhileRevalidate) {
                prop_assert!(!stale_prohibited(&c, shared));
            }
        }
    }
}
