//! `MiddlewareEngine`: the decisions of `CacheMiddleware`, a shared HTTP cache (RFC 9111) in
//! front of an ASGI app. Python moves the ASGI messages; every decision is made here with the
//! rules of `crate::http` (storable, freshness, vary, conditional, invalidation).
//!
//! Entries live in the same `MemoryStore` as the decorator's, under keys of their own: the
//! primary key is the request target (scheme, host, raw path, raw query). A response without
//! `Vary` is stored there; a response with `Vary` stores its field names there (a variants
//! index with a stamp) and itself under a secondary key of the request's values for those
//! fields (RFC 9111 §4.1), so one URL holds several variants.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use xxhash_rust::xxh3::xxh3_64;

use super::convert::{header_slices, headers, ScopeParts};
use super::decoded::DecodedFrames;
use super::reply::Replier;
use super::results::{Bypass, ResponseAction};
use super::route::{frame_envelope, remote_path_tag, unframe_within, write_skipped};
use super::route_config::Tier;
use super::store::{MemoryStore, PyPayload, PY_BYTES_OVERHEAD, PY_HEADER_OVERHEAD};
use crate::core::entry::EntryMeta;
use crate::core::envelope;
use crate::core::key::{Key, KeyBuilder};
use crate::core::response_facts::ResponseFacts;
use crate::core::store::{path_tag, Lookup, RouteLabels, Stored, Tags};
use crate::http::cache_control::CacheControl;
use crate::http::cache_status::{ttl_seconds, CacheStatus, Forward};
use crate::http::freshness::{
    age_header_value, assess, current_age, freshness_lifetime, stale_if_error_allows,
    RequestDirectives, ResponseTimes, Reuse, ReusePolicy,
};
use crate::http::invalidation::invalidation_targets;
use crate::http::reply::{self, Conditions, Label};
use crate::http::request::{analyze, forwarding_values};
use crate::http::storable::{
    body_fits, connection_options, decide, headers_to_store, is_storable_field, StoreSettings,
    DEFAULT_STATUSES,
};
use crate::http::targeted::{is_targeted, surrogate_view};
use crate::http::vary::{secondary_key, Vary};
use crate::http::{dates, freshness};

/// How long an entry is kept past its freshness for revalidation (seconds).
const KEEP_STALE: f64 = 3600.0;
/// With a remote backend only, how long a new entry stays in memory for the requests that
/// waited for it (the backend's copy answers everyone else).
const COALESCE_SECONDS: f64 = 2.0;

static STAMPS: AtomicU64 = AtomicU64::new(1);

/// The request a miss or a revalidation was decided for, owned by its `MiddlewarePending`
/// (and shared by the pendings a backend's answers make from it).
struct RequestFacts {
    scheme: Vec<u8>,
    host: Option<Vec<u8>>,
    path: Vec<u8>,
    query: Vec<u8>,
    method: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    client_inm: Vec<Vec<u8>>,
    client_ims: Vec<Vec<u8>>,
    directives: RequestDirectives,
    has_credentials: bool,
    no_store: bool,
    time: f64,
}

/// A request as the engine judges it: borrowed from the scope (a lookup) or from a pending
/// miss (a backend's answer, `accept`).
struct Req<'a> {
    scheme: &'a [u8],
    host: Option<&'a [u8]>,
    path: &'a [u8],
    query: &'a [u8],
    method: &'a [u8],
    headers: &'a [(&'a [u8], &'a [u8])],
    client_inm: &'a [Vec<u8>],
    client_ims: &'a [Vec<u8>],
    directives: RequestDirectives,
    has_credentials: bool,
    no_store: bool,
}

impl<'a> Req<'a> {
    /// The client's side of a reply from an entry: its method and its own conditionals.
    fn conditions(&self) -> Conditions<'a> {
        Conditions {
            head: self.method.eq_ignore_ascii_case(b"HEAD"),
            if_none_match: self.client_inm,
            if_modified_since: self.client_ims.first().map(Vec::as_slice),
        }
    }

    fn to_owned(&self, time: f64) -> RequestFacts {
        RequestFacts {
            scheme: self.scheme.to_vec(),
            host: self.host.map(<[u8]>::to_vec),
            path: self.path.to_vec(),
            query: self.query.to_vec(),
            method: self.method.to_vec(),
            headers: owned(self.headers),
            client_inm: self.client_inm.to_vec(),
            client_ims: self.client_ims.to_vec(),
            directives: self.directives,
            has_credentials: self.has_credentials,
            no_store: self.no_store,
            time,
        }
    }
}

/// What the reuse rules say about an entry for one request.
enum Verdict<'py> {
    /// The entry answers (fresh, or stale as the client allowed).
    Hit(Bound<'py, PyTuple>),
    /// `504 Gateway Timeout`: the client said `only-if-cached` (RFC 9111 §5.2.1.7).
    Refused(Bound<'py, PyTuple>),
    /// The app answers: revalidating `stale` when it has validators; `stale_reply` may
    /// answer meanwhile (`serve_stale`) or if the app fails (RFC 5861).
    Miss {
        stale: Option<Arc<Stored<PyPayload>>>,
        stale_reply: Option<Py<PyTuple>>,
        serve_stale: bool,
        fwd: Forward,
    },
}

/// The context of a miss or a revalidation, handed back by Python. With a remote backend, a
/// lookup that found no usable entry in memory hands back one with `read_key` set: Python
/// reads that key and gives the frame to `MiddlewareEngine.accept`, which answers or hands
/// back the next pending (the variant's key to read after a variants index, or the miss).
#[pyclass(frozen, module = "oxicache._core")]
pub struct MiddlewarePending {
    req: Arc<RequestFacts>,
    /// The stale entry being revalidated, if any.
    stale: Option<Arc<Stored<PyPayload>>>,
    /// A reply from the stale entry: sent now while a background request refreshes the entry
    /// (`serve_stale`, RFC 5861 §3), or instead of an error from the app (RFC 5861 §4).
    stale_reply: Option<Py<PyTuple>>,
    serve_stale: bool,
    /// The primary key's digest: concurrent misses of one URL wait for one app call.
    flight: String,
    /// Why the request goes to the app, for `Cache-Status: fwd=` (RFC 9211 §2.2).
    fwd: Forward,
    /// The headers to forward, when they differ from the request's.
    forward: Option<Py<PyList>>,
    /// The URL's backend key (None in memory).
    remote_key: Option<String>,
    /// The backend key to read next, if any.
    read_key: Option<String>,
    /// `read_key` is a variant's key (read after the URL's variants index).
    variant: bool,
    /// Which of its variant's two slots `read_key` is (see `variant_slot`), and so where
    /// this request's response is written.
    slot: u8,
    /// The variants index the backend holds for this URL: its names and stamp.
    index: Option<(Vary, u64)>,
    /// The backend's frame was foreign, cut short or damaged: read as a miss.
    foreign: bool,
}

#[pymethods]
impl MiddlewarePending {
    /// The request headers to forward to the app (validators added, the client's own
    /// conditionals removed), or None to forward the request unchanged.
    #[getter]
    fn forward_headers(&self, py: Python<'_>) -> Option<Py<PyList>> {
        self.forward.as_ref().map(|l| l.clone_ref(py))
    }

    /// The stale reply, if the entry is inside a stale window (see `serve_stale`).
    #[getter]
    fn stale_reply(&self, py: Python<'_>) -> Option<Py<PyTuple>> {
        self.stale_reply.as_ref().map(|t| t.clone_ref(py))
    }

    /// True when the stale reply is to be sent now while the entry refreshes.
    #[getter]
    fn serve_stale(&self) -> bool {
        self.serve_stale
    }

    /// Identifies the URL for single-flight.
    #[getter]
    fn flight(&self) -> &str {
        &self.flight
    }

    /// The backend key to read before deciding (None: decided).
    #[getter]
    fn read_key(&self) -> Option<&str> {
        self.read_key.as_deref()
    }

    /// The URL's backend key (its entry, or its variants index); None in memory.
    #[getter]
    fn remote_key(&self) -> Option<&str> {
        self.remote_key.as_deref()
    }

    /// The backend's frame for this request was foreign or damaged (and is overwritten).
    #[getter]
    fn foreign(&self) -> bool {
        self.foreign
    }

    /// The app is asked to revalidate an entry, or the client refused a stored one: such a
    /// miss takes no cross-process lock.
    #[getter]
    fn revalidating(&self) -> bool {
        self.stale.is_some() || self.fwd == Forward::Request
    }

    /// The backend tag of the request's path, written with its entries (`path:<16 hex>`).
    #[getter]
    fn path_tag(&self) -> String {
        remote_path_tag(path_tag(&self.req.path))
    }
}

/// The middleware's settings and decisions.
#[pyclass(frozen, module = "oxicache._core")]
pub struct MiddlewareEngine {
    store: Py<MemoryStore>,
    prefix: String,
    /// Which app this middleware serves: two middlewares in one process (a public and an
    /// internal app) never answer from each other's entries, even for the same host and path.
    app_namespace: String,
    settings: StoreSettings,
    policy: ReusePolicy,
    /// Builds the replies (see `reply.rs`), with the label field `header_name`.
    replier: Replier,
    labels: Arc<RouteLabels>,
    #[pyo3(get)]
    max_body: usize,
    /// Where entries live (see `Tier`): with a backend, memory holds bounded copies only.
    tier: Tier,
    /// Two tiers: the longest a local copy of a backend's entry is used, in seconds.
    local_ttl: f64,
    /// Frames at least this long are zstd-compressed.
    compress_threshold: usize,
    /// Remote only: the last frame read per key and the response decoded from it (a hot URL's
    /// frame is usually the same bytes as the last request's: see `decoded.rs`).
    decoded: DecodedFrames,
    /// With a backend: the most variants of one URL it holds (see `variant_slot`).
    #[pyo3(get)]
    max_variants: u64,
}

/// One write for Python to make to the backend after the response: `(key, frame, ttl)`.
type Write<'py> = (String, Bound<'py, PyBytes>, f64);

fn owned(hs: &[(&[u8], &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
    hs.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
}

fn lines<'a>(hs: &'a [(&'a [u8], &'a [u8])], name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    hs.iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

fn slices(hs: &[(Vec<u8>, Vec<u8>)]) -> Vec<(&[u8], &[u8])> {
    hs.iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect()
}

fn is_conditional(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"if-none-match")
        || name.eq_ignore_ascii_case(b"if-modified-since")
        || name.eq_ignore_ascii_case(b"if-match")
        || name.eq_ignore_ascii_case(b"if-unmodified-since")
        || name.eq_ignore_ascii_case(b"if-range")
}

// Frames in a backend. A middleware entry is the versioned envelope (`core::envelope`) of the
// stored response, with the facts the reuse rules need beside its fields as pseudo-fields
// whose names start with `:` (never a field name: `:` is not a token character, RFC 9110
// §5.1 and §5.6.2): `:cc`, each Cache-Control line this cache obeyed (RFC 9213's targeted
// field when the response had one), and `:rt`, the request time (RFC 9111 §4.2.3). A URL
// whose responses vary stores a variants index under its own key instead: `:vary`, the Vary
// field names, and `:stamp`, which is part of every variant's key (RFC 9111 §4.1).
const CC: &[u8] = b":cc";
const REQUEST_TIME: &[u8] = b":rt";
const VARY: &[u8] = b":vary";
const STAMP: &[u8] = b":stamp";

/// What a backend's frame holds.
enum Frame {
    Response(Stored<PyPayload>),
    /// An entry of this format written for another key: another variant of the URL that
    /// shares the slot (see `variant_slot`), a plain miss.
    OtherKey,
    Index {
        vary: Vary,
        stamp: u64,
        meta: EntryMeta,
    },
}

/// How long the backend keeps a response past its freshness: an hour when it can still be
/// used (revalidated with its validators, or served in a stale window, RFC 5861), else not.
fn kept_stale(cc: &CacheControl, etag: &Option<String>, last_modified: Option<i64>) -> f64 {
    let usable = etag.is_some()
        || last_modified.is_some()
        || cc.stale_while_revalidate.is_some()
        || cc.stale_if_error.is_some();
    if usable {
        KEEP_STALE
    } else {
        0.0
    }
}

impl MiddlewareEngine {
    fn is_own(&self, name: &[u8]) -> bool {
        self.replier.own().is_own(name)
    }

    /// The fields of a response passed on without being stored (`why`, RFC 9211 §2.8
    /// `detail`): the app's, less this cache's label and `Cache-Status` (an `Age` from a cache
    /// behind this one stays), labelled MISS.
    fn not_stored<'py>(
        &self,
        py: Python<'py>,
        response_headers: &super::convert::Headers<'py>,
        why: &str,
    ) -> PyResult<Bound<'py, PyList>> {
        let status = CacheStatus::forward(Forward::Miss).detail(why);
        // The status and body are the app's; only the fields are built here.
        let reply = reply::pass_on(0, false, self.replier.own(), false, status);
        self.replier.fields(py, response_headers, &reply)
    }

    /// The URL's key: scheme, host, raw path and query, and the forwarding headers the
    /// request carries (`forwarding_values`): a response to a request with
    /// `X-Forwarded-Host: evil` may embed that host, so it never answers a request without it.
    fn primary(
        &self,
        scheme: &[u8],
        host: Option<&[u8]>,
        path: &[u8],
        query: &[u8],
        request_headers: &[(&[u8], &[u8])],
    ) -> KeyBuilder {
        let mut kb = KeyBuilder::new();
        // A shared and a private cache never answer from each other's entries (RFC 9111 §3).
        let kind = if self.settings.shared {
            "shared"
        } else {
            "private"
        };
        kb.str(&self.prefix)
            .str("middleware")
            .str(&self.app_namespace)
            .str(kind)
            .str("GET")
            .bytes(scheme);
        kb.opt_bytes(host).bytes(path).bytes(query);
        let forwarded = forwarding_values(request_headers);
        kb.list(forwarded.len());
        for (which, value) in &forwarded {
            kb.int(*which as i64).bytes(value);
        }
        kb
    }

    fn primary_of(&self, req: &Req<'_>) -> KeyBuilder {
        self.primary(req.scheme, req.host, req.path, req.query, req.headers)
    }

    /// The backend key of a variant (`variant`, from `variant_key`, which holds the index's
    /// stamp and the request's values): one of the URL's `max_variants` slots. Each variant
    /// has two candidate slots (`choice` 0 and 1), chosen by its own key; it is read from the
    /// first, and from the second when the first holds another variant. A frame is bound to
    /// the key it was written for (the envelope's key check), not to its slot, so reading
    /// another variant's frame, or one of an index since replaced (another stamp), is a
    /// miss, never its answer; a request that found neither of its slots free writes its
    /// response to the second. The slots do not depend on the stamp: however many values
    /// the requests send for the `Vary` fields (RFC 9111 §4.1 leaves how many variants a
    /// cache keeps to it), and however often the index is replaced, a URL has at most
    /// `max_variants` variant keys in the backend. Two variants of one index displace each
    /// other only when they share both slots.
    fn variant_slot(&self, primary: &KeyBuilder, variant: &Key, choice: u8) -> String {
        let digest = variant.digest();
        let at = if choice == 0 { 0 } else { 8 };
        let mut part = [0u8; 8];
        part.copy_from_slice(&digest[at..at + 8]);
        let slot = u64::from_le_bytes(part) % self.max_variants.max(1);
        let mut kb = primary.clone();
        kb.str("variant-slot")
            .int(i64::from_ne_bytes(slot.to_ne_bytes()));
        self.remote_key(&kb.finish())
    }

    /// The pending read of a variant (`variant`, under `index`) from its slot `choice`.
    fn variant_read(
        &self,
        py: Python<'_>,
        facts: &Arc<RequestFacts>,
        primary: &KeyBuilder,
        index: (Vary, u64),
        variant: &Key,
        choice: u8,
    ) -> PyResult<MiddlewarePending> {
        let mut next = self.pending(
            py,
            Arc::clone(facts),
            primary,
            None,
            None,
            false,
            Forward::Miss,
            Some(index),
            false,
        )?;
        next.read_key = Some(self.variant_slot(primary, variant, choice));
        next.variant = true;
        next.slot = choice;
        Ok(next)
    }

    fn variant_key(primary: &KeyBuilder, stamp: u64, values: &[Option<Vec<u8>>]) -> Key {
        let mut kb = primary.clone();
        kb.str("variant")
            .int(i64::from_ne_bytes(stamp.to_ne_bytes()));
        kb.list(values.len());
        for v in values {
            kb.opt_bytes(v.as_deref());
        }
        kb.finish()
    }

    /// The backend key of an entry: readable labels for prefix invalidation, then the digest
    /// (the shape of the decorator's keys: `<prefix>:middleware:<app>:<digest>`).
    fn remote_key(&self, key: &Key) -> String {
        format!(
            "{}:{}:{}:{}",
            self.prefix,
            self.labels.namespace,
            self.labels.route,
            key.hex()
        )
    }

    fn tags(&self, path: &[u8]) -> Tags {
        Tags {
            labels: Arc::clone(&self.labels),
            path: path_tag(path),
            user: None,
        }
    }

    /// The stored response for a request, following a variants index.
    fn find(
        &self,
        primary: &KeyBuilder,
        hs: &[(&[u8], &[u8])],
        now: f64,
    ) -> Option<Arc<Stored<PyPayload>>> {
        let store = self.store.get().current();
        let entry = match store.get_at(&primary.clone().finish(), now) {
            Lookup::Fresh(e) | Lookup::Stale(e) => e,
            Lookup::Miss => return None,
        };
        match entry.payload.mw.as_deref() {
            Some(ResponseFacts::Response { .. }) => Some(entry),
            Some(ResponseFacts::Variants { vary, stamp }) => {
                let values = secondary_key(vary, hs)?;
                match store.get_at(&Self::variant_key(primary, *stamp, &values), now) {
                    Lookup::Fresh(e) | Lookup::Stale(e) => Some(e),
                    Lookup::Miss => None,
                }
            }
            None => None,
        }
    }

    /// A reply from a stored response (`reply::replay`): 304 when the client's own
    /// conditional matches (RFC 9111 §4.3.2), else the stored status and body, with the age
    /// as this cache computes it (RFC 9111 §5.1, §4.2.3).
    fn reply<'py>(
        &self,
        py: Python<'py>,
        entry: &Stored<PyPayload>,
        now: f64,
        request: &Conditions<'_>,
        label: Label,
        status: CacheStatus<'_>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let Some(ResponseFacts::Response { times, .. }) = entry.payload.mw.as_deref() else {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "not a response entry",
            ));
        };
        let age = age_header_value(times, now);
        let facts = Replier::facts(py, entry)?;
        let reply = reply::replay(&facts, request, Some(age), label, status);
        self.replier.replay(py, entry, &reply)
    }

    /// What the reuse rules (RFC 9111 §4.2, §4.3, §5.2.1; RFC 5861) say about `found` for
    /// `req`.
    fn judge<'py>(
        &self,
        py: Python<'py>,
        req: &Req<'_>,
        found: Option<&Arc<Stored<PyPayload>>>,
        now: f64,
    ) -> PyResult<Verdict<'py>> {
        let request = req.directives;
        let client = req.conditions();
        let mut stale = None;
        let mut stale_reply: Option<Py<PyTuple>> = None;
        let mut serve_stale = false;
        let mut fwd = Forward::Miss;
        let Some(entry) = found else {
            if request.only_if_cached {
                // RFC 9111 §5.2.1.7: nothing stored, and the client forbade going to the origin.
                return Ok(Verdict::Refused(
                    self.replier.bare(py, &reply::only_if_cached())?,
                ));
            }
            return Ok(Verdict::Miss {
                stale,
                stale_reply,
                serve_stale,
                fwd,
            });
        };
        if let Some(ResponseFacts::Response {
            cc,
            times,
            etag,
            last_modified,
        }) = entry.payload.mw.as_deref()
        {
            // A credentialed request reuses only what the response allowed (RFC 9111 §3.5).
            let allowed =
                !req.has_credentials || cc.public || cc.s_maxage.is_some() || cc.must_revalidate;
            let verdict = assess(cc, times, now, &request, &self.policy);
            // RFC 9211 §2.2: a fresh entry refused by the request's directives is
            // `fwd=request`; a stale one is `fwd=stale`.
            fwd = if freshness::is_fresh(verdict.lifetime, verdict.age) {
                Forward::Request
            } else {
                Forward::Stale
            };
            // RFC 5861: which stale window, if any, lets this entry answer instead of the
            // app (now, or if the app fails).
            let window = if !allowed {
                None
            } else if matches!(verdict.reuse, Reuse::StaleWhileRevalidate) {
                Some("stale-while-revalidate")
            } else if !matches!(verdict.reuse, Reuse::Fresh | Reuse::StaleAllowed)
                && stale_if_error_allows(
                    cc,
                    verdict.lifetime,
                    verdict.age,
                    &request,
                    self.settings.shared,
                )
            {
                Some("stale-if-error")
            } else {
                None
            };
            // RFC 9211 §2.4: the freshness left, negative once stale.
            let ttl = ttl_seconds(verdict.lifetime.unwrap_or(0.0) - verdict.age);
            if let Some(detail) = window {
                let status = CacheStatus::hit(ttl).detail(detail);
                let reply = self.reply(py, entry, now, &client, Label::Stale, status)?;
                stale_reply = Some(reply.unbind());
                serve_stale = detail == "stale-while-revalidate";
            }
            match verdict.reuse {
                Reuse::Fresh | Reuse::StaleAllowed if allowed => {
                    let (label, status) = if matches!(verdict.reuse, Reuse::Fresh) {
                        // A fresh entry has a `ttl` of at least 0.
                        (Label::Hit, CacheStatus::hit(ttl.max(0)))
                    } else {
                        // RFC 9111 §5.2.1.2: a stale answer the client's max-stale
                        // accepted; labelled like the decorator's.
                        (Label::Stale, CacheStatus::hit(ttl).detail("max-stale"))
                    };
                    let reply = self.reply(py, entry, now, &client, label, status)?;
                    return Ok(Verdict::Hit(reply));
                }
                Reuse::NotUsable => {
                    return Ok(Verdict::Refused(
                        self.replier.bare(py, &reply::only_if_cached())?,
                    ))
                }
                // RFC 9111 §5.2.1.7: usable but not for this credentialed request (§3.5).
                _ if request.only_if_cached => {
                    return Ok(Verdict::Refused(
                        self.replier.bare(py, &reply::only_if_cached())?,
                    ))
                }
                _ => {
                    if etag.is_some() || last_modified.is_some() {
                        stale = Some(Arc::clone(entry));
                    }
                }
            }
        }
        Ok(Verdict::Miss {
            stale,
            stale_reply,
            serve_stale,
            fwd,
        })
    }

    /// The pending miss for a `Verdict::Miss`: the headers to forward (without the client's
    /// conditionals, so the answer can be stored, the cache evaluating them itself, RFC 9111
    /// §4.3.2; with the stored validators when revalidating, §4.3.1).
    #[allow(clippy::too_many_arguments)]
    fn pending(
        &self,
        py: Python<'_>,
        req: Arc<RequestFacts>,
        primary: &KeyBuilder,
        stale: Option<Arc<Stored<PyPayload>>>,
        stale_reply: Option<Py<PyTuple>>,
        serve_stale: bool,
        fwd: Forward,
        index: Option<(Vary, u64)>,
        foreign: bool,
    ) -> PyResult<MiddlewarePending> {
        let changed = stale.is_some()
            || !req.client_inm.is_empty()
            || !req.client_ims.is_empty()
            || req.headers.iter().any(|(n, _)| is_conditional(n));
        let forward = if changed {
            let forward = PyList::empty(py);
            for (n, v) in &req.headers {
                if !is_conditional(n) {
                    forward.append((PyBytes::new(py, n), PyBytes::new(py, v)))?;
                }
            }
            if let Some(entry) = &stale {
                if let Some(ResponseFacts::Response {
                    etag,
                    last_modified,
                    ..
                }) = entry.payload.mw.as_deref()
                {
                    if let Some(e) = etag {
                        forward.append((
                            PyBytes::new(py, b"if-none-match"),
                            PyBytes::new(py, e.as_bytes()),
                        ))?;
                    } else if let Some(lm) = last_modified {
                        let value = dates::format_http_date(*lm);
                        forward.append((
                            PyBytes::new(py, b"if-modified-since"),
                            PyBytes::new(py, value.as_bytes()),
                        ))?;
                    }
                }
            }
            Some(forward.unbind())
        } else {
            None
        };
        let key = primary.clone().finish();
        let remote_key = (self.tier != Tier::Memory).then(|| self.remote_key(&key));
        Ok(MiddlewarePending {
            req,
            stale,
            stale_reply,
            serve_stale,
            flight: key.hex(),
            fwd,
            forward,
            remote_key,
            read_key: None,
            variant: false,
            slot: 0,
            index,
            foreign,
        })
    }

    /// The pending of a request whose entry is to be read from the backend, from the URL's
    /// key (its entry, or its variants index).
    fn to_read(
        &self,
        py: Python<'_>,
        req: Arc<RequestFacts>,
        primary: &KeyBuilder,
    ) -> PyResult<MiddlewarePending> {
        let mut pending = self.pending(
            py,
            req,
            primary,
            None,
            None,
            false,
            Forward::Miss,
            None,
            false,
        )?;
        pending.read_key = pending.remote_key.clone();
        Ok(pending)
    }

    /// A fresh stamp for a new variants index. Random across processes (from the time, the
    /// process and a counter): two processes never write indexes with one stamp for a URL.
    fn new_stamp() -> u64 {
        let n = STAMPS.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut seed = Vec::with_capacity(36);
        seed.extend_from_slice(&n.to_le_bytes());
        seed.extend_from_slice(&nanos.to_le_bytes());
        seed.extend_from_slice(&std::process::id().to_le_bytes());
        xxh3_64(&seed)
    }

    /// The envelope of one frame for the backend (zstd above the threshold).
    fn pack<'py>(
        &self,
        py: Python<'py>,
        key: &Key,
        meta: &EntryMeta,
        fields: &[(&[u8], &[u8])],
        body: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        frame_envelope(
            py,
            &key.check(),
            meta,
            fields,
            body,
            self.compress_threshold,
        )
    }

    /// What a frame the backend returned for `key` holds; None when it is foreign, cut short,
    /// damaged or not a middleware entry (a miss, overwritten by this request).
    fn decode_frame(
        &self,
        py: Python<'_>,
        data: &[u8],
        key: &Key,
        path: &[u8],
    ) -> PyResult<Option<(Frame, usize)>> {
        // Twice the largest entry this middleware or the store writes (never a zstd bomb).
        let store_limit = self.store.get().current().config().max_entry_bytes;
        let limit = store_limit.max(self.max_body).saturating_mul(2);
        let Some(env_bytes) = unframe_within(py, data, limit) else {
            return Ok(None);
        };
        let env = match envelope::decode_for(&env_bytes, &key.check()) {
            Ok(env) => env,
            Err(envelope::EnvelopeError::KeyMismatch) => return Ok(Some((Frame::OtherKey, 0))),
            Err(_) => return Ok(None),
        };
        let mut cc_lines: Vec<&[u8]> = Vec::new();
        let (mut request_time, mut vary, mut stamp) = (None, None, None);
        let mut fields: Vec<(&[u8], &[u8])> = Vec::with_capacity(env.headers.len());
        for &(n, v) in &env.headers {
            let number = || std::str::from_utf8(v).ok();
            match n {
                CC => cc_lines.push(v),
                REQUEST_TIME => {
                    request_time = number()
                        .and_then(|t| t.parse::<f64>().ok())
                        .filter(|t| t.is_finite());
                }
                VARY => vary = Some(v),
                STAMP => stamp = number().and_then(|t| t.parse::<u64>().ok()),
                _ if n.first() == Some(&b':') => return Ok(None),
                _ => fields.push((n, v)),
            }
        }
        if let Some(names) = vary {
            let vary = Vary::parse_lines([names]);
            return Ok(match (stamp, vary.is_any() || vary.names().is_empty()) {
                (Some(stamp), false) => Some((
                    Frame::Index {
                        vary,
                        stamp,
                        meta: env.meta.clone(),
                    },
                    64,
                )),
                _ => None,
            });
        }
        let Some(request_time) = request_time else {
            return Ok(None);
        };
        // What this cache would never have stored is not served, whoever wrote it (a backend
        // others can write to): a status it does not store, `no-store`, `private` in a shared
        // cache (RFC 9111 §3, §5.2.2.5, §5.2.2.7), `Set-Cookie`, or a field no response can
        // carry (CR, LF or NUL, RFC 9110 §5.5).
        let cc = CacheControl::parse_lines(cc_lines);
        let broken = |b: &u8| matches!(b, b'\r' | b'\n' | 0);
        if !self.settings.statuses.contains(&env.meta.status)
            || cc.no_store
            || (self.settings.shared && cc.private)
            || fields.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case(b"set-cookie")
                    || n.iter().any(broken)
                    || v.iter().any(broken)
            })
        {
            return Ok(None);
        }
        let response_time = env.meta.stored_at;
        let times = ResponseTimes::from_headers(&fields, request_time, response_time);
        let etag = lines(&fields, b"etag")
            .next()
            .map(|v| String::from_utf8_lossy(v).into_owned());
        let last_modified = lines(&fields, b"last-modified")
            .next()
            .and_then(|v| dates::parse_http_date_at(v, response_time as i64))
            .or(times.date);
        let mut payload_bytes = env.body.len() + PY_BYTES_OVERHEAD;
        for (n, v) in &fields {
            payload_bytes += n.len() + v.len() + PY_HEADER_OVERHEAD;
        }
        let stored_headers = PyTuple::new(
            py,
            fields
                .iter()
                .map(|(n, v)| (PyBytes::new(py, n), PyBytes::new(py, v))),
        )?;
        let payload = PyPayload {
            body: PyBytes::new(py, env.body).unbind(),
            headers: stored_headers.unbind(),
            content_length: false,
            last_modified: None,
            mw: Some(Box::new(ResponseFacts::Response {
                cc,
                times,
                etag,
                last_modified,
            })),
        };
        let weight = u32::try_from(payload_bytes).unwrap_or(u32::MAX);
        let entry = Stored::detached(key, env.meta.clone(), payload, self.tags(path), weight);
        Ok(Some((Frame::Response(entry), payload_bytes)))
    }

    /// The metadata of a local copy of a backend's entry: kept as it is in memory only;
    /// with a backend, at most the coalescing window (remote only) or `local_ttl` (two
    /// tiers) from `now`, never past the entry's own retention. None: no local copy.
    fn local_meta(&self, meta: &EntryMeta, now: f64) -> Option<EntryMeta> {
        let bound = match self.tier {
            Tier::Memory => return Some(meta.clone()),
            Tier::Remote => COALESCE_SECONDS,
            Tier::Layered if self.local_ttl > 0.0 => self.local_ttl,
            Tier::Layered => return None,
        };
        Some(EntryMeta {
            ttl: meta.ttl.min(meta.age(now) + bound),
            ..meta.clone()
        })
    }

    /// Keeps a copy of a fresh response the backend returned, for at most `local_ttl` seconds
    /// (two tiers) or the coalescing window (remote only, see `local_meta`).
    fn keep_local(
        &self,
        py: Python<'_>,
        key: &Key,
        entry: &Stored<PyPayload>,
        payload_bytes: usize,
        now: f64,
    ) {
        if let Some(ResponseFacts::Response { cc, times, .. }) = entry.payload.mw.as_deref() {
            let lifetime = freshness_lifetime(cc, times, self.settings.shared).unwrap_or(0.0);
            if current_age(times, now) >= lifetime {
                return;
            }
        }
        let Some(meta) = self.local_meta(&entry.meta, now) else {
            return;
        };
        let _ = self.store.get().current().insert(
            key,
            meta,
            entry.payload.clone_ref(py),
            payload_bytes,
            entry.tags.clone(),
        );
    }

    /// Stores a response; returns the entry and, with a backend, the frames to write, or
    /// the reason it was not stored.
    #[allow(clippy::type_complexity)]
    fn store_response<'py>(
        &self,
        py: Python<'py>,
        pending: &MiddlewarePending,
        status: u16,
        response_headers: &[(&[u8], &[u8])],
        body: &[u8],
        now: f64,
    ) -> PyResult<Result<(Arc<Stored<PyPayload>>, Vec<Write<'py>>), &'static str>> {
        let req = &pending.req;
        let request = slices(&req.headers);
        let view = surrogate_view(response_headers);
        let view = slices(&view);
        let decision = match decide(&req.method, &request, status, &view, &self.settings) {
            Ok(d) => d,
            Err(why) => return Ok(Err(why.as_str())),
        };
        if req.no_store {
            return Ok(Err("request-no-store"));
        }
        if !body_fits(body.len() as u64, &self.settings) {
            return Ok(Err("too-large"));
        }
        // A name starting with `:` is not a field name (RFC 9110 §5.1): never stored, so that
        // nothing an app sends can pass for the frame's own pseudo-fields.
        let kept: Vec<(&[u8], &[u8])> = headers_to_store(response_headers)
            .into_iter()
            .filter(|(n, _)| !self.is_own(n) && !is_targeted(n) && n.first() != Some(&b':'))
            .collect();
        let times = ResponseTimes::from_headers(response_headers, req.time, now);
        let lifetime = freshness_lifetime(&decision.cache_control, &times, self.settings.shared)
            .unwrap_or(0.0);
        let etag = lines(response_headers, b"etag")
            .next()
            .map(|v| String::from_utf8_lossy(v).into_owned());
        let last_modified = lines(response_headers, b"last-modified")
            .next()
            .and_then(|v| dates::parse_http_date_at(v, now as i64))
            .or(times.date);
        let mut payload_bytes = body.len() + PY_BYTES_OVERHEAD;
        for (n, v) in &kept {
            payload_bytes += n.len() + v.len() + PY_HEADER_OVERHEAD;
        }
        let backend_ttl =
            lifetime.max(1.0) + kept_stale(&decision.cache_control, &etag, last_modified);
        let stored_headers = PyTuple::new(
            py,
            kept.iter()
                .map(|(n, v)| (PyBytes::new(py, n), PyBytes::new(py, v))),
        )?;
        let payload = PyPayload {
            body: PyBytes::new(py, body).unbind(),
            headers: stored_headers.unbind(),
            content_length: false,
            last_modified: None,
            mw: Some(Box::new(ResponseFacts::Response {
                cc: decision.cache_control.clone(),
                times,
                etag,
                last_modified,
            })),
        };
        let meta = EntryMeta {
            status,
            stored_at: now,
            ttl: lifetime.max(1.0),
            stale_while_revalidate: KEEP_STALE,
            stale_if_error: 0.0,
            etag: String::new(),
        };
        let store = self.store.get().current();
        let remote = self.tier != Tier::Memory;
        let primary = self.primary(
            &req.scheme,
            req.host.as_deref(),
            &req.path,
            &req.query,
            &request,
        );
        let tags = self.tags(&req.path);
        let mut writes: Vec<Write<'py>> = Vec::new();
        // With a backend, where a variant is written (its slot); None: under its own key.
        let mut slot: Option<String> = None;
        let key = match &decision.vary {
            Vary::Fields(names) if !names.is_empty() => {
                // Keep the index (and so the other variants) when the names did not change:
                // the backend's, else the one in memory; else a new stamp.
                // With a backend, only the backend's index counts: a local copy may predate an
                // invalidation that deleted the index (its old variants must stay unreachable).
                let known = match &pending.index {
                    Some((vary, stamp)) if *vary == decision.vary => Some(*stamp),
                    _ if remote => None,
                    _ => match store.get_at(&primary.clone().finish(), now) {
                        Lookup::Fresh(e) | Lookup::Stale(e) => match e.payload.mw.as_deref() {
                            Some(ResponseFacts::Variants { vary, stamp })
                                if *vary == decision.vary =>
                            {
                                Some(*stamp)
                            }
                            _ => None,
                        },
                        Lookup::Miss => None,
                    },
                };
                let stamp = known.unwrap_or_else(Self::new_stamp);
                let index = PyPayload {
                    body: PyBytes::new(py, b"").unbind(),
                    headers: PyTuple::empty(py).unbind(),
                    content_length: false,
                    last_modified: None,
                    mw: Some(Box::new(ResponseFacts::Variants {
                        vary: decision.vary.clone(),
                        stamp,
                    })),
                };
                let index_meta = EntryMeta {
                    ttl: KEEP_STALE,
                    stale_while_revalidate: 0.0,
                    ..meta.clone()
                };
                let index_key = primary.clone().finish();
                if remote {
                    let names = decision.vary.to_header();
                    let stamp_text = stamp.to_string();
                    let fields: [(&[u8], &[u8]); 2] =
                        [(VARY, names.as_bytes()), (STAMP, stamp_text.as_bytes())];
                    let frame = self.pack(py, &index_key, &index_meta, &fields, b"")?;
                    // The index outlives the variant written with it.
                    let ttl = backend_ttl.max(KEEP_STALE);
                    writes.push((self.remote_key(&index_key), frame, ttl));
                }
                if let Some(local) = self.local_meta(&index_meta, now) {
                    let _ = store.insert(&index_key, local, index, 64, tags.clone());
                }
                let values = secondary_key(&decision.vary, &request).unwrap_or_default();
                let variant = Self::variant_key(&primary, stamp, &values);
                if remote {
                    // The slot this request read last, when its index is still the one.
                    let choice = if known.is_some() { pending.slot } else { 0 };
                    slot = Some(self.variant_slot(&primary, &variant, choice));
                }
                variant
            }
            _ => primary.finish(),
        };
        if remote {
            let rt = req.time.to_string();
            let mut fields = kept.clone();
            fields.extend(lines(&view, b"cache-control").map(|line| (CC, line)));
            fields.push((REQUEST_TIME, rt.as_bytes()));
            let frame = self.pack(py, &key, &meta, &fields, body)?;
            // The variant first, then its index: a reader never follows an index to a
            // variant written after it, as far as the writes land in order.
            let at = slot.unwrap_or_else(|| self.remote_key(&key));
            writes.insert(0, (at, frame, backend_ttl));
        }
        let weight = u32::try_from(payload_bytes).unwrap_or(u32::MAX);
        // With a backend, an entry over the memory tier's limit is still written there.
        let fits = payload_bytes <= store.config().max_entry_bytes;
        let entry = match self.local_meta(&meta, now) {
            Some(local) if fits || !remote => {
                match store.insert(&key, local, payload, payload_bytes, tags) {
                    Ok(entry) => entry,
                    Err(_) => return Ok(Err("too-large")),
                }
            }
            _ => Arc::new(Stored::detached(&key, meta, payload, tags, weight)),
        };
        Ok(Ok((entry, writes)))
    }

    /// `lookup`, answering from memory only when `local` (see `Tier`).
    fn lookup_in<'py>(
        &self,
        py: Python<'py>,
        scope: &Bound<'py, PyDict>,
        local: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some(parts) = ScopeParts::read(scope) else {
            return Bypass::of(py, "malformed-scope");
        };
        let method = parts.method.to_str()?.as_bytes();
        if method != b"GET" && method != b"HEAD" {
            let safe = matches!(method, b"OPTIONS" | b"TRACE");
            return Bypass::of(py, if safe { "method" } else { "unsafe" });
        }
        let hs = header_slices(&parts.headers);
        let info = analyze(&hs);
        if let Some(bypass) = info.bypass {
            return Bypass::of(py, bypass.as_str());
        }
        // RFC 9110 §14.2, §13.1.5: a Range request (with its If-Range, which the miss path
        // would strip with the other client conditionals) goes to the app untouched; an
        // entry never answers it, and a 206 is never stored.
        if hs.iter().any(|(n, _)| n.eq_ignore_ascii_case(b"range")) {
            return Bypass::of(py, "range");
        }
        // docs/http.md: the middleware runs before authentication; requests with credentials are
        // neither answered from nor stored in the shared cache unless opted in (RFC 9111 §3.5).
        if info.has_credentials && !self.settings.honour_authorization_opt_in {
            // RFC 9111 §5.2.1.7: no stored response may answer it, and the client forbade
            // going to the origin.
            if info.directives.only_if_cached {
                return Ok(self.replier.bare(py, &reply::only_if_cached())?.into_any());
            }
            return Bypass::of(py, "credentials");
        }
        let host = info.host.map(|h| h.to_ascii_lowercase());
        let client_inm: Vec<Vec<u8>> = lines(&hs, b"if-none-match").map(<[u8]>::to_vec).collect();
        let client_ims: Vec<Vec<u8>> = lines(&hs, b"if-modified-since")
            .map(<[u8]>::to_vec)
            .collect();
        let req = Req {
            scheme: parts.scheme.to_str()?.as_bytes(),
            host: host.as_deref(),
            path: parts.raw_path.as_bytes(),
            query: parts.query.as_bytes(),
            method,
            headers: &hs,
            client_inm: &client_inm,
            client_ims: &client_ims,
            directives: info.directives,
            has_credentials: info.has_credentials,
            no_store: info.no_store,
        };
        let primary = self.primary_of(&req);
        let now = self.store.get().current().clock().now();
        let found = if local {
            self.find(&primary, &hs, now)
        } else {
            None
        };
        if self.tier != Tier::Memory {
            // A local copy answers only while fresh; anything else is the backend's to say
            // (it may hold a fresher entry, or the stale one with its validators).
            if let Some(entry) = &found {
                if let Verdict::Hit(reply) = self.judge(py, &req, Some(entry), now)? {
                    return Ok(reply.into_any());
                }
            }
            let pending = self.to_read(py, Arc::new(req.to_owned(now)), &primary)?;
            return Ok(Bound::new(py, pending)?.into_any());
        }
        match self.judge(py, &req, found.as_ref(), now)? {
            Verdict::Hit(reply) | Verdict::Refused(reply) => Ok(reply.into_any()),
            Verdict::Miss {
                stale,
                stale_reply,
                serve_stale,
                fwd,
            } => {
                let facts = Arc::new(req.to_owned(now));
                let pending = self.pending(
                    py,
                    facts,
                    &primary,
                    stale,
                    stale_reply,
                    serve_stale,
                    fwd,
                    None,
                    false,
                )?;
                Ok(Bound::new(py, pending)?.into_any())
            }
        }
    }
}

impl RequestFacts {
    /// The request as the engine judges it, its headers given as `slices(&self.headers)`.
    fn view<'a>(&'a self, headers: &'a [(&'a [u8], &'a [u8])]) -> Req<'a> {
        Req {
            scheme: &self.scheme,
            host: self.host.as_deref(),
            path: &self.path,
            query: &self.query,
            method: &self.method,
            headers,
            client_inm: &self.client_inm,
            client_ims: &self.client_ims,
            directives: self.directives,
            has_credentials: self.has_credentials,
            no_store: self.no_store,
        }
    }

    /// The client's side of a reply from an entry (`Req::conditions`).
    fn conditions(&self) -> Conditions<'_> {
        self.view(&[]).conditions()
    }
}

#[pymethods]
impl MiddlewareEngine {
    #[new]
    #[pyo3(signature = (store, *, prefix = String::new(), app_namespace = String::new(),
        shared = true, statuses = DEFAULT_STATUSES.to_vec(), share_authorized = false,
        honor_no_cache = true, max_body = 8 * 1024 * 1024, header_name = "x-cache".to_string(),
        tier = "memory", local_ttl = 5.0, compress_threshold = 1024, max_variants = 64))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        store: Py<MemoryStore>,
        prefix: String,
        app_namespace: String,
        shared: bool,
        statuses: Vec<u16>,
        share_authorized: bool,
        honor_no_cache: bool,
        max_body: usize,
        header_name: String,
        tier: &str,
        local_ttl: f64,
        compress_threshold: usize,
        max_variants: u64,
    ) -> PyResult<Self> {
        let tier = Tier::parse(py, tier)?;
        if max_variants == 0 {
            return Err(PyValueError::new_err("max_variants must be at least 1"));
        }
        let settings = StoreSettings {
            shared,
            statuses,
            max_body_size: Some(max_body as u64),
            honour_authorization_opt_in: share_authorized,
            ..StoreSettings::default()
        };
        Ok(MiddlewareEngine {
            store,
            prefix,
            labels: Arc::new(RouteLabels {
                namespace: "middleware".into(),
                route: app_namespace.clone().into(),
            }),
            app_namespace,
            settings,
            policy: ReusePolicy {
                shared,
                honour_client_refresh: honor_no_cache,
            },
            replier: Replier::new(py, &header_name)?,
            max_body,
            tier,
            local_ttl: Tier::local_ttl(local_ttl),
            compress_threshold,
            decoded: DecodedFrames::default(),
            max_variants,
        })
    }

    /// Where entries live: `memory`, `remote` or `two-tier`.
    #[getter]
    fn tier(&self) -> &'static str {
        self.tier.name()
    }

    /// A `Hit` (the reply tuple), a `MiddlewarePending` when the app must answer (a miss or a
    /// revalidation) or, with a backend, when its `read_key` must be read first (then call
    /// `accept`), or a `Bypass` to pass the request to the app without the cache, its
    /// response labelled by `bypass_label` (reason `"unsafe"`: then call `invalidate` too).
    fn lookup<'py>(
        &self,
        py: Python<'py>,
        scope: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.lookup_in(py, scope, self.tier != Tier::Remote)
    }

    /// `lookup` for a request that waited for another request's response in this process:
    /// with a remote backend only, the entry that response left in memory for the coalescing
    /// window answers it too (the backend's copy may still be being written).
    fn lookup_coalesced<'py>(
        &self,
        py: Python<'py>,
        scope: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.lookup_in(py, scope, true)
    }
    /// Judges what the backend returned for `pending.read_key` (`frame`; None: nothing
    /// there): a `Hit`, or the next `MiddlewarePending`: the variant's key to read after a
    /// variants index, else the miss (with a stale reply inside a stale window, validators
    /// to revalidate with, `foreign` when the frame was not a usable entry). `coalesced`: read
    /// for the requests of this process waiting on this one (remote only: a fresh entry is
    /// kept in memory for the coalescing window, for `lookup_coalesced`).
    #[pyo3(signature = (pending, frame, *, coalesced = false))]
    fn accept<'py>(
        &self,
        py: Python<'py>,
        pending: &MiddlewarePending,
        frame: Option<&Bound<'py, PyBytes>>,
        coalesced: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let facts = Arc::clone(&pending.req);
        let hs = slices(&facts.headers);
        let req = facts.view(&hs);
        let primary = self.primary_of(&req);
        let now = self.store.get().current().clock().now();
        let mut index = pending.index.clone();
        let mut foreign = false;
        let mut found = None;
        let key = match (&pending.index, pending.variant) {
            (Some((vary, stamp)), true) => {
                secondary_key(vary, &hs).map(|values| Self::variant_key(&primary, *stamp, &values))
            }
            _ => Some(primary.clone().finish()),
        };
        // Remote only (not for this process's waiters, whose entry is also kept locally): an
        // identical frame is the response decoded last time.
        let remembered = match (frame, &key) {
            (Some(data), Some(key)) if self.tier == Tier::Remote && !coalesced => {
                self.decoded.get(py, key, data.as_bytes())
            }
            _ => None,
        };
        if remembered.is_some() {
            found = remembered;
        } else if let (Some(data), Some(key)) = (frame, key) {
            match self.decode_frame(py, data.as_bytes(), &key, &facts.path)? {
                Some((Frame::Index { vary, stamp, meta }, _)) if !pending.variant => {
                    if let Some(local) = self.local_meta(&meta, now) {
                        if self.tier == Tier::Layered {
                            let payload = PyPayload {
                                body: PyBytes::new(py, b"").unbind(),
                                headers: PyTuple::empty(py).unbind(),
                                content_length: false,
                                last_modified: None,
                                mw: Some(Box::new(ResponseFacts::Variants {
                                    vary: vary.clone(),
                                    stamp,
                                })),
                            };
                            let tags = self.tags(&facts.path);
                            let _ = self
                                .store
                                .get()
                                .current()
                                .insert(&key, local, payload, 64, tags);
                        }
                    }
                    if let Some(values) = secondary_key(&vary, &hs) {
                        let variant = Self::variant_key(&primary, stamp, &values);
                        let next =
                            self.variant_read(py, &facts, &primary, (vary, stamp), &variant, 0)?;
                        return Ok(Bound::new(py, next)?.into_any());
                    }
                    index = Some((vary, stamp));
                }
                Some((Frame::Response(entry), charged)) => {
                    if self.tier == Tier::Layered || coalesced {
                        self.keep_local(py, &key, &entry, charged, now);
                    }
                    let entry = Arc::new(entry);
                    if self.tier == Tier::Remote {
                        self.decoded
                            .remember(&key, data, Arc::clone(&entry), charged);
                    }
                    found = Some(entry);
                }
                // Another variant's frame in this one's first slot: read its second; in
                // both: a miss, and this response takes the second. (A frame of another key
                // under an entry's own key is foreign: something else wrote it.)
                Some((Frame::OtherKey, _)) if pending.variant => {
                    if let (0, Some(index)) = (pending.slot, &pending.index) {
                        let next =
                            self.variant_read(py, &facts, &primary, index.clone(), &key, 1)?;
                        return Ok(Bound::new(py, next)?.into_any());
                    }
                }
                _ => foreign = true,
            }
        }
        match self.judge(py, &req, found.as_ref(), now)? {
            Verdict::Hit(reply) | Verdict::Refused(reply) => Ok(reply.into_any()),
            Verdict::Miss {
                stale,
                stale_reply,
                serve_stale,
                fwd,
            } => {
                let mut next = self.pending(
                    py,
                    facts,
                    &primary,
                    stale,
                    stale_reply,
                    serve_stale,
                    fwd,
                    index,
                    foreign,
                )?;
                next.slot = pending.slot;
                Ok(Bound::new(py, next)?.into_any())
            }
        }
    }

    /// `pending`'s request, to be read from the backend again from the URL's key (a process
    /// waiting for another's entry, cross-process single-flight).
    fn reread<'py>(
        &self,
        py: Python<'py>,
        pending: &MiddlewarePending,
    ) -> PyResult<Bound<'py, MiddlewarePending>> {
        let facts = Arc::clone(&pending.req);
        let hs = slices(&facts.headers);
        let primary = self.primary_of(&facts.view(&hs));
        Bound::new(py, self.to_read(py, Arc::clone(&facts), &primary)?)
    }

    /// Decides what to do with the app's response as it starts: `(action, headers)`, where
    /// `headers` are the fields to send with `ResponseAction::Pass` (see `ResponseAction`).
    fn on_response<'py>(
        &self,
        py: Python<'py>,
        pending: &MiddlewarePending,
        status: u16,
        raw_headers: &Bound<'py, PyAny>,
    ) -> PyResult<(ResponseAction, Bound<'py, PyList>)> {
        let response_headers = headers(raw_headers)?;
        if status == 304 && pending.stale.is_some() {
            return Ok((ResponseAction::Freshen, PyList::empty(py)));
        }
        if status >= 500 && pending.stale_reply.is_some() {
            // RFC 5861 §4: stale-if-error; the app's error is replaced by the stale entry.
            return Ok((ResponseAction::StaleOnError, PyList::empty(py)));
        }
        let hs = header_slices(&response_headers);
        let req = &pending.req;
        let request = slices(&req.headers);
        let verdict = if req.no_store {
            Err("request-no-store")
        } else {
            decide(
                &req.method,
                &request,
                status,
                &slices(&surrogate_view(&hs)),
                &self.settings,
            )
            .map_err(|w| w.as_str())
        };
        match verdict {
            Ok(_) => Ok((ResponseAction::Buffer, PyList::empty(py))),
            Err(why) => Ok((
                ResponseAction::Pass,
                self.not_stored(py, &response_headers, why)?,
            )),
        }
    }

    /// The `Cache-Status` member of a stored response whose backend write was skipped
    /// (`detail`, decided before any I/O: `backend-down`, `backend-busy`,
    /// `backend-too-large`): not `stored` unless two tiers keep it locally (RFC 9211 §2.7).
    fn write_skipped_status<'py>(
        &self,
        py: Python<'py>,
        pending: &MiddlewarePending,
        detail: &str,
    ) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &write_skipped(self.tier, pending.fwd, detail))
    }

    /// The headers of a buffered response that will not be stored after all.
    fn not_stored_headers<'py>(
        &self,
        py: Python<'py>,
        raw_headers: &Bound<'py, PyAny>,
        detail: &str,
    ) -> PyResult<Bound<'py, PyList>> {
        let response_headers = headers(raw_headers)?;
        self.not_stored(py, &response_headers, detail)
    }
    /// The label of a request handed to the app without a lookup: the fields to append to the
    /// app's response start, `<header_name>: BYPASS` and `Cache-Status: oxicache; fwd=bypass;
    /// detail=<reason>`, as the decorator labels its bypasses (RFC 9211 §2.2: the cache was
    /// configured to go to the origin for this request). A field the response already has
    /// from oxicache (an `@cache` route labels its own answers) is not added again; a
    /// `Cache-Status` from another cache stays, this cache's member after it (RFC 9211 §2).
    /// `reason` is one of the fixed bypass reasons, never request material.
    fn bypass_label<'py>(
        &self,
        py: Python<'py>,
        raw_headers: &Bound<'py, PyAny>,
        reason: &str,
    ) -> PyResult<Bound<'py, PyList>> {
        let response_headers = headers(raw_headers)?;
        let hs = header_slices(&response_headers);
        let own = self.replier.own();
        self.replier.list(py, reply::bypass_label(&hs, own, reason))
    }

    /// Stores a complete buffered response when allowed; returns the reply to send and, with
    /// a backend, the writes to make after it: `(key, frame, ttl)`, tagged `pending.path_tag`.
    #[allow(clippy::type_complexity)]
    fn complete<'py>(
        &self,
        py: Python<'py>,
        pending: &MiddlewarePending,
        status: u16,
        raw_headers: &Bound<'py, PyAny>,
        body: &Bound<'py, PyBytes>,
    ) -> PyResult<(Bound<'py, PyTuple>, Vec<Write<'py>>)> {
        let status_code = status;
        let response_headers = headers(raw_headers)?;
        let hs = header_slices(&response_headers);
        let now = self.store.get().current().clock().now();
        match self.store_response(py, pending, status, &hs, body.as_bytes(), now)? {
            Ok((entry, writes)) => {
                let status = CacheStatus::forward(pending.fwd).stored();
                let conditions = pending.req.conditions();
                let reply = self.reply(py, &entry, now, &conditions, Label::Miss, status)?;
                Ok((reply, writes))
            }
            Err(why) => {
                let head = pending.req.method == b"HEAD";
                let status = CacheStatus::forward(Forward::Miss).detail(why);
                let reply = reply::pass_on(status_code, head, self.replier.own(), false, status);
                let reply = self.replier.pass_on(py, &response_headers, body, &reply)?;
                Ok((reply, Vec::new()))
            }
        }
    }

    /// The app answered the cache's validation with 304: update the stored entry with the
    /// 304's fields (RFC 9111 §4.3.4) and answer from it; with a backend, the writes to make
    /// after the reply (as `complete`).
    #[allow(clippy::type_complexity)]
    fn freshen<'py>(
        &self,
        py: Python<'py>,
        pending: &MiddlewarePending,
        raw_headers: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyTuple>, Vec<Write<'py>>)> {
        let Some(entry) = &pending.stale else {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "nothing to freshen",
            ));
        };
        let update = headers(raw_headers)?;
        let update_slices = header_slices(&update);
        // Fields a 304 never changes in the stored response: they describe the stored content
        // itself (RFC 9111 §3.2; cache-tests.fyi `304-etag-update-response-*`).
        let frozen = |n: &[u8]| {
            [
                &b"content-length"[..],
                b"content-encoding",
                b"content-md5",
                b"content-range",
                b"etag",
            ]
            .iter()
            .any(|f| n.eq_ignore_ascii_case(f))
        };
        let update_names: Vec<Vec<u8>> = update_slices
            .iter()
            .filter(|(n, _)| !frozen(n))
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        // The stored fields, each replaced by the 304's fields of the same name, except the
        // ones that describe the content (RFC 9111 §3.2).
        let mut merged: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for pair in entry.payload.headers.bind(py).iter() {
            let n = pair
                .get_item(0)?
                .cast_into::<PyBytes>()?
                .as_bytes()
                .to_vec();
            let v = pair
                .get_item(1)?
                .cast_into::<PyBytes>()?
                .as_bytes()
                .to_vec();
            if !update_names.contains(&n.to_ascii_lowercase()) {
                merged.push((n, v));
            }
        }
        // RFC 9111 §3.1 (and §4.3.4): the 304's hop-by-hop fields and those its Connection
        // lists never reach the entry.
        let nominated = connection_options(&update_slices);
        for (n, v) in &update_slices {
            if frozen(n) || self.is_own(n) || !is_storable_field(n, &nominated) {
                continue;
            }
            merged.push((n.to_vec(), v.to_vec()));
        }
        let merged_slices: Vec<(&[u8], &[u8])> = merged
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .collect();
        let now = self.store.get().current().clock().now();
        let body = entry.payload.body.bind(py).as_bytes().to_vec();
        match self.store_response(py, pending, entry.meta.status, &merged_slices, &body, now)? {
            Ok((fresh, writes)) => {
                let status = CacheStatus::forward(pending.fwd).fwd_status(304).stored();
                let conditions = pending.req.conditions();
                let reply = self.reply(py, &fresh, now, &conditions, Label::Hit, status)?;
                Ok((reply, writes))
            }
            // Not storable any more (the 304 said no-store, say): answer from the stale entry
            // once, as validated.
            Err(_) => {
                let status = CacheStatus::forward(pending.fwd).fwd_status(304);
                let conditions = pending.req.conditions();
                let reply = self.reply(py, entry, now, &conditions, Label::Hit, status)?;
                Ok((reply, Vec::new()))
            }
        }
    }

    /// After an unsafe method's response: invalidate the target URI and the same-origin
    /// Location / Content-Location (RFC 9111 §4.4). Returns how many entries were dropped.
    fn invalidate(
        &self,
        scope: &Bound<'_, PyDict>,
        status: u16,
        raw_headers: &Bound<'_, PyAny>,
    ) -> PyResult<usize> {
        let (keys, paths) = self.invalidated(scope, status, raw_headers)?;
        if keys.is_empty() {
            return Ok(0);
        }
        let store = self.store.get().current();
        let dropped = keys.iter().map(|k| usize::from(store.remove(k))).sum();
        // The decorator's entries for those paths too (`@cache` routes keep no per-URI index,
        // so this is one pass over the store: it runs only after a successful unsafe request).
        let labels = Arc::clone(&self.labels);
        store
            .invalidate_where(move |t| !Arc::ptr_eq(&t.labels, &labels) && paths.contains(&t.path));
        Ok(dropped)
    }

    /// With a backend, the backend keys an unsafe method's response invalidates (RFC 9111
    /// §4.4; see `invalidate`): the URIs' entries or variants indexes. Python deletes them,
    /// which reaches every process (and their local copies, by a coherence message). Empty
    /// in memory.
    fn invalidated_keys(
        &self,
        scope: &Bound<'_, PyDict>,
        status: u16,
        raw_headers: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<String>> {
        if self.tier == Tier::Memory {
            return Ok(Vec::new());
        }
        let (keys, _) = self.invalidated(scope, status, raw_headers)?;
        let mut out: Vec<String> = Vec::with_capacity(keys.len());
        for key in &keys {
            let remote = self.remote_key(key);
            if !out.contains(&remote) {
                out.push(remote);
            }
        }
        Ok(out)
    }
}

impl MiddlewareEngine {
    /// The primary keys an unsafe method's response invalidates, and the targets' path hashes.
    /// For each target URI (the request's, and a same-origin Location / Content-Location,
    /// RFC 9111 §4.4): the entry of a request with no forwarding headers, and that of one with
    /// the same forwarding headers as this request (behind a proxy that adds them to every
    /// request, the entries of its clients). A request without `Host` (HTTP/1.0) has its
    /// own entries under no host: its target is its path.
    fn invalidated(
        &self,
        scope: &Bound<'_, PyDict>,
        status: u16,
        raw_headers: &Bound<'_, PyAny>,
    ) -> PyResult<(Vec<Key>, Vec<u64>)> {
        let Some(parts) = ScopeParts::read(scope) else {
            return Ok((Vec::new(), Vec::new()));
        };
        let hs = header_slices(&parts.headers);
        let response_headers = headers(raw_headers)?;
        let rs = header_slices(&response_headers);
        let scheme = parts.scheme.to_str()?.as_bytes().to_vec();
        let host = analyze(&hs).host.map(|h| h.to_ascii_lowercase());
        let uri = target_uri(&scheme, host.as_deref(), &parts);
        let targets = invalidation_targets(
            parts.method.to_str()?.as_bytes(),
            status,
            &uri,
            lines(&rs, b"location").next(),
            lines(&rs, b"content-location").next(),
        );
        let mut keys = Vec::with_capacity(targets.len() * 2);
        let mut paths = Vec::with_capacity(targets.len());
        for t in targets {
            paths.push(path_tag(&t.path));
            let query = t.query.as_deref().unwrap_or_default();
            for forwarded in [&[][..], &hs[..]] {
                let kb = self.primary(&scheme, host.as_deref(), &t.path, query, forwarded);
                keys.push(kb.finish());
            }
        }
        Ok((keys, paths))
    }
}

/// The target URI of a request (RFC 9110 §7.1): scheme, host, raw path and query; without a
/// host, the path form (raw path and query).
fn target_uri(scheme: &[u8], host: Option<&[u8]>, parts: &ScopeParts<'_>) -> Vec<u8> {
    let mut uri = Vec::new();
    if let Some(host) = host {
        uri.extend_from_slice(scheme);
        uri.extend_from_slice(b"://");
        uri.extend_from_slice(host);
    }
    uri.extend_from_slice(parts.raw_path.as_bytes());
    if !parts.query.as_bytes().is_empty() {
        uri.push(b'?');
        uri.extend_from_slice(parts.query.as_bytes());
    }
    uri
}
