//! The `Cache-Status` field (RFC 9211) as this cache writes and reads it: its own member
//! (`oxicache; ...`) and the `detail` tokens of a bypass.

/// Whether a `Cache-Status` field line has a member of this cache (`oxicache; ...`).
pub fn names_this_cache(line: &[u8]) -> bool {
    line.split(|&b| b == b',').any(|member| {
        let name = member.split(|&b| b == b';').next().unwrap_or_default();
        super::trim_ows(name) == b"oxicache"
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

#[cfg(test)]
mod tests {
    use super::*;

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
