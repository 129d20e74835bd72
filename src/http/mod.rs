//! Pure-Rust HTTP caching rules. Every rule cites its RFC section.

pub mod cache_control;
pub mod cache_status;
pub mod conditional;
pub mod dates;
pub mod etag;
pub mod freshness;
pub mod invalidation;
pub mod last_modified;
pub mod reply;
pub mod request;
pub mod response;
pub mod storable;
pub mod targeted;
pub mod vary;

/// Strips optional whitespace, SP and HTAB (RFC 9110 §5.6.3), from both ends of a field part.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Header pairs from string pairs, for the tests of this module's parsers.
#[cfg(test)]
pub(crate) fn test_headers<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<(&'a [u8], &'a [u8])> {
    pairs
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect()
}
