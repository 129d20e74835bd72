//! Invalidation after a successful unsafe request (RFC 9111 §4.4).
//!
//! A cache must invalidate the target URI when an unsafe method (including
//! one whose safety is unknown) gets a non-error response, and may
//! invalidate the URIs in `Location` and `Content-Location` too, but only
//! when they share the target's origin (RFC 9111 §4.4), which prevents one
//! site from evicting another's entries. URI references are resolved with
//! RFC 3986 §5.2.

/// One URI whose stored responses are to be invalidated. It always has the
/// request's origin, so only the path and query are given, as raw bytes
/// (percent-encoding untouched) to compare with the raw path and query the
/// cache keys on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidationTarget {
    /// The path; `/` for an empty path (RFC 9110 §4.2.3).
    pub path: Vec<u8>,
    /// The query, without `?`; `None` when the URI has no `?`.
    pub query: Option<Vec<u8>>,
}

/// Safe methods (RFC 9110 §9.2.1): GET, HEAD, OPTIONS, TRACE. Method names
/// are case-sensitive (RFC 9110 §9.1), so `get` is an unknown method, and
/// unknown methods are not safe.
pub fn is_safe_method(method: &[u8]) -> bool {
    matches!(method, b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE")
}

/// The components of a URI reference (RFC 3986 Appendix B), fragment
/// dropped.
#[derive(Clone, Copy, Debug)]
struct Parts<'a> {
    scheme: Option<&'a [u8]>,
    authority: Option<&'a [u8]>,
    path: &'a [u8],
    query: Option<&'a [u8]>,
}

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986 §3.1).
fn is_scheme(s: &[u8]) -> bool {
    match s.split_first() {
        Some((first, rest)) => {
            first.is_ascii_alphabetic()
                && rest
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        }
        None => false,
    }
}

/// Splits a URI reference into its components (RFC 3986 Appendix B). A
/// colon before any `/`, `?` or `#` starts a scheme only when what precedes
/// it is a valid scheme (RFC 3986 §3.1, §4.2).
fn split(uri: &[u8]) -> Parts<'_> {
    let uri = match uri.iter().position(|&b| b == b'#') {
        Some(i) => uri.get(..i).unwrap_or_default(),
        None => uri,
    };
    let mut rest = uri;
    let mut scheme = None;
    if let Some(i) = rest.iter().position(|&b| matches!(b, b':' | b'/' | b'?')) {
        if rest.get(i) == Some(&b':') {
            let candidate = rest.get(..i).unwrap_or_default();
            if is_scheme(candidate) {
                scheme = Some(candidate);
                rest = rest.get(i + 1..).unwrap_or_default();
            }
        }
    }
    let mut authority = None;
    if let Some(after) = rest.strip_prefix(b"//") {
        let end = after
            .iter()
            .position(|&b| matches!(b, b'/' | b'?'))
            .unwrap_or(after.len());
        authority = after.get(..end);
        rest = after.get(end..).unwrap_or_default();
    }
    let (path, query) = match rest.iter().position(|&b| b == b'?') {
        Some(i) => (rest.get(..i).unwrap_or_default(), rest.get(i + 1..)),
        None => (rest, None),
    };
    Parts {
        scheme,
        authority,
        path,
        query,
    }
}

/// `remove_dot_segments` (RFC 3986 §5.2.4).
fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    let mut input = path;
    let mut output: Vec<u8> = Vec::with_capacity(path.len());
    let pop_segment = |output: &mut Vec<u8>| {
        let cut = output.iter().rposition(|&b| b == b'/').unwrap_or(0);
        output.truncate(cut);
    };
    while !input.is_empty() {
        if let Some(r) = input.strip_prefix(b"../") {
            input = r; // A
        } else if let Some(r) = input.strip_prefix(b"./") {
            input = r; // A
        } else if input.starts_with(b"/./") {
            input = input.get(2..).unwrap_or_default(); // B: "/./" → "/"
        } else if input == b"/." {
            input = b"/"; // B
        } else if input.starts_with(b"/../") {
            input = input.get(3..).unwrap_or_default(); // C: "/../" → "/"
            pop_segment(&mut output);
        } else if input == b"/.." {
            input = b"/"; // C
            pop_segment(&mut output);
        } else if input == b"." || input == b".." {
            input = b""; // D
        } else {
            // E: move the first segment, with its leading "/", to the output.
            let start = usize::from(input.first() == Some(&b'/'));
            let end = input
                .iter()
                .skip(start)
                .position(|&b| b == b'/')
                .map_or(input.len(), |i| i + start);
            output.extend_from_slice(input.get(..end).unwrap_or_default());
            input = input.get(end..).unwrap_or_default();
        }
    }
    output
}

/// A resolved URI: owned components.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Resolved {
    scheme: Option<Vec<u8>>,
    authority: Option<Vec<u8>>,
    path: Vec<u8>,
    query: Option<Vec<u8>>,
}

/// Resolves a reference against a base (RFC 3986 §5.2.2, strict), with
/// `merge` of RFC 3986 §5.2.3.
fn resolve(base: &Parts<'_>, r: &Parts<'_>) -> Resolved {
    let owned = |s: Option<&[u8]>| s.map(<[u8]>::to_vec);
    if r.scheme.is_some() {
        return Resolved {
            scheme: owned(r.scheme),
            authority: owned(r.authority),
            path: remove_dot_segments(r.path),
            query: owned(r.query),
        };
    }
    let (authority, path, query) = if r.authority.is_some() {
        (
            owned(r.authority),
            remove_dot_segments(r.path),
            owned(r.query),
        )
    } else if r.path.is_empty() {
        (
            owned(base.authority),
            base.path.to_vec(),
            owned(r.query.or(base.query)),
        )
    } else if r.path.starts_with(b"/") {
        (
            owned(base.authority),
            remove_dot_segments(r.path),
            owned(r.query),
        )
    } else {
        let mut merged = if base.authority.is_some() && base.path.is_empty() {
            b"/".to_vec()
        } else {
            let cut = base
                .path
                .iter()
                .rposition(|&b| b == b'/')
                .map_or(0, |i| i + 1);
            base.path.get(..cut).unwrap_or_default().to_vec()
        };
        merged.extend_from_slice(r.path);
        (
            owned(base.authority),
            remove_dot_segments(&merged),
            owned(r.query),
        )
    };
    Resolved {
        scheme: owned(base.scheme),
        authority,
        path,
        query,
    }
}

/// The origin of a URI (RFC 9110 §4.3.1): scheme and host compared
/// case-insensitively, the port defaulted for http/https (and ws/wss) and
/// compared as a number, userinfo ignored (RFC 9110 §4.2.3, RFC 3986
/// §6.2.2, §6.2.3). `None` without a scheme and authority, or with an
/// unparseable port.
fn origin(
    scheme: Option<&[u8]>,
    authority: Option<&[u8]>,
) -> Option<(Vec<u8>, Vec<u8>, Option<u32>)> {
    let scheme = scheme?.to_ascii_lowercase();
    let authority = authority?;
    let host_port = match authority.iter().rposition(|&b| b == b'@') {
        Some(i) => authority.get(i + 1..).unwrap_or_default(),
        None => authority,
    };
    let (host, port) = if host_port.starts_with(b"[") {
        let close = host_port.iter().position(|&b| b == b']')?;
        let rest = host_port.get(close + 1..).unwrap_or_default();
        let port = match rest {
            [] => None,
            [b':', p @ ..] => Some(p),
            _ => return None,
        };
        (host_port.get(..=close).unwrap_or_default(), port)
    } else {
        match host_port.iter().rposition(|&b| b == b':') {
            Some(i) => (
                host_port.get(..i).unwrap_or_default(),
                host_port.get(i + 1..),
            ),
            None => (host_port, None),
        }
    };
    let default = match scheme.as_slice() {
        b"http" | b"ws" => Some(80),
        b"https" | b"wss" => Some(443),
        _ => None,
    };
    let port = match port {
        None | Some([]) => default,
        Some(p) if p.len() <= 9 && p.iter().all(u8::is_ascii_digit) => {
            Some(p.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')))
        }
        Some(_) => return None,
    };
    Some((scheme, host.to_ascii_lowercase(), port))
}

/// A URI reference as a header carries it: visible ASCII only (RFC 3986
/// §2; RFC 9110 §5.5 allows more in field values, but not in a URI).
fn is_uri_text(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| (0x21..=0x7E).contains(&b))
}

/// The URIs to invalidate after a response to `method` with `status`
/// (RFC 9111 §4.4); empty when nothing is to be invalidated.
///
/// - Only for an unsafe method, one that is not GET, HEAD, OPTIONS or TRACE
///   ([`is_safe_method`]; unknown methods count as unsafe, RFC 9111 §4.4
///   "including methods whose safety is unknown"), and only for a
///   non-error final status, 2xx or 3xx (RFC 9111 §4.4).
/// - The target URI (`request_uri`, absolute like `https://h/p?q`, or just
///   the path and query `/p?q`) is always the first target, its path and
///   query as received.
/// - `Location` and `Content-Location` (field values, SP/HTAB around them
///   ignored) are resolved against the target URI (RFC 3986 §5.2, which
///   also removes dot segments) and added when their origin is the target's
///   (RFC 9111 §4.4). A relative reference always is. An absolute one is
///   compared by scheme, host and port ([`RFC 9110 §4.3.1`]); when
///   `request_uri` has no origin (path form), absolute references are not
///   used, since same-origin cannot be shown. Values that are not URI text
///   (empty, spaces, control or non-ASCII bytes) are skipped: invalidating
///   them is a MAY, and guessing could invalidate the wrong entry.
///
/// Duplicates are removed; the order is target, Location, Content-Location.
///
/// [`RFC 9110 §4.3.1`]: https://www.rfc-editor.org/rfc/rfc9110#section-4.3.1
pub fn invalidation_targets(
    method: &[u8],
    status: u16,
    request_uri: &[u8],
    location: Option<&[u8]>,
    content_location: Option<&[u8]>,
) -> Vec<InvalidationTarget> {
    if is_safe_method(method) || !(200..400).contains(&status) {
        return Vec::new();
    }
    let base = split(crate::http::trim_ows(request_uri));
    let base_origin = origin(base.scheme, base.authority);
    let target_path = if base.path.is_empty() {
        b"/".to_vec()
    } else {
        base.path.to_vec()
    };
    let mut targets = vec![InvalidationTarget {
        path: target_path,
        query: base.query.map(<[u8]>::to_vec),
    }];
    for value in [location, content_location].into_iter().flatten() {
        let value = crate::http::trim_ows(value);
        if !is_uri_text(value) {
            continue;
        }
        let reference = split(value);
        let resolved = resolve(&base, &reference);
        let same_origin = if reference.scheme.is_none() && reference.authority.is_none() {
            // Relative reference: it inherits the target's origin.
            true
        } else {
            base_origin.is_some()
                && origin(resolved.scheme.as_deref(), resolved.authority.as_deref()) == base_origin
        };
        if !same_origin {
            continue;
        }
        let target = InvalidationTarget {
            path: if resolved.path.is_empty() {
                b"/".to_vec()
            } else {
                resolved.path
            },
            query: resolved.query,
        };
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(path: &str, query: Option<&str>) -> InvalidationTarget {
        InvalidationTarget {
            path: path.as_bytes().to_vec(),
            query: query.map(|q| q.as_bytes().to_vec()),
        }
    }

    fn run(
        method: &str,
        status: u16,
        uri: &str,
        loc: Option<&str>,
        cl: Option<&str>,
    ) -> Vec<InvalidationTarget> {
        invalidation_targets(
            method.as_bytes(),
            status,
            uri.as_bytes(),
            loc.map(str::as_bytes),
            cl.map(str::as_bytes),
        )
    }

    #[test]
    fn rfc9111_4_4_unsafe_methods_invalidate_the_target() {
        for m in ["POST", "PUT", "PATCH", "DELETE", "M-SEARCH", "get", "FOO"] {
            assert_eq!(
                run(m, 200, "https://a.example/x?y=1", None, None),
                vec![t("/x", Some("y=1"))],
                "{m}"
            );
        }
        for m in ["GET", "HEAD", "OPTIONS", "TRACE"] {
            assert!(
                run(m, 200, "https://a.example/x", Some("/y"), None).is_empty(),
                "{m}"
            );
            assert!(is_safe_method(m.as_bytes()));
        }
    }

    #[test]
    fn rfc9111_4_4_only_non_error_statuses() {
        for ok in [200, 201, 204, 299, 301, 303, 399] {
            assert!(!run("POST", ok, "/x", None, None).is_empty(), "{ok}");
        }
        for err in [100, 101, 199, 400, 404, 500, 503, 0, 999] {
            assert!(run("POST", err, "/x", None, None).is_empty(), "{err}");
        }
    }

    #[test]
    fn rfc9111_4_4_location_and_content_location_same_origin() {
        let got = run(
            "POST",
            201,
            "https://a.example/items?x",
            Some("/items/7"),
            Some("https://A.EXAMPLE:443/items/7/v?full"),
        );
        assert_eq!(
            got,
            vec![
                t("/items", Some("x")),
                t("/items/7", None),
                t("/items/7/v", Some("full"))
            ]
        );
        // Relative references resolve against the target URI (RFC 3986 §5.2).
        let got = run(
            "PUT",
            200,
            "http://a.example/a/b/c?q",
            Some("d"),
            Some("../e?f#frag"),
        );
        assert_eq!(
            got,
            vec![
                t("/a/b/c", Some("q")),
                t("/a/b/d", None),
                t("/a/e", Some("f"))
            ]
        );
        // Network-path reference on the same host.
        let got = run(
            "PUT",
            200,
            "http://a.example/a",
            Some("//a.example:80/z"),
            None,
        );
        assert_eq!(got, vec![t("/a", None), t("/z", None)]);
    }

    #[test]
    fn rfc9111_4_4_other_origins_never_invalidated() {
        for other in [
            "https://b.example/items/7",
            "http://a.example/items/7",
            "https://a.example:8443/items/7",
            "//b.example/x",
            "https://a.example.evil/x",
            "https://a.example:x/x",
            "mailto:a@a.example",
        ] {
            let got = run(
                "POST",
                200,
                "https://a.example/items",
                Some(other),
                Some(other),
            );
            assert_eq!(got, vec![t("/items", None)], "{other}");
        }
        // Userinfo is not part of the origin; the default port is.
        let got = run(
            "POST",
            200,
            "https://a.example/i",
            Some("https://u:p@a.example:/j"),
            None,
        );
        assert_eq!(got, vec![t("/i", None), t("/j", None)]);
        // With a path-form target, absolute references cannot be shown same-origin.
        assert_eq!(
            run("POST", 200, "/i", Some("https://a.example/j"), Some("k")),
            vec![t("/i", None), t("/k", None)]
        );
    }

    #[test]
    fn rfc9110_4_3_1_ipv6_and_ports() {
        let got = run(
            "POST",
            200,
            "http://[::1]:8080/a",
            Some("http://[::1]:8080/b"),
            Some("http://[::1]/c"),
        );
        assert_eq!(got, vec![t("/a", None), t("/b", None)]);
        assert_eq!(
            run("POST", 200, "http://[::1/a", Some("http://[::1/b"), None),
            vec![t("/a", None)]
        );
        let got = run(
            "POST",
            200,
            "http://a.example:080/a",
            Some("http://a.example/b"),
            None,
        );
        assert_eq!(got, vec![t("/a", None), t("/b", None)]);
        let got = run(
            "POST",
            200,
            "foo://h/a",
            Some("foo://H/b"),
            Some("foo://h:1/c"),
        );
        assert_eq!(got, vec![t("/a", None), t("/b", None)]);
    }

    #[test]
    fn rfc3986_5_4_reference_resolution_examples() {
        // The normal and abnormal examples of RFC 3986 §5.4 (same-origin ones).
        let base = "http://a/b/c/d;p?q";
        for (r, path, query) in [
            ("g", "/b/c/g", None),
            ("./g", "/b/c/g", None),
            ("g/", "/b/c/g/", None),
            ("/g", "/g", None),
            ("?y", "/b/c/d;p", Some("y")),
            ("g?y", "/b/c/g", Some("y")),
            ("#s", "/b/c/d;p", Some("q")),
            ("g#s", "/b/c/g", None),
            (";x", "/b/c/;x", None),
            ("g;x?y#s", "/b/c/g;x", Some("y")),
            (".", "/b/c/", None),
            ("./", "/b/c/", None),
            ("..", "/b/", None),
            ("../", "/b/", None),
            ("../g", "/b/g", None),
            ("../..", "/", None),
            ("../../", "/", None),
            ("../../g", "/g", None),
            ("../../../g", "/g", None),
            ("/./g", "/g", None),
            ("/../g", "/g", None),
            ("g.", "/b/c/g.", None),
            (".g", "/b/c/.g", None),
            ("g..", "/b/c/g..", None),
            ("..g", "/b/c/..g", None),
            ("./../g", "/b/g", None),
            ("./g/.", "/b/c/g/", None),
            ("g/./h", "/b/c/g/h", None),
            ("g/../h", "/b/c/h", None),
            ("g;x=1/./y", "/b/c/g;x=1/y", None),
            ("g;x=1/../y", "/b/c/y", None),
            ("g?y/./x", "/b/c/g", Some("y/./x")),
        ] {
            let got = run("POST", 200, base, Some(r), None);
            let want = t(path, query);
            if want == t("/b/c/d;p", Some("q")) {
                assert_eq!(got.len(), 1, "{r}");
            } else {
                assert_eq!(got.get(1), Some(&want), "{r}");
            }
        }
        // Strict parsing (RFC 3986 §5.4.2): "http:g" has no authority, so no origin.
        assert_eq!(run("POST", 200, base, Some("http:g"), None).len(), 1);
    }

    #[test]
    fn target_kept_raw_and_invalid_references_skipped() {
        // The target is not normalised: the router may tell these apart.
        assert_eq!(
            run("DELETE", 204, "https://h/a/../b%2F?", None, None),
            vec![t("/a/../b%2F", Some(""))]
        );
        assert_eq!(
            run("DELETE", 204, "https://h", None, None),
            vec![t("/", None)]
        );
        assert_eq!(run("DELETE", 204, "", None, None), vec![t("/", None)]);
        for bad in ["", " ", "/a b", "/caf\u{e9}", "/a\0", "/a\r\n"] {
            assert_eq!(
                run("POST", 200, "https://h/x", Some(bad), None).len(),
                1,
                "{bad:?}"
            );
        }
        assert_eq!(
            run("POST", 200, "https://h/x", Some(" /y\t"), None).len(),
            2
        );
        // Duplicates collapse.
        assert_eq!(
            run("POST", 200, "https://h/x", Some("/x"), Some("https://h/x")).len(),
            1
        );
    }

    proptest! {
        #[test]
        fn never_panics(
            method in "[A-Z-]{0,8}",
            status in any::<u16>(),
            uri in proptest::collection::vec(any::<u8>(), 0..48),
            loc in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..48)),
            cl in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..48)),
        ) {
            let got = invalidation_targets(method.as_bytes(), status, &uri, loc.as_deref(), cl.as_deref());
            prop_assert!(got.len() <= 3);
        }

        #[test]
        fn uri_shaped_input_resolves_same_origin_only(
            path in "(/|\\.\\./|\\./|[a-z]{1,3}/|[a-z]{1,3}){0,6}",
            host in prop_oneof![Just("a.example"), Just("A.Example:443"), Just("b.example"), Just("a.example:8443")],
        ) {
            let loc = format!("https://{host}/{path}");
            let got = run("POST", 200, "https://a.example/base/x", Some(&loc), None);
            let same = matches!(host, "a.example" | "A.Example:443");
            let resolved = remove_dot_segments(format!("/{path}").as_bytes());
            let want = if same && resolved != b"/base/x" { 2 } else { 1 };
            prop_assert_eq!(got.len(), want);
            for target in got.iter().skip(1) {
                prop_assert!(target.path.starts_with(b"/"));
                prop_assert!(!target.path.split(|&b| b == b'/').any(|s| s == b"." || s == b".."));
                prop_assert_eq!(&target.path, &resolved);
            }
        }
    }
}
