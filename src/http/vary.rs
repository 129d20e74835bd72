//! Vary and the secondary cache key (RFC 9111 §4.1): several variants of one
//! URL, each selected by the request header values its response named.

use crate::http::trim_ows;

/// The field names of a stored response's Vary lines (RFC 9110 §12.5.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Vary {
    /// `*`, or a member that is not a field name: the response can never be
    /// selected by a later request (RFC 9111 §4.1: "A stored response with a
    /// Vary header field value containing a member `*` always fails to
    /// match").
    Any,
    /// The selecting field names: lower-cased, de-duplicated and sorted, so
    /// equal sets of names compare equal. Empty when there is no Vary field,
    /// or only empty list members (RFC 9110 §5.6.1).
    Fields(Vec<String>),
}

/// tchar (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Vary {
    /// Parses the Vary field lines of one response, which combine as one
    /// list (RFC 9110 §5.3; `Vary = #( "*" / field-name )`, RFC 9110 §12.5.5).
    ///
    /// Names are case-insensitive (RFC 9110 §5.1), so they are lower-cased;
    /// empty members are ignored (RFC 9110 §5.6.1). A member that is neither
    /// `*` nor a field-name (a token, RFC 9110 §5.1) yields [`Vary::Any`]: the
    /// cache cannot tell which request field it selects on, and treating it
    /// as `*` fails safe (the response is never reused), where skipping it
    /// could serve one variant to a request the origin would answer with
    /// another.
    pub fn parse_lines<'a, I: IntoIterator<Item = &'a [u8]>>(lines: I) -> Vary {
        let mut names: Vec<String> = Vec::new();
        for line in lines {
            for member in line.split(|&b| b == b',').map(trim_ows) {
                if member.is_empty() {
                    continue;
                }
                if member == b"*" || !member.iter().copied().all(is_tchar) {
                    return Vary::Any;
                }
                // tchar is ASCII, so this never fails.
                let Ok(name) = std::str::from_utf8(member) else {
                    return Vary::Any;
                };
                names.push(name.to_ascii_lowercase());
            }
        }
        names.sort_unstable();
        names.dedup();
        Vary::Fields(names)
    }

    /// [`Vary::parse_lines`] over the `Vary` lines of a response header list
    /// (names compared case-insensitively, RFC 9110 §5.1).
    pub fn from_headers(headers: &[(&[u8], &[u8])]) -> Vary {
        Vary::parse_lines(
            headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(b"vary"))
                .map(|&(_, v)| v),
        )
    }

    /// True for [`Vary::Any`], which never matches (RFC 9111 §4.1).
    pub fn is_any(&self) -> bool {
        matches!(self, Vary::Any)
    }

    /// The selecting field names; empty for [`Vary::Any`] (check
    /// [`Vary::is_any`] first: `Any` is not "no names").
    pub fn names(&self) -> &[String] {
        match self {
            Vary::Any => &[],
            Vary::Fields(names) => names,
        }
    }

    /// Renders the names as one Vary field value (`*` for [`Vary::Any`],
    /// the empty string when there are none).
    pub fn to_header(&self) -> String {
        match self {
            Vary::Any => "*".to_owned(),
            Vary::Fields(names) => names.join(", "),
        }
    }
}

/// Splits a field line at commas outside quoted-strings (RFC 9110 §5.6.1,
/// §5.6.4; quoted-pair escapes a quote). An unterminated quoted-string runs
/// to the end of its line.
fn split_members(line: &[u8]) -> Vec<&[u8]> {
    let mut members = Vec::new();
    let (mut start, mut in_quote, mut escaped) = (0, false, false);
    for (i, &b) in line.iter().enumerate() {
        if in_quote {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quote = false;
            }
        } else if b == b'"' {
            in_quote = true;
        } else if b == b',' {
            members.push(line.get(start..i).unwrap_or_default());
            start = i + 1;
        }
    }
    members.push(line.get(start..).unwrap_or_default());
    members
}

/// The normalised value of one selecting header from its field lines, or
/// `None` when it has no line at all: absent is not the same as empty
/// (RFC 9111 §4.1).
///
/// Lines combine in order as one comma-separated list (RFC 9110 §5.3), and
/// the whitespace that RFC 9111 §4.1 allows a cache to normalise away goes:
/// OWS around each list member (RFC 9110 §5.6.1, §5.6.3) is dropped and the
/// members are re-joined with `", "`. So `1,2`, ` 1, 2 ` and the two lines
/// `1` and `2` all give `1, 2`. Nothing else is rewritten: commas and
/// whitespace inside quoted-strings are kept, whitespace inside a member is
/// kept, empty members are kept (for a field that is not a list they can be
/// meaningful), and case and member order are kept, because whether they
/// matter depends on the field (RFC 9111 §4.1: only normalisations "known
/// to have identical semantics"). A normalisation left out can only cost a
/// miss, never a wrong variant.
pub fn normalize_value<'a, I: IntoIterator<Item = &'a [u8]>>(lines: I) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for line in lines {
        let first = out.is_none();
        let buf = out.get_or_insert_with(Vec::new);
        for (i, member) in split_members(line).into_iter().enumerate() {
            if !(first && i == 0) {
                buf.extend_from_slice(b", ");
            }
            buf.extend_from_slice(trim_ows(member));
        }
    }
    out
}

/// The normalised value ([`normalize_value`]) of the request header `name`
/// (compared case-insensitively, RFC 9110 §5.1) in a header list.
pub fn request_value(headers: &[(&[u8], &[u8])], name: &[u8]) -> Option<Vec<u8>> {
    normalize_value(
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, v)| v),
    )
}

/// The secondary cache key of a request for a stored response's Vary
/// (RFC 9111 §4.1): one normalised value per selecting name, in the order of
/// [`Vary::names`], `None` where the request lacks the header. `None` as a
/// whole for [`Vary::Any`], which no request matches.
///
/// Feed the values to the key builder as optional fields (absent ≠ empty);
/// the names themselves belong in the key too, since two responses with
/// different Vary sets select on different things.
pub fn secondary_key(
    vary: &Vary,
    request_headers: &[(&[u8], &[u8])],
) -> Option<Vec<Option<Vec<u8>>>> {
    match vary {
        Vary::Any => None,
        Vary::Fields(names) => Some(
            names
                .iter()
                .map(|n| request_value(request_headers, n.as_bytes()))
                .collect(),
        ),
    }
}

/// Whether a new request selects a stored response (RFC 9111 §4.1): every
/// name of the stored Vary has the same normalised value in the request as
/// in the request that produced the response (`stored_values`, from
/// [`secondary_key`]), a header absent in both matching and absent in only
/// one not matching. [`Vary::Any`] never matches; values that do not line up
/// with the names (a corrupt entry) do not match either.
pub fn matches(
    stored: &Vary,
    stored_values: &[Option<Vec<u8>>],
    request_headers: &[(&[u8], &[u8])],
) -> bool {
    let Vary::Fields(names) = stored else {
        return false;
    };
    names.len() == stored_values.len()
        && names
            .iter()
            .zip(stored_values)
            .all(|(n, v)| request_value(request_headers, n.as_bytes()) == *v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_headers as h;
    use proptest::prelude::*;

    fn fields(names: &[&str]) -> Vary {
        Vary::Fields(names.iter().map(|s| (*s).to_owned()).collect())
    }

    fn vary(lines: &[&str]) -> Vary {
        Vary::parse_lines(lines.iter().map(|l| l.as_bytes()))
    }

    fn norm(lines: &[&str]) -> Option<String> {
        normalize_value(lines.iter().map(|l| l.as_bytes()))
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    #[test]
    fn rfc9110_12_5_5_names_lowercased_deduplicated_sorted() {
        assert_eq!(
            vary(&["Accept-Encoding, accept-language", "ACCEPT-ENCODING,Origin"]),
            fields(&["accept-encoding", "accept-language", "origin"])
        );
        assert_eq!(vary(&["Foo, Bar", "Baz"]), vary(&["baz,bar", "FOO"]));
        assert_eq!(vary(&[]), Vary::Fields(Vec::new()));
        assert_eq!(vary(&["", " , ,\t"]), Vary::Fields(Vec::new()));
    }

    #[test]
    fn rfc9111_4_1_star_never_matches() {
        for lines in [
            &["*"][..],
            &["*, *"],
            &["*", "*"],
            &[", *"],
            &["", "*"],
            &["*, Foo"],
            &["Foo, *"],
            &["Foo", " * "],
        ] {
            let v = vary(lines);
            assert!(v.is_any(), "{lines:?}");
            assert!(v.names().is_empty());
            let req = h(&[("foo", "1"), ("*", "1")]);
            assert_eq!(secondary_key(&v, &req), None);
            assert!(!matches(&v, &[], &req), "{lines:?}");
        }
        assert_eq!(Vary::Any.to_header(), "*");
    }

    #[test]
    fn rfc9110_5_1_invalid_member_fails_safe_as_star() {
        for bad in [
            "Foo Bar", "Foo;q=1", "\"Foo\"", "F\u{e9}e", "Foo\0", "a/b/c:",
        ] {
            assert!(vary(&[bad]).is_any(), "{bad:?}");
        }
        // `/` is not a tchar, `'` is.
        assert_eq!(vary(&["x'y", "a*b"]), fields(&["a*b", "x'y"]));
    }

    #[test]
    fn from_headers_reads_vary_lines_only() {
        let hs = h(&[("VARY", "Foo"), ("content-type", "x"), ("vary", "bar")]);
        assert_eq!(Vary::from_headers(&hs), fields(&["bar", "foo"]));
        assert_eq!(Vary::from_headers(&[]), Vary::Fields(Vec::new()));
        assert_eq!(fields(&["bar", "foo"]).to_header(), "bar, foo");
    }

    #[test]
    fn rfc9111_4_1_absent_differs_from_empty() {
        assert_eq!(norm(&[]), None);
        assert_eq!(norm(&[""]), Some(String::new()));
        let v = fields(&["foo"]);
        let stored = secondary_key(&v, &h(&[("foo", "")])).unwrap_or_default();
        assert_eq!(stored, vec![Some(Vec::new())]);
        assert!(matches(&v, &stored, &h(&[("Foo", " ")])));
        assert!(!matches(&v, &stored, &h(&[])));
        let absent = secondary_key(&v, &h(&[("other", "1")])).unwrap_or_default();
        assert_eq!(absent, vec![None]);
        assert!(matches(&v, &absent, &h(&[])));
        assert!(!matches(&v, &absent, &h(&[("foo", "")])));
    }

    #[test]
    fn rfc9111_4_1_whitespace_normalised_and_rfc9110_5_3_lines_combined() {
        assert_eq!(norm(&["1,2"]), Some("1, 2".to_owned()));
        assert_eq!(norm(&[" 1, 2 "]), Some("1, 2".to_owned()));
        assert_eq!(norm(&["1", "2"]), Some("1, 2".to_owned()));
        assert_eq!(norm(&["1 ,\t2", ""]), Some("1, 2, ".to_owned()));
        assert_eq!(norm(&["", "1"]), Some(", 1".to_owned()));
        assert_ne!(norm(&["", "1"]), norm(&["1"]));
        // Inside a member, inside quotes, case and order: untouched.
        assert_eq!(norm(&["a  b"]), Some("a  b".to_owned()));
        assert_eq!(norm(&["\"x , y\" ,z"]), Some("\"x , y\", z".to_owned()));
        assert_eq!(norm(&["\"a\\\",b\", c"]), Some("\"a\\\",b\", c".to_owned()));
        assert_eq!(norm(&["\"open, x"]), Some("\"open, x".to_owned()));
        // An unterminated quote ends with its line; the next line is a new member.
        assert_eq!(norm(&["\"", ""]), Some("\", ".to_owned()));
        assert_ne!(norm(&["\"", ""]), norm(&["\", "]));
        assert_ne!(norm(&["en, de"]), norm(&["de, en"]));
        assert_ne!(norm(&["gzip"]), norm(&["GZIP"]));
        assert_ne!(norm(&["a,,b"]), norm(&["a,b"]));
    }

    #[test]
    fn rfc9111_4_1_matching_several_variants() {
        let v = vary(&["Foo, Bar"]);
        let one = secondary_key(&v, &h(&[("foo", "1"), ("bar", "abc")])).unwrap_or_default();
        let two = secondary_key(&v, &h(&[("foo", "2"), ("bar", "abc")])).unwrap_or_default();
        assert_ne!(one, two);
        let req = h(&[("Bar", "abc"), ("FOO", "1"), ("other", "x")]);
        assert!(matches(&v, &one, &req));
        assert!(!matches(&v, &two, &req));
        assert!(!matches(&v, &one, &h(&[("foo", "1")])));
        assert!(matches(&v, &one, &h(&[("foo", "1"), ("bar", " abc ")])));
        // Both requests lacking the same header still match.
        let v3 = vary(&["Foo, Bar, Baz"]);
        let stored = secondary_key(&v3, &h(&[("foo", "1"), ("baz", "789")])).unwrap_or_default();
        assert!(matches(&v3, &stored, &h(&[("baz", "789"), ("foo", "1")])));
        // Values that do not line up with the names never match.
        assert!(!matches(&v3, &one, &req));
        // No Vary: every request matches.
        assert!(matches(&Vary::Fields(Vec::new()), &[], &req));
    }

    #[test]
    fn rfc9111_4_1_combined_request_lines_match_one_line() {
        let v = fields(&["foo"]);
        let stored = secondary_key(&v, &h(&[("foo", "1, 2")])).unwrap_or_default();
        assert!(matches(&v, &stored, &h(&[("foo", "1"), ("foo", "2")])));
        assert!(matches(&v, &stored, &h(&[("foo", " 1,2 ")])));
        assert!(!matches(&v, &stored, &h(&[("foo", "2"), ("foo", "1")])));
    }

    #[test]
    fn junk_and_large_inputs() {
        let junk: Vec<(&[u8], &[u8])> = vec![(b"vary", b"\xff\xfe"), (b"\x00", b"\x80")];
        assert!(Vary::from_headers(&junk).is_any());
        let many = (0..2000)
            .map(|i| format!("h{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(vary(&[&many]).names().len(), 2000);
        let long = "x,".repeat(5000);
        assert_eq!(norm(&[&long]).map(|s| s.len()), Some(5000 * 3));
    }

    proptest! {
        #[test]
        fn parse_lines_never_panics_and_is_canonical(
            lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 0..4),
        ) {
            let v = Vary::parse_lines(lines.iter().map(Vec::as_slice));
            if let Vary::Fields(names) = &v {
                let mut sorted = names.clone();
                sorted.sort_unstable();
                sorted.dedup();
                prop_assert_eq!(&sorted, names);
                prop_assert!(names.iter().all(|n| !n.is_empty() && *n == n.to_ascii_lowercase()));
                // Rendering and re-parsing gives the same names.
                prop_assert_eq!(Vary::parse_lines([v.to_header().as_bytes()]), v.clone());
            }
        }

        #[test]
        fn near_miss_vary_lines(lines in proptest::collection::vec("[ a-zA-Z,*\\-\t]{0,24}", 0..4)) {
            let v = Vary::parse_lines(lines.iter().map(|l| l.as_bytes()));
            let star = lines.iter().any(|l| l.split(',').any(|m| {
                let m = m.trim_matches(|c| c == ' ' || c == '\t');
                m == "*" || m.contains([' ', '\t'])
            }));
            prop_assert_eq!(v.is_any(), star);
        }

        #[test]
        fn normalize_never_panics(
            lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 0..4),
        ) {
            let once = normalize_value(lines.iter().map(Vec::as_slice));
            prop_assert_eq!(once.is_some(), !lines.is_empty());
        }

        #[test]
        fn normalize_is_idempotent(
            line in proptest::collection::vec(any::<u8>(), 0..48),
            lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 0..4),
        ) {
            // One line: always. Several lines: when none ends inside an
            // unterminated quoted-string, which would swallow the joining
            // comma on a second pass (see rfc9111_4_1_whitespace_...).
            let once = normalize_value([line.as_slice()]).unwrap_or_default();
            prop_assert_eq!(normalize_value([once.as_slice()]), Some(once.clone()));
            let unquoted: Vec<Vec<u8>> = lines.iter().map(|l| l.iter().copied().filter(|&b| b != b'"').collect()).collect();
            if let Some(v) = normalize_value(unquoted.iter().map(Vec::as_slice)) {
                prop_assert_eq!(normalize_value([v.as_slice()]), Some(v.clone()));
            }
        }

        #[test]
        fn a_request_matches_its_own_key(
            pairs in proptest::collection::vec(("[a-dA-D]{1,2}", "[ a-z0-9,\"]{0,8}"), 0..6),
            names in proptest::collection::vec("[a-dA-D]{1,2}", 0..4),
        ) {
            let hs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect();
            let v = Vary::parse_lines(names.iter().map(|n| n.as_bytes()));
            let key = secondary_key(&v, &hs);
            prop_assert!(key.is_some());
            prop_assert!(matches(&v, &key.unwrap_or_default(), &hs));
        }
    }
}
