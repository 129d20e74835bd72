//! The query string as a key holds it: as sent (the default), with its parameters sorted by
//! name, or with only the parameters the route declares.
//!
//! The query is opaque to HTTP (RFC 3986 §3.4); what makes two query strings equivalent is
//! how the application reads them. FastAPI reads them as `application/x-www-form-urlencoded`
//! (WHATWG URL §5.1, through Python's `parse_qsl`): `&`-separated pairs, `+` and `%XX`
//! decoded in names, empty pairs skipped, repeated names kept in order. Under that reading:
//!
//! - sorting pairs by decoded name, stably (repeated names keep their relative order, so a
//!   `list[int]` parameter gets the same list) cannot change what a declared parameter
//!   receives: `?a=1&b=2` and `?b=2&a=1` are one entry;
//! - dropping pairs whose name no parameter declares cannot either: `?page=2&junk=1` is the
//!   entry of `?page=2`.
//!
//! Values stay as sent (never decoded): `?a=%31` and `?a=1` remain two entries, which costs
//! a duplicate entry at worst, never a wrong answer.

use std::borrow::Cow;

/// How a route's key holds the query string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryKey {
    /// As sent, byte for byte.
    Raw,
    /// Pairs sorted by decoded name (stable), empty pairs dropped.
    Sorted,
    /// Only the pairs whose decoded name is one of these (as UTF-8 bytes), in the order
    /// sent, sorted by name as in `Sorted`.
    Declared(Vec<Vec<u8>>),
}

/// `raw` as the key holds it under `mode`.
pub fn key_query<'a>(raw: &'a [u8], mode: &QueryKey) -> Cow<'a, [u8]> {
    if *mode == QueryKey::Raw || raw.is_empty() {
        return Cow::Borrowed(raw);
    }
    let mut pairs: Vec<(Vec<u8>, &[u8])> = raw
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let name = pair.split(|&b| b == b'=').next().unwrap_or(pair);
            (decode_name(name), pair)
        })
        .collect();
    if let QueryKey::Declared(names) = mode {
        pairs.retain(|(name, _)| names.iter().any(|n| n == name));
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0)); // stable: repeated names keep their order
    let mut out = Vec::with_capacity(raw.len());
    for (i, (_, pair)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(pair);
    }
    Cow::Owned(out)
}

/// A name as `application/x-www-form-urlencoded` decodes it: `+` is a space, `%XX` a byte
/// (a `%` not followed by two hex digits stays as it is).
fn decode_name(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        match name[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < name.len() => match (hex(name[i + 1]), hex(name[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn declared(names: &[&str]) -> QueryKey {
        QueryKey::Declared(names.iter().map(|n| n.as_bytes().to_vec()).collect())
    }

    #[test]
    fn raw_is_untouched() {
        assert_eq!(&*key_query(b"b=2&a=1&&", &QueryKey::Raw), b"b=2&a=1&&");
    }

    #[test]
    fn sorted_orders_names_and_keeps_repeated_values_in_order() {
        let got = key_query(b"b=2&a=3&b=1&&a=1", &QueryKey::Sorted);
        assert_eq!(&*got, b"a=3&a=1&b=2&b=1");
        assert_eq!(
            key_query(b"b=2&a=1", &QueryKey::Sorted),
            key_query(b"a=1&b=2", &QueryKey::Sorted)
        );
    }

    #[test]
    fn sorted_compares_decoded_names_but_keeps_the_bytes_sent() {
        assert_eq!(&*key_query(b"b=1&%61=2", &QueryKey::Sorted), b"%61=2&b=1");
        assert_eq!(&*key_query(b"a+b=1&a=2", &QueryKey::Sorted), b"a=2&a+b=1");
    }

    #[test]
    fn values_are_never_decoded() {
        assert_ne!(
            key_query(b"a=%31", &QueryKey::Sorted),
            key_query(b"a=1", &QueryKey::Sorted)
        );
    }

    #[test]
    fn declared_drops_undeclared_names() {
        let mode = declared(&["page", "tag"]);
        assert_eq!(
            &*key_query(b"junk=1&page=2&tag=x&tag=y", &mode),
            b"page=2&tag=x&tag=y"
        );
        assert_eq!(
            key_query(b"page=2&junk=1", &mode),
            key_query(b"page=2", &mode)
        );
        assert_eq!(&*key_query(b"junk", &mode), b"");
    }

    #[test]
    fn declared_matches_encoded_and_blank_names() {
        let mode = declared(&["a b", "flag"]);
        assert_eq!(&*key_query(b"a%20b=1&flag&x=2", &mode), b"a%20b=1&flag");
        assert_eq!(&*key_query(b"a+b=1", &mode), b"a+b=1");
    }

    fn pairs(query: &[u8]) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = query
            .split(|&b| b == b'&')
            .filter(|p| !p.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        out.sort();
        out
    }

    proptest! {
        /// Sorting keeps every pair (as sent) and only reorders them; applying it twice
        /// changes nothing; the order of different names sent does not matter.
        #[test]
        fn sorted_reorders_and_is_idempotent(
            names in proptest::collection::vec("[a-c%+2]{0,3}", 0..6),
            values in proptest::collection::vec("[0-9%]{0,2}", 6),
        ) {
            let query: Vec<u8> = names
                .iter()
                .zip(&values)
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes();
            let once = key_query(&query, &QueryKey::Sorted).into_owned();
            prop_assert_eq!(pairs(&once), pairs(&query));
            prop_assert_eq!(key_query(&once, &QueryKey::Sorted).into_owned(), once.clone());
            let mut reversed: Vec<&[u8]> = query.split(|&b| b == b'&').collect();
            reversed.reverse();
            let reversed = reversed.join(&b'&');
            let distinct = {
                let mut seen: Vec<Vec<u8>> = names.iter().map(|n| decode_name(n.as_bytes())).collect();
                let all = seen.len();
                seen.sort();
                seen.dedup();
                seen.len() == all
            };
            if distinct {
                prop_assert_eq!(key_query(&reversed, &QueryKey::Sorted).into_owned(), once);
            }
        }

        /// Declared keeps exactly the pairs whose decoded name is declared.
        #[test]
        fn declared_keeps_only_declared_pairs(query in "[a-c=&%+0-9]{0,24}") {
            let mode = declared(&["a", "b "]);
            let kept = key_query(query.as_bytes(), &mode).into_owned();
            let expected: Vec<Vec<u8>> = pairs(query.as_bytes())
                .into_iter()
                .filter(|p| {
                    let name = p.split(|&b| b == b'=').next().unwrap_or(p);
                    let name = decode_name(name);
                    name == b"a" || name == b"b "
                })
                .collect();
            prop_assert_eq!(pairs(&kept), expected);
        }
    }

    #[test]
    fn broken_escapes_stay_literal() {
        assert_eq!(decode_name(b"%"), b"%");
        assert_eq!(decode_name(b"%4"), b"%4");
        assert_eq!(decode_name(b"%zz"), b"%zz");
        assert_eq!(decode_name(b"%41%"), b"A%");
    }
}
