//! The If-None-Match precondition (RFC 9110 §13.1.2), the one a response
//! cache evaluates to answer 304 Not Modified.

use super::etag::EntityTag;
use crate::http::trim_ows;

/// A parsed If-None-Match field (RFC 9110 §13.1.2: `"*" / #entity-tag`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfNoneMatch {
    /// `*`: matches any current representation.
    Any,
    /// A list of entity-tags, in field order.
    Tags(Vec<EntityTag>),
}

/// Splits one field line into list members at commas outside double quotes
/// (RFC 9110 §5.6.1). An opaque-tag may contain commas (`"a,b"`), and has no
/// quoted-pair (RFC 9110 §8.8.3), so a backslash never escapes a quote here.
fn split_members(line: &[u8]) -> Vec<&[u8]> {
    let mut members = Vec::new();
    let (mut start, mut in_quote) = (0, false);
    for (i, &b) in line.iter().enumerate() {
        if b == b'"' {
            in_quote = !in_quote;
        } else if b == b',' && !in_quote {
            members.push(line.get(start..i).unwrap_or_default());
            start = i + 1;
        }
    }
    members.push(line.get(start..).unwrap_or_default());
    members
}

impl IfNoneMatch {
    /// Parses one or more If-None-Match field lines, which combine as one
    /// list (RFC 9110 §5.3). Members that are not valid entity-tags are
    /// skipped; empty members are allowed by the list syntax (RFC 9110
    /// §5.6.1). Returns `None` when the field is absent or has no valid
    /// member at all.
    ///
    /// `*` means [`IfNoneMatch::Any`] only when every non-empty member is
    /// `*`. The grammar does not allow `*` inside a list, and since `Any`
    /// answers 304 for every representation, a malformed field must not be
    /// read as one: a `*` mixed with other members is ignored.
    pub fn parse_lines<'a, I: IntoIterator<Item = &'a [u8]>>(lines: I) -> Option<IfNoneMatch> {
        let (mut tags, mut stars, mut others) = (Vec::new(), 0usize, 0usize);
        for line in lines {
            for member in split_members(line).into_iter().map(trim_ows) {
                if member.is_empty() {
                    continue;
                }
                if member == b"*" {
                    stars += 1;
                    continue;
                }
                others += 1;
                if let Some(tag) = EntityTag::parse(member) {
                    tags.push(tag);
                }
            }
        }
        if stars > 0 && others == 0 {
            Some(IfNoneMatch::Any)
        } else if tags.is_empty() {
            None
        } else {
            Some(IfNoneMatch::Tags(tags))
        }
    }

    /// RFC 9110 §13.1.2: true when the condition is FALSE, i.e. the server
    /// should answer 304 (GET/HEAD). `*` matches when a current
    /// representation exists (`current` is `Some`); tags match by WEAK
    /// comparison (RFC 9110 §8.8.3.2), as §13.1.2 requires.
    pub fn matches(&self, current: Option<&EntityTag>) -> bool {
        match self {
            IfNoneMatch::Any => current.is_some(),
            IfNoneMatch::Tags(tags) => {
                current.is_some_and(|cur| tags.iter().any(|t| t.weak_eq(cur)))
            }
        }
    }
}

/// Convenience used by the binding layer: the request's If-None-Match lines
/// and the stored response's ETag header value (e.g. `W/"abc"`), `None` when
/// it has none. True when a 304 should be sent: `*` matches any stored
/// response, ETag or not (RFC 9110 §13.1.2: "a current representation
/// exists"); tags match a stored ETag that parses. False when the field is
/// absent or unusable, so any doubt falls back to a full response.
pub fn if_none_match_hits<'a, I: IntoIterator<Item = &'a [u8]>>(
    lines: I,
    stored_etag: Option<&str>,
) -> bool {
    let Some(inm) = IfNoneMatch::parse_lines(lines) else {
        return false;
    };
    match inm {
        IfNoneMatch::Any => true,
        IfNoneMatch::Tags(_) => {
            let current = stored_etag.and_then(|e| EntityTag::parse(e.as_bytes()));
            current.is_some_and(|cur| inm.matches(Some(&cur)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(weak: bool, opaque: &str) -> EntityTag {
        EntityTag {
            weak,
            opaque: opaque.to_owned(),
        }
    }

    fn inm(s: &str) -> Option<IfNoneMatch> {
        IfNoneMatch::parse_lines([s.as_bytes()])
    }

    #[test]
    fn rfc9110_13_1_2_star_and_lists() {
        assert_eq!(inm("*"), Some(IfNoneMatch::Any));
        assert_eq!(inm(" * , *"), Some(IfNoneMatch::Any));
        assert_eq!(
            inm("\"xyzzy\", W/\"r2d2xxxx\""),
            Some(IfNoneMatch::Tags(vec![
                tag(false, "xyzzy"),
                tag(true, "r2d2xxxx")
            ]))
        );
    }

    #[test]
    fn rfc9110_8_8_3_commas_inside_opaque_tags() {
        assert_eq!(
            inm("\"a,b\",W/\"c,,d\" ,\"x y\", \"e\""),
            Some(IfNoneMatch::Tags(vec![
                tag(false, "a,b"),
                tag(true, "c,,d"),
                tag(false, "e")
            ]))
        );
    }

    #[test]
    fn rfc9110_5_3_lines_combine() {
        let got = IfNoneMatch::parse_lines([&b"\"a\""[..], b"", b"W/\"b\""]);
        assert_eq!(
            got,
            Some(IfNoneMatch::Tags(vec![tag(false, "a"), tag(true, "b")]))
        );
        // An unterminated quote spoils only its own line.
        let got = IfNoneMatch::parse_lines([&b"\"a, \"b"[..], b"\"c\""]);
        assert_eq!(got, Some(IfNoneMatch::Tags(vec![tag(false, "c")])));
    }

    #[test]
    fn tolerant_skipping_and_absence() {
        assert_eq!(IfNoneMatch::parse_lines(std::iter::empty()), None);
        assert_eq!(inm(""), None);
        assert_eq!(inm(" , ,"), None);
        assert_eq!(inm("xyzzy, w/\"a\""), None);
        assert_eq!(
            inm("junk, \"ok\", \0, \u{e9}"),
            Some(IfNoneMatch::Tags(vec![tag(false, "ok")]))
        );
    }

    #[test]
    fn star_mixed_with_other_members_is_not_any() {
        assert_eq!(
            inm("*, \"a\""),
            Some(IfNoneMatch::Tags(vec![tag(false, "a")]))
        );
        assert_eq!(inm("*, junk"), None);
        assert_eq!(
            IfNoneMatch::parse_lines([&b"*"[..], b"\"a\""]),
            inm("\"a\"")
        );
    }

    #[test]
    fn rfc9110_13_1_2_matches_uses_weak_comparison() {
        let list = inm("W/\"1\", \"2\"").unwrap_or(IfNoneMatch::Any);
        assert!(list.matches(Some(&tag(false, "1"))));
        assert!(list.matches(Some(&tag(true, "1"))));
        assert!(list.matches(Some(&tag(true, "2"))));
        assert!(!list.matches(Some(&tag(false, "3"))));
        assert!(!list.matches(None));
        assert!(IfNoneMatch::Any.matches(Some(&tag(true, "x"))));
        assert!(!IfNoneMatch::Any.matches(None));
    }

    #[test]
    fn if_none_match_hits_convenience() {
        let lines = [&b"\"x\", W/\"abc\""[..]];
        assert!(if_none_match_hits(lines, Some("W/\"abc\"")));
        assert!(if_none_match_hits(lines, Some("\"abc\"")));
        assert!(!if_none_match_hits(lines, Some("\"abd\"")));
        assert!(!if_none_match_hits(lines, Some("abc")));
        assert!(!if_none_match_hits(lines, Some("")));
        assert!(!if_none_match_hits(lines, None));
        assert!(if_none_match_hits([&b"*"[..]], Some("\"q\"")));
        // RFC 9110 §13.1.2: `*` is about the representation existing, not its ETag.
        assert!(if_none_match_hits([&b"*"[..]], None));
        assert!(!if_none_match_hits(std::iter::empty(), Some("\"q\"")));
        assert!(!if_none_match_hits([&b"bogus"[..]], Some("\"q\"")));
    }

    #[test]
    fn junk_bytes_and_ten_kilobyte_fields() {
        assert_eq!(
            IfNoneMatch::parse_lines([&b"\xff\xfe\0\x80, \"\xff\""[..]]),
            None
        );
        let mut long = "\"t\", ".repeat(2000);
        long.push_str("W/\"last\"");
        let parsed = inm(&long);
        assert!(matches!(&parsed, Some(IfNoneMatch::Tags(t)) if t.len() == 2001));
        assert!(if_none_match_hits([long.as_bytes()], Some("\"last\"")));
        let one_tag = format!("\"{}\"", "a,".repeat(5000));
        assert!(if_none_match_hits([one_tag.as_bytes()], Some(&one_tag)));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(
            lines in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96), 0..4),
            stored in ".{0,16}",
        ) {
            let parsed = IfNoneMatch::parse_lines(lines.iter().map(Vec::as_slice));
            if let Some(p) = parsed {
                let _ = p.matches(None);
            }
            let _ = if_none_match_hits(lines.iter().map(Vec::as_slice), Some(&stored));
        }

        #[test]
        fn a_listed_tag_always_hits(
            opaques in proptest::collection::vec("[!#-~]{0,8}", 1..5),
            pick in 0usize..5,
            weak in proptest::prelude::any::<bool>(),
        ) {
            let header: Vec<String> = opaques.iter().map(|o| format!("\"{o}\"")).collect();
            let header = header.join(" , ");
            let chosen = opaques.get(pick % opaques.len()).cloned().unwrap_or_default();
            let stored = EntityTag { weak, opaque: chosen }.to_header();
            proptest::prop_assert!(if_none_match_hits([header.as_bytes()], Some(&stored)));
        }
    }
}
