//! Last-Modified (RFC 9110 §8.8.2) and the If-Modified-Since precondition
//! (RFC 9110 §13.1.3), as a cache evaluates it against a stored response
//! (RFC 9111 §4.3.2) in the order of RFC 9110 §13.2.2.

use super::dates::parse_http_date;

/// The modification time a stored response is compared with (RFC 9111
/// §4.3.2): its `Last-Modified`, else its `Date`, else the time it was
/// received; all Unix seconds.
pub fn validator_time(last_modified: Option<i64>, date: Option<i64>, received: i64) -> i64 {
    last_modified.or(date).unwrap_or(received)
}

/// The `Last-Modified` to store and send (RFC 9110 §8.8.2.1): the origin's
/// value kept, but never later than the message's `Date` ("MUST NOT
/// generate a Last-Modified date that is later than the server's time of
/// message origination", and a future value "MUST" be replaced by the
/// origination date); without one, the `Date` itself, generated as the
/// moment the representation was produced.
pub fn effective_last_modified(last_modified: Option<i64>, date: i64) -> i64 {
    last_modified.map_or(date, |lm| lm.min(date))
}

/// If-Modified-Since (RFC 9110 §13.1.3): true when the server (here the
/// cache, for a stored response) should answer 304 Not Modified, i.e. the
/// condition is false because the representation was not modified after
/// the given date (`last_modified_or_date <= date`).
///
/// The field is ignored (false: send the full response) when:
/// - the request has `If-None-Match`, which takes precedence (RFC 9110
///   §13.1.3, §13.2.2 step 3 before step 4);
/// - the method is neither GET nor HEAD (RFC 9110 §13.1.3; method names are
///   case-sensitive, RFC 9110 §9.1);
/// - the value is not a valid HTTP-date, or has more than one member
///   (RFC 9110 §13.1.3). `ims_header` is the field value; pass several
///   lines joined with `", "`, which never parses as one date, so they are
///   ignored as §13.1.3 asks.
///
/// `last_modified_or_date` is [`validator_time`] of the stored response.
/// An If-Modified-Since later than the current time is not treated
/// specially: RFC 9110 §13.1.3 does not call it invalid (RFC 2616 §14.25
/// did).
pub fn if_modified_since_hits(
    ims_header: &[u8],
    last_modified_or_date: i64,
    has_if_none_match: bool,
    method: &[u8],
) -> bool {
    if has_if_none_match || !matches!(method, b"GET" | b"HEAD") {
        return false;
    }
    parse_http_date(ims_header).is_some_and(|since| last_modified_or_date <= since)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::dates::format_http_date;
    use proptest::prelude::*;

    const LM: i64 = 1_700_000_000;

    fn date(secs: i64) -> String {
        format_http_date(secs)
    }

    #[test]
    fn rfc9110_13_1_3_not_modified_since_gives_304() {
        assert!(if_modified_since_hits(
            date(LM).as_bytes(),
            LM,
            false,
            b"GET"
        ));
        assert!(if_modified_since_hits(
            date(LM + 1000).as_bytes(),
            LM,
            false,
            b"GET"
        ));
        assert!(if_modified_since_hits(
            date(LM).as_bytes(),
            LM,
            false,
            b"HEAD"
        ));
        assert!(!if_modified_since_hits(
            date(LM - 1).as_bytes(),
            LM,
            false,
            b"GET"
        ));
    }

    #[test]
    fn rfc9110_5_6_7_any_date_format_accepted() {
        // 2023-11-14T22:13:20Z is LM.
        assert!(if_modified_since_hits(
            b"Tuesday, 14-Nov-23 22:13:20 GMT",
            LM,
            false,
            b"GET"
        ));
        assert!(if_modified_since_hits(
            b"Tue Nov 14 22:13:20 2023",
            LM,
            false,
            b"GET"
        ));
        assert!(!if_modified_since_hits(
            b"Tue Nov 14 22:13:19 2023",
            LM,
            false,
            b"GET"
        ));
    }

    #[test]
    fn rfc9110_13_2_2_if_none_match_takes_precedence() {
        assert!(!if_modified_since_hits(
            date(LM).as_bytes(),
            LM,
            true,
            b"GET"
        ));
    }

    #[test]
    fn rfc9110_13_1_3_ignored_for_other_methods() {
        for m in [
            &b"POST"[..],
            b"PUT",
            b"DELETE",
            b"OPTIONS",
            b"get",
            b"head",
            b"",
        ] {
            assert!(!if_modified_since_hits(date(LM).as_bytes(), LM, false, m));
        }
    }

    #[test]
    fn rfc9110_13_1_3_ignored_when_invalid_or_a_list() {
        let d = date(LM);
        for bad in [
            String::new(),
            "0".to_owned(),
            "yesterday".to_owned(),
            d.replace("GMT", "UTC"),
            format!("{d}, {d}"),
            format!("{d} x"),
        ] {
            assert!(
                !if_modified_since_hits(bad.as_bytes(), LM, false, b"GET"),
                "{bad}"
            );
        }
        assert!(if_modified_since_hits(
            format!(" {d}\t").as_bytes(),
            LM,
            false,
            b"GET"
        ));
    }

    #[test]
    fn rfc9111_4_3_2_validator_time_falls_back() {
        assert_eq!(validator_time(Some(1), Some(2), 3), 1);
        assert_eq!(validator_time(None, Some(2), 3), 2);
        assert_eq!(validator_time(None, None, 3), 3);
    }

    #[test]
    fn rfc9110_8_8_2_1_last_modified_never_after_date() {
        assert_eq!(effective_last_modified(Some(100), 200), 100);
        assert_eq!(effective_last_modified(Some(300), 200), 200);
        assert_eq!(effective_last_modified(None, 200), 200);
    }

    proptest! {
        #[test]
        fn never_panics(ims in proptest::collection::vec(any::<u8>(), 0..40), lm in any::<i64>(), inm in any::<bool>(), m in "[A-Z]{0,5}") {
            let _ = if_modified_since_hits(&ims, lm, inm, m.as_bytes());
        }

        #[test]
        fn hit_iff_not_modified_after(since in 0i64..=4_102_444_799, lm in 0i64..=4_102_444_799) {
            prop_assert_eq!(if_modified_since_hits(date(since).as_bytes(), lm, false, b"GET"), lm <= since);
        }
    }
}
