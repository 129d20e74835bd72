//! The `Cache-Status` field (RFC 9211) as this cache writes and reads it: its own member
//! (`oxicache; ...`), built in one place for both ways in, and the `detail` tokens of a bypass.

/// The name of this cache's member (RFC 9211 §2: each cache adds a member named after itself).
pub const CACHE_NAME: &[u8] = b"oxicache";

/// Why the request went forward towards the origin (RFC 9211 §2.2, the `fwd` parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forward {
    /// The cache was configured not to handle this request.
    Bypass,
    /// No stored response for the target URI.
    UriMiss,
    /// No stored response could be used (none stored, or none usable).
    Miss,
    /// A stored response was fresh, but the request's directives refused it.
    Request,
    /// The stored response was stale, and had to be validated or replaced.
    Stale,
}

impl Forward {
    /// The parameter's token.
    pub fn as_str(self) -> &'static str {
        match self {
            Forward::Bypass => "bypass",
            Forward::UriMiss => "uri-miss",
            Forward::Miss => "miss",
            Forward::Request => "request",
            Forward::Stale => "stale",
        }
    }
}

/// This cache's member of a `Cache-Status` field (RFC 9211 §2), written by [`CacheStatus::write`]
/// with its parameters in the order the RFC defines them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStatus<'a> {
    /// `hit`: answered from the cache without going forward (§2.1).
    pub hit: bool,
    /// `fwd`: why the request went forward (§2.2).
    pub fwd: Option<Forward>,
    /// `fwd-status`: the status of the response that came back from forward (§2.3).
    pub fwd_status: Option<u16>,
    /// `ttl`: the response's freshness left, in seconds, negative once stale (§2.4).
    pub ttl: Option<i64>,
    /// `stored`: the response that came back was stored (§2.5).
    pub stored: bool,
    /// `detail`: more about the outcome (§2.8); a fixed token, never request material.
    pub detail: Option<&'a str>,
}

impl<'a> CacheStatus<'a> {
    /// A hit with `ttl` seconds of freshness left (RFC 9211 §2.1, §2.4).
    pub fn hit(ttl: i64) -> Self {
        CacheStatus {
            hit: true,
            ttl: Some(ttl),
            ..CacheStatus::default()
        }
    }

    /// A request that went forward, for `fwd` (RFC 9211 §2.2).
    pub fn forward(fwd: Forward) -> Self {
        CacheStatus {
            fwd: Some(fwd),
            ..CacheStatus::default()
        }
    }

    /// With `stored` (RFC 9211 §2.5).
    pub fn stored(self) -> Self {
        CacheStatus {
            stored: true,
            ..self
        }
    }

    /// With `fwd-status` (RFC 9211 §2.3).
    pub fn fwd_status(self, status: u16) -> Self {
        CacheStatus {
            fwd_status: Some(status),
            ..self
        }
    }

    /// With `detail` (RFC 9211 §2.8).
    pub fn detail(self, detail: &'a str) -> Self {
        CacheStatus {
            detail: Some(detail),
            ..self
        }
    }

    /// Calls `put` with the member's text in pieces, in order (`oxicache`, `; hit`, `; ttl=`,
    /// `42`...), so that a caller can write them where it likes.
    #[inline]
    pub fn write_with(&self, mut put: impl FnMut(&[u8])) {
        put(CACHE_NAME);
        if self.hit {
            put(b"; hit");
        }
        if let Some(fwd) = self.fwd {
            put(b"; fwd=");
            put(fwd.as_str().as_bytes());
        }
        if let Some(status) = self.fwd_status {
            put(b"; fwd-status=");
            put(itoa::Buffer::new().format(status).as_bytes());
        }
        if let Some(ttl) = self.ttl {
            put(b"; ttl=");
            put(itoa::Buffer::new().format(ttl).as_bytes());
        }
        if self.stored {
            put(b"; stored");
        }
        if let Some(detail) = self.detail {
            put(b"; detail=");
            put(detail.as_bytes());
        }
    }

    /// Appends the member to `out`: `oxicache; hit; ttl=42`, `oxicache; fwd=miss; stored`...
    pub fn write(&self, out: &mut Vec<u8>) {
        self.write_with(|piece| out.extend_from_slice(piece));
    }

    /// The member as a field value.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48);
        self.write(&mut out);
        out
    }
}

/// The `ttl` parameter for `left` seconds of freshness (RFC 9211 §2.4: "the response's
/// remaining freshness lifetime", an integer, negative once stale): the freshness lifetime
/// minus the current age, rounded down; `-ceil(staleness)` for a stale response.
pub fn ttl_seconds(left: f64) -> i64 {
    // `as` saturates and maps NaN to 0.
    left.floor() as i64
}

/// Whether a `Cache-Status` field line has a member of this cache (`oxicache; ...`).
pub fn names_this_cache(line: &[u8]) -> bool {
    line.split(|&b| b == b',').any(|member| {
        let name = member.split(|&b| b == b';').next().unwrap_or_default();
        super::trim_ows(name) == CACHE_NAME
    })
}

/// The `detail` of a bypass label (RFC 9211 §2.8): the reason as the decorator names it
/// (`method` for every method but GET and HEAD), and only ever a fixed token.
pub fn bypass_detail(reason: &str) -> &str {
    let token = !reason.is_empty()
        && reason
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    match reason {
        "unsafe" => "method",
        _ if token => reason,
        _ => "other",
    }
}

/// The member labelling a request the cache passed to the app untouched (RFC 9211 §2.2
/// `fwd=bypass`, §2.8 `detail` the reason, one of the fixed tokens of [`bypass_detail`]).
pub fn bypass(reason: &str) -> CacheStatus<'_> {
    CacheStatus::forward(Forward::Bypass).detail(bypass_detail(reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(status: CacheStatus<'_>) -> String {
        String::from_utf8(status.to_vec()).unwrap()
    }

    #[test]
    fn rfc9211_2_1_and_2_4_a_hit_says_how_fresh_it_is() {
        assert_eq!(text(CacheStatus::hit(42)), "oxicache; hit; ttl=42");
        assert_eq!(text(CacheStatus::hit(0)), "oxicache; hit; ttl=0");
    }

    #[test]
    fn rfc9211_2_4_a_stale_hit_has_a_negative_ttl_and_says_why() {
        let status = CacheStatus::hit(ttl_seconds(60.0 - 63.2)).detail("stale-while-revalidate");
        assert_eq!(
            text(status),
            "oxicache; hit; ttl=-4; detail=stale-while-revalidate"
        );
    }

    #[test]
    fn rfc9211_2_4_ttl_is_the_freshness_left_rounded_down() {
        assert_eq!(ttl_seconds(59.9), 59);
        assert_eq!(ttl_seconds(0.0), 0);
        // Stale by 0.1 s: ceil(0.1) = 1 second past.
        assert_eq!(ttl_seconds(-0.1), -1);
        assert_eq!(ttl_seconds(-3.0), -3);
        assert_eq!(ttl_seconds(f64::NAN), 0);
        assert_eq!(ttl_seconds(f64::INFINITY), i64::MAX);
    }

    #[test]
    fn rfc9211_2_2_and_2_5_a_forwarded_request_says_why_and_whether_it_was_stored() {
        assert_eq!(
            text(CacheStatus::forward(Forward::Miss).stored()),
            "oxicache; fwd=miss; stored"
        );
        assert_eq!(
            text(CacheStatus::forward(Forward::Request).detail("too-large")),
            "oxicache; fwd=request; detail=too-large"
        );
        assert_eq!(
            text(CacheStatus::forward(Forward::UriMiss)),
            "oxicache; fwd=uri-miss"
        );
    }

    #[test]
    fn rfc9211_2_3_a_validated_response_carries_the_forward_status() {
        assert_eq!(
            text(
                CacheStatus::forward(Forward::Stale)
                    .fwd_status(304)
                    .stored()
            ),
            "oxicache; fwd=stale; fwd-status=304; stored"
        );
        assert_eq!(
            text(CacheStatus::forward(Forward::Request).fwd_status(304)),
            "oxicache; fwd=request; fwd-status=304"
        );
    }

    #[test]
    fn rfc9211_2_2_a_bypass_names_its_reason() {
        assert_eq!(
            text(bypass("credentials")),
            "oxicache; fwd=bypass; detail=credentials"
        );
        assert_eq!(
            text(bypass("unsafe")),
            "oxicache; fwd=bypass; detail=method"
        );
        assert_eq!(
            text(bypass("X; evil")),
            "oxicache; fwd=bypass; detail=other"
        );
    }

    #[test]
    fn rfc9211_2_the_member_written_is_recognised_as_ours() {
        assert!(names_this_cache(&CacheStatus::hit(1).to_vec()));
    }

    #[test]
    fn rfc9211_2_a_member_named_oxicache_is_ours() {
        assert!(names_this_cache(b"cdn; hit, oxicache; fwd=miss"));
        assert!(names_this_cache(b" oxicache ;hit"));
        assert!(!names_this_cache(b"oxicache-other; hit"));
    }

    #[test]
    fn rfc9211_2_8_details_are_fixed_tokens() {
        assert_eq!(bypass_detail("unsafe"), "method");
        assert_eq!(bypass_detail("credentials"), "credentials");
        assert_eq!(bypass_detail("Bad Reason"), "other");
        assert_eq!(bypass_detail(""), "other");
    }
}
