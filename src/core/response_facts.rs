//! The facts `CacheMiddleware` keeps with each entry (RFC 9111 shared-cache semantics): a
//! stored response's parsed Cache-Control, its times for `Age` (§4.2.3) and its validators; or,
//! for a URL whose responses vary, the index of its variants (§4.1).

use crate::http::cache_control::CacheControl;
use crate::http::freshness::ResponseTimes;
use crate::http::vary::Vary;

/// What a shared cache keeps beside a stored response, or in place of one: the facts the
/// reuse rules read on every hit, parsed once when the response was stored.
#[derive(Clone)]
pub enum ResponseFacts {
    /// A stored response.
    Response {
        /// Its Cache-Control, parsed once.
        cc: CacheControl,
        /// Date, Expires, Age and the request/response times (RFC 9111 §4.2.3).
        times: ResponseTimes,
        /// Its ETag field value, if any.
        etag: Option<String>,
        /// Last-Modified, or else Date, for If-Modified-Since (RFC 9110 §13.1.3).
        last_modified: Option<i64>,
    },
    /// The Vary names of a URL with variants; `stamp` is part of every variant's key, so that
    /// replacing or removing the index makes the old variants unreachable.
    Variants {
        /// The field names.
        vary: Vary,
        /// Distinguishes this index from earlier ones of the same URL.
        stamp: u64,
    },
}
