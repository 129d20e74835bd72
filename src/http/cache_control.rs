//! The Cache-Control field (RFC 9111 §5.2): a tolerant parser and a
//! canonical renderer.
//!
//! The parser never fails: whatever it cannot understand it skips, so a
//! single bad directive never hides the valid ones beside it.

use crate::http::trim_ows;
use std::borrow::Cow;

/// The value a delta-seconds saturates at (RFC 9111 §1.2.2).
pub const DELTA_SECONDS_MAX: u64 = 2_147_483_648;

/// The request directive `max-stale` (RFC 9111 §5.2.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxStale {
    /// `max-stale` without a value: a stale response of any age is accepted.
    Any,
    /// `max-stale=N`: accepted up to N seconds past its freshness lifetime.
    Seconds(u64),
}

/// The directives of one or more Cache-Control field lines, request and
/// response directives alike (RFC 9111 §5.2.1, §5.2.2, RFC 5861 for the
/// stale-* extensions, RFC 8246 for `immutable`).
///
/// `no-cache` and `private` may carry a field-name list
/// (`no-cache="Set-Cookie"`, RFC 9111 §5.2.2.4, §5.2.2.7); only the flag is
/// kept, so the qualified form is treated as the unqualified one, which is
/// the stricter reading that §5.2.2.4 and §5.2.2.7 both allow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheControl {
    /// `max-age` (RFC 9111 §5.2.1.1, §5.2.2.1).
    pub max_age: Option<u64>,
    /// `s-maxage` (RFC 9111 §5.2.2.10).
    pub s_maxage: Option<u64>,
    /// `no-cache` (RFC 9111 §5.2.1.4, §5.2.2.4).
    pub no_cache: bool,
    /// `no-store` (RFC 9111 §5.2.1.5, §5.2.2.5).
    pub no_store: bool,
    /// `private` (RFC 9111 §5.2.2.7).
    pub private: bool,
    /// `public` (RFC 9111 §5.2.2.9).
    pub public: bool,
    /// `must-revalidate` (RFC 9111 §5.2.2.2).
    pub must_revalidate: bool,
    /// `proxy-revalidate` (RFC 9111 §5.2.2.8).
    pub proxy_revalidate: bool,
    /// `immutable` (RFC 8246 §2).
    pub immutable: bool,
    /// `no-transform` (RFC 9111 §5.2.1.6, §5.2.2.6).
    pub no_transform: bool,
    /// `must-understand` (RFC 9111 §5.2.2.3).
    pub must_understand: bool,
    /// `only-if-cached` (RFC 9111 §5.2.1.7).
    pub only_if_cached: bool,
    /// `min-fresh` (RFC 9111 §5.2.1.3).
    pub min_fresh: Option<u64>,
    /// `max-stale` (RFC 9111 §5.2.1.2).
    pub max_stale: Option<MaxStale>,
    /// `stale-while-revalidate` (RFC 5861 §3).
    pub stale_while_revalidate: Option<u64>,
    /// `stale-if-error` (RFC 5861 §4).
    pub stale_if_error: Option<u64>,
    /// A known directive appeared twice with different values, or a known
    /// delta-seconds directive had an invalid value. RFC 9111 §4.2.1 says
    /// such responses should be treated as stale; the flag is kept so the
    /// freshness code can honour it. The first valid value is the one kept.
    pub conflicting: bool,
}

/// A directive's argument (RFC 9111 §5.2: `token [ "=" ( token / quoted-string ) ]`).
enum Arg<'a> {
    Absent,
    /// A token, or a quoted-string with its quoted-pairs resolved.
    Value(Cow<'a, [u8]>),
    Malformed,
}

/// tchar (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().copied().all(is_tchar)
}

/// OWS is SP / HTAB (RFC 9110 §5.6.3).
fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits one field line into list members at commas outside quoted-strings
/// (RFC 9110 §5.6.1, §5.6.4).
///
/// A quote opens a quoted-string only where an argument may start (after `=`
/// and OWS), so a stray quote elsewhere spoils just its own member. An
/// unterminated quoted-string runs to the end of its line: what follows it
/// cannot be told apart from its content.
fn split_members(line: &[u8]) -> Vec<&[u8]> {
    let mut members = Vec::new();
    let (mut start, mut seen_eq, mut value_start) = (0, false, false);
    let (mut in_quote, mut escaped) = (false, false);
    for (i, &b) in line.iter().enumerate() {
        if in_quote {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quote = false;
            }
            continue;
        }
        if b == b',' {
            members.push(line.get(start..i).unwrap_or_default());
            (start, seen_eq, value_start) = (i + 1, false, false);
        } else if b == b'=' && !seen_eq {
            (seen_eq, value_start) = (true, true);
        } else if value_start && b == b'"' {
            (in_quote, value_start) = (true, false);
        } else if !is_ows(b) {
            value_start = false;
        }
    }
    members.push(line.get(start..).unwrap_or_default());
    members
}

/// Resolves a quoted-string (RFC 9110 §5.6.4) that must span all of `s`.
fn unquote(s: &[u8]) -> Option<Cow<'_, [u8]>> {
    let body = s.strip_prefix(b"\"")?;
    let mut out = Vec::with_capacity(body.len());
    let mut iter = body.iter().copied();
    while let Some(b) = iter.next() {
        match b {
            b'"' => return iter.next().is_none().then_some(Cow::Owned(out)),
            // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
            b'\\' => match iter.next() {
                Some(c) if c == b'\t' || (c >= 0x20 && c != 0x7F) => out.push(c),
                _ => return None,
            },
            // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
            b'\t' | 0x20..=0x7E | 0x80..=0xFF => out.push(b),
            _ => return None,
        }
    }
    None
}

/// Splits a member into its lower-cased name and argument; `None` when the
/// name is not a token. OWS around `=` is tolerated although the RFC 9111
/// §5.2 grammar has none: a sender writing `max-age = 60` plainly means the
/// directive, and flagging it would make otherwise-fine responses stale.
fn parse_member(member: &[u8]) -> Option<(Vec<u8>, Arg<'_>)> {
    let member = trim_ows(member);
    let (name, arg) = match member.iter().position(|&b| b == b'=') {
        None => (member, Arg::Absent),
        Some(eq) => {
            let (name, rest) = member.split_at(eq);
            let value = trim_ows(rest.get(1..).unwrap_or_default());
            let arg = if value.first() == Some(&b'"') {
                unquote(value).map_or(Arg::Malformed, Arg::Value)
            } else if is_token(value) {
                Arg::Value(Cow::Borrowed(value))
            } else {
                Arg::Malformed
            };
            (trim_ows(name), arg)
        }
    };
    // No known directive is longer; skipping early bounds the allocation.
    if !is_token(name) || name.len() > 32 {
        return None;
    }
    Some((name.to_ascii_lowercase(), arg))
}

/// delta-seconds = 1*DIGIT, saturating at 2^31 (RFC 9111 §1.2.2).
fn delta_seconds(arg: &Arg<'_>) -> Option<u64> {
    let Arg::Value(v) = arg else { return None };
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, &d| {
        (n * 10 + u64::from(d - b'0')).min(DELTA_SECONDS_MAX)
    }))
}

/// Keeps the first value and flags a differing repeat (RFC 9111 §4.2.1).
fn record<T: PartialEq>(slot: &mut Option<T>, value: T, conflicting: &mut bool) {
    match slot {
        None => *slot = Some(value),
        Some(old) if *old != value => *conflicting = true,
        Some(_) => {}
    }
}

impl CacheControl {
    /// Parses one Cache-Control field line.
    pub fn parse(value: &[u8]) -> CacheControl {
        Self::parse_lines([value])
    }

    /// Parses several field lines, which combine as one comma-separated list
    /// (RFC 9110 §5.3). Each line is scanned on its own so an unterminated
    /// quote cannot swallow the lines after it.
    pub fn parse_lines<'a, I: IntoIterator<Item = &'a [u8]>>(lines: I) -> CacheControl {
        let mut cc = CacheControl::default();
        for line in lines {
            for member in split_members(line) {
                if let Some((name, arg)) = parse_member(member) {
                    cc.apply(&name, &arg);
                }
            }
        }
        cc
    }

    fn apply(&mut self, name: &[u8], arg: &Arg<'_>) {
        let delta_slot = match name {
            b"max-age" => Some(&mut self.max_age),
            b"s-maxage" => Some(&mut self.s_maxage),
            b"min-fresh" => Some(&mut self.min_fresh),
            b"stale-while-revalidate" => Some(&mut self.stale_while_revalidate),
            b"stale-if-error" => Some(&mut self.stale_if_error),
            _ => None,
        };
        if let Some(slot) = delta_slot {
            match delta_seconds(arg) {
                Some(n) => record(slot, n, &mut self.conflicting),
                // Invalid freshness information: RFC 9111 §4.2.1.
                None => self.conflicting = true,
            }
            return;
        }
        if name == b"max-stale" {
            // RFC 9111 §5.2.1.2: the value is optional.
            let value = match arg {
                Arg::Absent => Some(MaxStale::Any),
                _ => delta_seconds(arg).map(MaxStale::Seconds),
            };
            match value {
                Some(v) => record(&mut self.max_stale, v, &mut self.conflicting),
                None => self.conflicting = true,
            }
            return;
        }
        // Directives that only restrict caching are honoured even with an
        // argument they do not define, or a malformed one: the sender asked
        // for the restriction, and dropping it could let a response be
        // stored or reused where it must not be (RFC 9111 §4.2.1: honour
        // the most restrictive directive). Directives that loosen caching
        // take no argument (RFC 9111 §5.2.2.3, §5.2.2.9, RFC 8246 §2), so
        // one that carries an argument is malformed and ignored.
        let (flag, restrictive) = match name {
            b"no-cache" => (&mut self.no_cache, true),
            b"no-store" => (&mut self.no_store, true),
            b"private" => (&mut self.private, true),
            b"must-revalidate" => (&mut self.must_revalidate, true),
            b"proxy-revalidate" => (&mut self.proxy_revalidate, true),
            b"no-transform" => (&mut self.no_transform, true),
            b"only-if-cached" => (&mut self.only_if_cached, true),
            b"public" => (&mut self.public, false),
            b"immutable" => (&mut self.immutable, false),
            b"must-understand" => (&mut self.must_understand, false),
            // Unknown directives are ignored (RFC 9111 §5.2.3).
            _ => return,
        };
        if restrictive || matches!(arg, Arg::Absent) {
            *flag = true;
        }
    }

    /// True when no directive was recognised and nothing was flagged as
    /// conflicting, i.e. the field carries no caching information.
    pub fn is_empty(&self) -> bool {
        *self == CacheControl::default()
    }

    /// Renders a canonical field value: directives in a fixed order,
    /// separated by `", "`, delta-seconds as plain digits clamped to 2^31
    /// (RFC 9111 §1.2.2). `conflicting` has no wire form and is not
    /// rendered; for any other value `parse(render(cc)) == cc`.
    pub fn render(&self) -> String {
        let delta = |name: &str, v: u64| format!("{name}={}", v.min(DELTA_SECONDS_MAX));
        let mut parts: Vec<String> = Vec::new();
        if let Some(v) = self.max_age {
            parts.push(delta("max-age", v));
        }
        if let Some(v) = self.s_maxage {
            parts.push(delta("s-maxage", v));
        }
        let flags = [
            ("no-cache", self.no_cache),
            ("no-store", self.no_store),
            ("private", self.private),
            ("public", self.public),
            ("must-revalidate", self.must_revalidate),
            ("proxy-revalidate", self.proxy_revalidate),
            ("immutable", self.immutable),
            ("no-transform", self.no_transform),
            ("must-understand", self.must_understand),
            ("only-if-cached", self.only_if_cached),
        ];
        parts.extend(flags.iter().filter(|f| f.1).map(|f| f.0.to_owned()));
        if let Some(v) = self.min_fresh {
            parts.push(delta("min-fresh", v));
        }
        match self.max_stale {
            Some(MaxStale::Any) => parts.push("max-stale".to_owned()),
            Some(MaxStale::Seconds(v)) => parts.push(delta("max-stale", v)),
            None => {}
        }
        if let Some(v) = self.stale_while_revalidate {
            parts.push(delta("stale-while-revalidate", v));
        }
        if let Some(v) = self.stale_if_error {
            parts.push(delta("stale-if-error", v));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cc(s: &str) -> CacheControl {
        CacheControl::parse(s.as_bytes())
    }

    #[test]
    fn rfc9111_5_2_basic_list() {
        let c = cc("max-age=60, public");
        assert_eq!(c.max_age, Some(60));
        assert!(c.public && !c.conflicting);
    }

    #[test]
    fn rfc9111_5_2_names_case_insensitive() {
        let c = cc("MAX-AGE=1, No-Store, Private");
        assert_eq!(c.max_age, Some(1));
        assert!(c.no_store && c.private);
    }

    #[test]
    fn rfc9110_5_6_3_ows_around_commas_and_equals() {
        let c = cc(" \tmax-age = 5 ,\tprivate , s-maxage\t=\t7 ");
        assert_eq!((c.max_age, c.s_maxage), (Some(5), Some(7)));
        assert!(c.private && !c.conflicting);
    }

    #[test]
    fn rfc9111_5_2_quoted_delta_seconds_accepted() {
        assert_eq!(cc("max-age=\"60\"").max_age, Some(60));
        // quoted-pair resolves before the digits are read (RFC 9110 §5.6.4).
        assert_eq!(cc("max-age=\"6\\0\"").max_age, Some(60));
        assert_eq!(cc("s-maxage = \"0\"").s_maxage, Some(0));
    }

    #[test]
    fn rfc9111_4_2_1_invalid_delta_sets_conflicting() {
        let c = cc("max-age=abc, public");
        assert_eq!(c.max_age, None);
        assert!(c.public && c.conflicting);
        for bad in [
            "max-age",
            "max-age=",
            "max-age=\"\"",
            "max-age=-1",
            "max-age=1.5",
            "max-age=+5",
            "max-age=5 6",
            "max-age=\"5\" x",
            "min-fresh=x",
            "stale-if-error=",
            "stale-while-revalidate=0x10",
        ] {
            let c = cc(bad);
            assert!(c.conflicting, "{bad}");
            assert_eq!(c.render(), "", "{bad}");
        }
    }

    #[test]
    fn rfc9111_4_2_1_repeated_directive_keeps_first() {
        let c = cc("max-age=5, max-age=10");
        assert_eq!(c.max_age, Some(5));
        assert!(c.conflicting);
        let same = cc("max-age=5, max-age=\"5\", public, public");
        assert_eq!(same.max_age, Some(5));
        assert!(!same.conflicting);
        let lines = CacheControl::parse_lines([&b"s-maxage=1"[..], b"s-maxage=2"]);
        assert_eq!(lines.s_maxage, Some(1));
        assert!(lines.conflicting);
    }

    #[test]
    fn rfc9111_1_2_2_delta_seconds_saturate() {
        assert_eq!(cc("max-age=2147483647").max_age, Some(2_147_483_647));
        assert_eq!(cc("max-age=2147483648").max_age, Some(DELTA_SECONDS_MAX));
        assert_eq!(cc("max-age=2147483649").max_age, Some(DELTA_SECONDS_MAX));
        let huge = format!("max-age={}", "9".repeat(5000));
        assert_eq!(cc(&huge).max_age, Some(DELTA_SECONDS_MAX));
        assert_eq!(cc("max-age=0000000000000000000000007").max_age, Some(7));
    }

    #[test]
    fn rfc9110_5_6_4_commas_inside_quotes_do_not_split() {
        let c = cc("no-cache=\"Set-Cookie, X-Foo\", max-age=5");
        assert!(c.no_cache && !c.conflicting);
        assert_eq!(c.max_age, Some(5));
        let esc = cc("private=\"a\\\", max-age=1\", s-maxage=2");
        assert!(esc.private);
        assert_eq!((esc.max_age, esc.s_maxage), (None, Some(2)));
    }

    #[test]
    fn rfc9111_5_2_2_4_qualified_no_cache_private_treated_as_unqualified() {
        let c = cc("no-cache=\"Set-Cookie\", private=\"Authorization\"");
        assert!(c.no_cache && c.private);
        // The token form is not generated by senders but still restricts.
        assert!(cc("private=Set-Cookie").private);
    }

    #[test]
    fn restrictive_flags_survive_bad_arguments_relaxing_do_not() {
        let c = cc("no-store=1, private=\"unterminated");
        assert!(c.no_store && c.private);
        let r = cc("public=yes, immutable=\"1\", must-understand=x");
        assert!(!r.public && !r.immutable && !r.must_understand);
        assert!(r.is_empty());
    }

    #[test]
    fn unterminated_quote_runs_to_end_of_its_line_only() {
        let c = cc("max-age=5, foo=\"bar, s-maxage=7");
        assert_eq!((c.max_age, c.s_maxage), (Some(5), None));
        assert!(!c.conflicting);
        let lines = CacheControl::parse_lines([&b"foo=\"bar, public"[..], b"max-age=3"]);
        assert_eq!(lines.max_age, Some(3));
        assert!(!lines.public);
    }

    #[test]
    fn stray_quote_outside_an_argument_spoils_only_its_member() {
        let c = cc("max-age=5\", private");
        assert!(c.private && c.conflicting);
        let d = cc("fo\"o, public");
        assert!(d.public);
    }

    #[test]
    fn rfc9110_5_6_1_empty_members_and_unknown_directives_ignored() {
        let c = cc(",, ,max-age=5,,\t,");
        assert_eq!(c.max_age, Some(5));
        assert!(!c.conflicting);
        let u = cc("foo, bar=baz, community=\"UCI\", max-age=5");
        assert_eq!(u.max_age, Some(5));
        assert!(!u.conflicting);
        assert!(cc("").is_empty() && cc(",,,").is_empty() && cc("foo=1").is_empty());
    }

    #[test]
    fn rfc9111_5_2_1_2_max_stale_forms() {
        assert_eq!(cc("max-stale").max_stale, Some(MaxStale::Any));
        assert_eq!(cc("max-stale=30").max_stale, Some(MaxStale::Seconds(30)));
        assert_eq!(
            cc("max-stale=\"30\"").max_stale,
            Some(MaxStale::Seconds(30))
        );
        let bad = cc("max-stale=x");
        assert_eq!(bad.max_stale, None);
        assert!(bad.conflicting);
        let mixed = cc("max-stale, max-stale=5");
        assert_eq!(mixed.max_stale, Some(MaxStale::Any));
        assert!(mixed.conflicting);
    }

    #[test]
    fn rfc9111_5_2_every_known_directive() {
        let c = cc(
            "max-age=1, s-maxage=2, no-cache, no-store, private, public, \
             must-revalidate, proxy-revalidate, immutable, no-transform, \
             must-understand, only-if-cached, min-fresh=3, max-stale=4, \
             stale-while-revalidate=5, stale-if-error=6",
        );
        let want = CacheControl {
            max_age: Some(1),
            s_maxage: Some(2),
            no_cache: true,
            no_store: true,
            private: true,
            public: true,
            must_revalidate: true,
            proxy_revalidate: true,
            immutable: true,
            no_transform: true,
            must_understand: true,
            only_if_cached: true,
            min_fresh: Some(3),
            max_stale: Some(MaxStale::Seconds(4)),
            stale_while_revalidate: Some(5),
            stale_if_error: Some(6),
            conflicting: false,
        };
        assert_eq!(c, want);
        assert_eq!(cc(&want.render()), want);
    }

    #[test]
    fn rfc9110_5_3_lines_combine_as_one_list() {
        let c = CacheControl::parse_lines([&b"max-age=5"[..], b"", b"public, no-transform"]);
        assert_eq!(c.max_age, Some(5));
        assert!(c.public && c.no_transform && !c.conflicting);
        assert!(CacheControl::parse_lines(std::iter::empty()).is_empty());
    }

    #[test]
    fn junk_bytes_nul_and_obs_text() {
        let c = CacheControl::parse(b"max-age=5\0, public");
        assert!(c.public && c.conflicting && c.max_age.is_none());
        assert!(CacheControl::parse(b"\0\0\0").is_empty());
        let hi = CacheControl::parse(b"\xff\xfe, max-age=5, \x80=\x81, private=\"\xe9\"");
        assert_eq!(hi.max_age, Some(5));
        assert!(hi.private && !hi.conflicting);
        let ctl = CacheControl::parse(b"private=\"a\x01b\", max-age=\"1\x7f\"");
        assert!(ctl.private && ctl.conflicting);
    }

    #[test]
    fn ten_kilobyte_headers() {
        let mut long = ",a".repeat(5000);
        long.push_str(", max-age=5");
        assert_eq!(cc(&long).max_age, Some(5));
        let quoted = format!("no-cache=\"{}\", s-maxage=9", "x, ".repeat(3400));
        let q = cc(&quoted);
        assert!(q.no_cache);
        assert_eq!(q.s_maxage, Some(9));
        let name = format!("{}=1, public", "z".repeat(10_240));
        assert!(cc(&name).public);
    }

    #[test]
    fn render_is_canonical() {
        let c = cc("PUBLIC,max-age=\"60\" , stale-if-error=5,no-cache=\"a\"");
        assert_eq!(c.render(), "max-age=60, no-cache, public, stale-if-error=5");
        let big = CacheControl {
            max_age: Some(u64::MAX),
            ..CacheControl::default()
        };
        assert_eq!(big.render(), "max-age=2147483648");
        assert_eq!(CacheControl::default().render(), "");
    }

    fn delta() -> impl Strategy<Value = Option<u64>> {
        proptest::option::of(prop_oneof![0..=DELTA_SECONDS_MAX, Just(DELTA_SECONDS_MAX)])
    }

    fn any_cache_control() -> impl Strategy<Value = CacheControl> {
        let stale = proptest::option::of(prop_oneof![
            Just(MaxStale::Any),
            (0..=DELTA_SECONDS_MAX).prop_map(MaxStale::Seconds),
        ]);
        (
            any::<[bool; 10]>(),
            [delta(), delta(), delta(), delta(), delta()],
            stale,
        )
            .prop_map(|(f, [max_age, s_maxage, min_fresh, swr, sie], max_stale)| {
                CacheControl {
                    max_age,
                    s_maxage,
                    no_cache: f[0],
                    no_store: f[1],
                    private: f[2],
                    public: f[3],
                    must_revalidate: f[4],
                    proxy_revalidate: f[5],
                    immutable: f[6],
                    no_transform: f[7],
                    must_understand: f[8],
                    only_if_cached: f[9],
                    min_fresh,
                    max_stale,
                    stale_while_revalidate: swr,
                    stale_if_error: sie,
                    conflicting: false,
                }
            })
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = CacheControl::parse(&bytes);
        }

        #[test]
        fn parse_lines_never_panics(
            lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..4),
        ) {
            let _ = CacheControl::parse_lines(lines.iter().map(Vec::as_slice));
        }

        #[test]
        fn render_parse_round_trip(c in any_cache_control()) {
            prop_assert_eq!(CacheControl::parse(c.render().as_bytes()), c);
        }

        #[test]
        fn near_miss_input_renders_to_a_fixed_point(
            s in r#"([a-zA-Z-]{1,12}( ?= ?("[0-9a-z,\\ ]{0,6}"?|[0-9]{1,12}))?[ \t]*,? ?){0,6}"#,
        ) {
            let parsed = CacheControl::parse(s.as_bytes());
            let mut expected = parsed.clone();
            expected.conflicting = false;
            prop_assert_eq!(CacheControl::parse(parsed.render().as_bytes()), expected);
        }
    }
}
