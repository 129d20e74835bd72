//! Targeted cache-control fields (RFC 9213): `CDN-Cache-Control`, and the older
//! `Surrogate-Control`, which address the caches run for the origin (gateways such as
//! `CacheMiddleware`) and take the place of `Cache-Control` for them.

fn lines<'a>(hs: &'a [(&'a [u8], &'a [u8])], name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    hs.iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// The response as this cache reads it. A targeted field addressed to caches run for the
/// origin (gateways like this one) takes the place of `Cache-Control` when present:
/// `CDN-Cache-Control` (RFC 9213 §2), else `Surrogate-Control` (Edge Architecture
/// Specification; cache-tests.fyi `surrogate-*`). The targeted field is not stored.
pub fn surrogate_view(hs: &[(&[u8], &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let present = |name: &[u8]| hs.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let cdn_valid = lines(hs, b"cdn-cache-control").all(structured_directives);
    let target: Option<&[u8]> = if present(b"cdn-cache-control") && cdn_valid {
        Some(b"cdn-cache-control")
    } else if present(b"surrogate-control") {
        Some(b"surrogate-control")
    } else {
        None
    };
    let mut out = Vec::with_capacity(hs.len());
    for &(n, v) in hs {
        match target {
            None => out.push((n.to_vec(), v.to_vec())),
            Some(t) if n.eq_ignore_ascii_case(t) => {
                // `max-age=60;target` (Surrogate-Control) addresses one kind of surrogate;
                // this cache takes every target as its own (it advertises no capability).
                let members: Vec<&[u8]> = v
                    .split(|&b| b == b',')
                    .map(|m| m.split(|&b| b == b';').next().unwrap_or_default())
                    .collect();
                out.push((b"cache-control".to_vec(), members.join(&b","[..])));
            }
            Some(_) if n.eq_ignore_ascii_case(b"cache-control") => {}
            Some(_) => out.push((n.to_vec(), v.to_vec())),
        }
    }
    out
}

/// RFC 9213 §2.1: `CDN-Cache-Control` is a Structured Field Dictionary (RFC 8941); a value
/// that does not parse as one is ignored as a whole, and `Cache-Control` applies. The
/// directives it can carry take an integer or nothing, so anything else fails here.
fn structured_directives(line: &[u8]) -> bool {
    line.split(|&b| b == b',').all(|member| {
        let member = super::trim_ows(member);
        let (key, value) = match member.iter().position(|&b| b == b'=') {
            Some(i) => (&member[..i], Some(&member[i + 1..])),
            None => (member, None),
        };
        let key_ok = key
            .first()
            .is_some_and(|c| c.is_ascii_lowercase() || *c == b'*')
            && key
                .iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-.*".contains(c));
        let value_ok = value.is_none_or(|v| {
            let digits = v.strip_prefix(b"-").unwrap_or(v);
            !digits.is_empty() && digits.len() <= 15 && digits.iter().all(u8::is_ascii_digit)
        });
        key_ok && value_ok
    })
}

/// Targeted cache fields this cache consumes.
pub fn is_targeted(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"surrogate-control")
        || name.eq_ignore_ascii_case(b"cdn-cache-control")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_headers as h;

    #[test]
    fn rfc9213_cdn_cache_control_replaces_cache_control() {
        let hs = h(&[
            ("cache-control", "no-store"),
            ("cdn-cache-control", "max-age=60"),
        ]);
        let view = surrogate_view(&hs);
        assert_eq!(
            view,
            vec![(b"cache-control".to_vec(), b"max-age=60".to_vec())]
        );
    }

    #[test]
    fn rfc9213_2_1_an_invalid_dictionary_is_ignored_as_a_whole() {
        let hs = h(&[
            ("cache-control", "max-age=5"),
            ("cdn-cache-control", "max-age=\"60\""),
        ]);
        let view = surrogate_view(&hs);
        assert!(view.contains(&(b"cache-control".to_vec(), b"max-age=5".to_vec())));
        assert!(is_targeted(b"CDN-Cache-Control") && !is_targeted(b"cache-control"));
    }

    #[test]
    fn surrogate_control_targets_are_taken_as_ours() {
        let hs = h(&[("surrogate-control", "max-age=30;edge, no-store;other")]);
        let view = surrogate_view(&hs);
        assert_eq!(
            view,
            vec![(b"cache-control".to_vec(), b"max-age=30, no-store".to_vec())]
        );
    }
}
