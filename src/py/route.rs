//! `RouteCache`: the per-route (or per-function) cache logic on the hit path, in one Rust call.
//!
//! `lookup` reads the ASGI scope, decides bypass / hit / miss, builds the key and, on a hit,
//! the reply (status, headers, body) including `Age`, `X-Cache` and `Cache-Status`. `complete`
//! takes the rendered response of a miss, decides whether it may be stored, adds the cache's
//! own fields and stores it. Python only builds the response object around the reply.

use std::sync::{Arc, OnceLock};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple, PyWeakrefReference};
use pyo3::{PyTraverseError, PyVisit};

use super::codec_frames::pack_frame;
use super::convert::{encode_value, header_slices, headers, ScopeParts};
use super::decoded::DecodedFrames;
use super::errors::store_error;
use super::interner::HeaderInterner;
use super::key::Key;
use super::reply::Replier;
use super::results::Bypass;
use super::route_config::{RouteConfig, Tier};
use super::store::{MemoryStore, PyPayload, PY_BYTES_OVERHEAD, PY_HEADER_OVERHEAD};
use crate::core::compress;
use crate::core::entry::EntryMeta;
use crate::core::envelope;
use crate::core::key::KeyBuilder;
use crate::core::query::key_query;
use crate::core::query::QueryKey;
use crate::core::refresh::{self, refresh_early};
use crate::core::store::{path_tag, user_tag, Lookup, RouteLabels, Store, Stored, Tags};
use crate::http::cache_control::CacheControl;
use crate::http::cache_status::{ttl_seconds, CacheStatus, Forward};
use crate::http::dates::{format_http_date, format_http_date_f64, parse_http_date_at};
use crate::http::etag;
use crate::http::freshness::{reuse, stale_if_error_allows, RequestDirectives, Reuse, ReusePolicy};
use crate::http::reply::{self, Conditions, Label};
use crate::http::request::{analyze, vary_value};
use crate::http::response::{is_decimal_of, vary_is_keyed, ResponseInfo};
use crate::http::storable::{connection_options, decide, is_storable_field, StoreSettings};

/// The backend tag of a request path (see `core::store::path_tag`).
pub(super) fn remote_path_tag(path: u64) -> String {
    format!("path:{path:016x}")
}

/// How long a remote-only route keeps a new entry in memory for its coalesced waiters.
const COALESCE_SECONDS: f64 = 2.0;
/// Bodies at least this long are packed with the GIL released.
const DETACH_AT: usize = 64 * 1024;

/// The envelope inside a frame a backend returned, or None when the frame is foreign, cut
/// short, damaged or would decode past twice the store's entry limit (zstd with the GIL
/// released for large frames).
pub(super) fn unframe<'a>(
    py: Python<'_>,
    data: &'a [u8],
    store: &Store<PyPayload>,
) -> Option<std::borrow::Cow<'a, [u8]>> {
    unframe_within(py, data, store.config().max_entry_bytes.saturating_mul(2))
}

/// `unframe` with the largest envelope accepted given (`limit` bytes).
pub(super) fn unframe_within<'a>(
    py: Python<'_>,
    data: &'a [u8],
    limit: usize,
) -> Option<std::borrow::Cow<'a, [u8]>> {
    let unpacked = if data.len() >= DETACH_AT {
        py.detach(|| compress::unpack(data, limit))
    } else {
        compress::unpack(data, limit)
    };
    unpacked.ok()
}

/// An entry's envelope (`key` is the key's check), framed for a backend (see `pack_frame`).
pub(super) fn frame_envelope<'py>(
    py: Python<'py>,
    key: &[u8],
    meta: &EntryMeta,
    fields: &[(&[u8], &[u8])],
    body: &[u8],
    threshold: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let env = envelope::encode(key, meta, fields, body, 0)
        .map_err(|e| super::errors::envelope_error(py, e))?;
    Ok(pack_frame(py, &env, threshold))
}

/// The `Cache-Status` member of a stored response whose backend write was skipped
/// (`detail`): not `stored` unless two tiers keep it locally (RFC 9211 §2.7).
pub(super) fn write_skipped(tier: Tier, fwd: Forward, detail: &str) -> Vec<u8> {
    let status = CacheStatus::forward(fwd).detail(detail);
    if tier == Tier::Layered {
        status.stored().to_vec()
    } else {
        status.to_vec()
    }
}

/// What the reuse rules say about a stored entry for one request.
enum Judged<'py> {
    /// Serve this reply.
    Hit(Bound<'py, PyTuple>),
    /// Go to the handler; `stale` may answer meanwhile (`serve_stale`) or if it fails.
    Miss {
        stale: Option<Py<PyTuple>>,
        serve_stale: bool,
        /// A fresh entry the client refused (no-cache, max-age, min-fresh).
        forced: bool,
        /// A fresh entry this request refreshes ahead of its expiry (`core::refresh`):
        /// `stale` holds its hit reply.
        early: bool,
    },
}

/// The request's conditional fields, kept for answering from an entry (RFC 9110 §13.1).
#[derive(Clone, Default)]
pub struct Conditionals {
    inm: Vec<Vec<u8>>,
    ims: Option<Vec<u8>>,
}

impl Conditionals {
    /// The request's side of a reply from an entry.
    fn of(&self, head: bool) -> Conditions<'_> {
        Conditions {
            head,
            if_none_match: &self.inm,
            if_modified_since: self.ims.as_deref(),
        }
    }
}

/// Why a miss went to the handler (RFC 9211 §2.2): the client's `no-cache` refused a stored
/// response, or there was none to use.
fn forward_of(pending: &Pending) -> Forward {
    if pending.revalidate {
        Forward::Request
    } else {
        Forward::Miss
    }
}

/// The `Age` of a reply from `entry` (RFC 9111 §5.1): whole seconds since it was stored here.
fn age_of(entry: &Stored<PyPayload>, now: f64) -> u64 {
    entry.meta.age(now).floor() as u64
}

/// The context of a miss, handed back to [`RouteCache::complete`].
#[pyclass(frozen, module = "oxicache._core")]
pub struct Pending {
    key: Key,
    /// Request said `no-store` (RFC 9111 §5.2.1.5): answer, but do not store.
    no_store: bool,
    /// Request said `no-cache`: this miss is a forced revalidation (RFC 9111 §5.2.1.4).
    revalidate: bool,
    /// The request carried credentials and the route keys per user.
    credentialed: bool,
    /// The request was HEAD: answer without a body (RFC 9110 §9.3.2).
    head: bool,
    cond: Conditionals,
    path: u64,
    /// A reply from the stale entry, usable while refreshing (stale-while-revalidate) or
    /// when the handler fails (stale-if-error), RFC 5861.
    stale: Option<Py<PyTuple>>,
    /// True inside the stale-while-revalidate window: answer with `stale` now, refresh
    /// in the background.
    serve_stale: bool,
    /// The request's reuse directives, for judging an entry a remote backend returns.
    directives: RequestDirectives,
    /// The backend key (`<prefix>:<namespace>:<route>:<digest>`), for remote tiers.
    remote_key: Option<String>,
    /// The store clock when the request was looked up: `replay_pending` answers only from
    /// entries stored after that (by a leader it was concurrent with).
    started: f64,
    /// The entry is fresh and this request was drawn to refresh it ahead of expiry
    /// (`core::refresh`); `stale` then holds the entry's hit reply.
    early: bool,
}

impl Pending {
    fn with_stale(
        &self,
        py: Python<'_>,
        stale: Option<Py<PyTuple>>,
        serve_stale: bool,
        early: bool,
    ) -> Self {
        Pending {
            key: self.key.clone(),
            no_store: self.no_store,
            revalidate: self.revalidate,
            credentialed: self.credentialed,
            head: self.head,
            cond: self.cond.clone(),
            path: self.path,
            stale: stale.or_else(|| self.stale.as_ref().map(|t| t.clone_ref(py))),
            serve_stale,
            directives: self.directives,
            remote_key: self.remote_key.clone(),
            started: self.started,
            early,
        }
    }
}

#[pymethods]
impl Pending {
    /// The stale reply (see `serve_stale`), if the entry is inside a stale window.
    #[getter]
    fn stale_reply(&self, py: Python<'_>) -> Option<Py<PyTuple>> {
        self.stale.as_ref().map(|t| t.clone_ref(py))
    }

    /// True when the stale reply may be sent now while the handler refreshes the entry.
    #[getter]
    fn serve_stale(&self) -> bool {
        self.serve_stale
    }

    /// The key this miss will be stored under.
    #[getter]
    fn key(&self) -> Key {
        self.key.clone()
    }

    /// True when the request asked to bypass stored entries (`no-cache`).
    #[getter]
    fn revalidate(&self) -> bool {
        self.revalidate
    }

    /// True when the entry is fresh and this request was drawn to refresh it ahead of its
    /// expiry (`refresh_ahead`); `stale_reply` is then the entry's hit reply, to send while
    /// another request refreshes it, or if the refresh fails.
    #[getter]
    fn refresh_early(&self) -> bool {
        self.early
    }

    /// The key in the remote backend, or None for a memory-only route.
    #[getter]
    fn remote_key(&self) -> Option<&str> {
        self.remote_key.as_deref()
    }

    /// The invalidation tag of the request's path, as written with remote entries.
    #[getter]
    fn path_tag(&self) -> String {
        remote_path_tag(self.path)
    }

    /// The request said only-if-cached (RFC 9111 §5.2.1.7).
    #[getter]
    fn only_if_cached(&self) -> bool {
        self.directives.only_if_cached
    }
}

/// Per-route cache settings and logic.
#[pyclass(frozen, module = "oxicache._core")]
pub struct RouteCache {
    store: Py<MemoryStore>,
    fallback: Py<PyAny>,
    /// Application-wide key prefix (`configure(prefix=...)`), so two apps sharing a store
    /// never read each other's entries.
    prefix: String,
    labels: Arc<RouteLabels>,
    ttl: f64,
    stale_while_revalidate: f64,
    stale_if_error: f64,
    vary: Vec<Vec<u8>>,
    cache_control: String,
    per_user: bool,
    public: bool,
    /// The route's answers must not be stored by shared caches downstream even when not
    /// keyed per user (a dependency guards the route, a credential header keys it).
    private: bool,
    weak_etag: bool,
    /// The directives a stored entry is reused under (`freshness::reuse`): the route's stale
    /// windows (RFC 5861) and its must-revalidate / proxy-revalidate (RFC 9111 §5.2.2.2).
    entry_cc: CacheControl,
    /// Shared cache; whether clients may force recomputation (`honor_no_cache`).
    reuse_policy: ReusePolicy,
    /// The storability rules (`storable::decide`, the same as CacheMiddleware's), with the
    /// route's statuses; the route's TTL is the permission to store (RFC 9111 §3).
    store_settings: StoreSettings,
    tier: Tier,
    /// Two tiers: the longest an entry from the backend stays in memory.
    local_ttl: f64,
    /// Envelopes longer than this are zstd-compressed for the backend.
    compress_threshold: usize,
    url_in_key: bool,
    /// How the key holds the query string.
    query: QueryKey,
    /// Seconds before expiry in which a hit may refresh the entry; 0: never.
    refresh_ahead: f64,
    /// Stored responses carry `Expires` (RFC 9111 §5.3).
    expires: bool,
    /// Builds the replies (see `reply.rs`), with the label field `header_name`.
    replier: Replier,
    interner: HeaderInterner,
    /// Remote tier: the last frame read per key and the entry decoded from it.
    decoded: DecodedFrames,
    /// The settings this cache was built from (its fields above are copies, read on the hot
    /// path without a pointer more).
    config: Py<RouteConfig>,
    /// Set once Python's checks passed for a route (see `arm`): `lookup_call` then answers
    /// that route's calls alone.
    armed: OnceLock<Armed>,
}

/// What `lookup_call` checks a call against: the FastAPI route and inclusion Python checked
/// (`inclusion` is None when the scope names none), and the names of the keyed arguments, in
/// key order. The route and inclusion are held weakly where they allow it: the route holds
/// its app, and an app built by a factory must be freed once dropped.
struct Armed {
    route: Held,
    inclusion: Held,
    keyed: Vec<Py<PyString>>,
}

/// An object compared by identity, held by a weak reference where its type allows one.
enum Held {
    Weak(Py<PyWeakrefReference>),
    Strong(Py<PyAny>),
}

impl Held {
    fn of(object: Bound<'_, PyAny>) -> Held {
        match PyWeakrefReference::new(&object) {
            Ok(weak) => Held::Weak(weak.unbind()),
            Err(_) => Held::Strong(object.unbind()),
        }
    }

    /// Whether `object` is the one held (never, once a weakly held one is gone).
    fn is(&self, py: Python<'_>, object: &Bound<'_, PyAny>) -> bool {
        match self {
            Held::Weak(weak) => weak.bind(py).upgrade().is_some_and(|o| o.is(object)),
            Held::Strong(strong) => object.is(strong),
        }
    }

    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        match self {
            Held::Weak(weak) => visit.call(weak),
            Held::Strong(strong) => visit.call(strong),
        }
    }
}

impl RouteCache {
    /// The reply for a response that is not stored (`why`, RFC 9211 §2.8 `detail`): as the
    /// handler made it, less the cache's own fields, labelled MISS.
    fn not_stored<'py>(
        &self,
        py: Python<'py>,
        pending: &Pending,
        status: u16,
        response_headers: &super::convert::Headers<'py>,
        body: &Bound<'py, PyBytes>,
        why: &str,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let label = CacheStatus::forward(forward_of(pending)).detail(why);
        let reply = reply::pass_on(status, pending.head, self.replier.own(), true, label);
        let (status, headers, body) =
            self.replier
                .pass_on_parts(py, response_headers, body, &reply)?;
        PyTuple::new(
            py,
            [
                status.into_pyobject(py)?.into_any(),
                headers.into_any(),
                body.into_any(),
                false.into_pyobject(py)?.to_owned().into_any(),
                py.None().into_bound(py),
            ],
        )
    }

    fn key_prefix(&self, kb: &mut KeyBuilder, kind: &str) {
        kb.str(&self.prefix)
            .str(&self.labels.namespace)
            .str(&self.labels.route)
            .str(kind);
    }

    fn entry_tags(&self, path: u64) -> Tags {
        Tags {
            labels: Arc::clone(&self.labels),
            path,
            user: None,
        }
    }

    /// The reply from a stored entry (`reply::replay`): a 304 when the request's
    /// conditionals match (RFC 9111 §4.3.2), else the stored status, fields and body (none for
    /// HEAD), with `Age` (RFC 9111 §5.1), the label and `Cache-Status`.
    #[inline]
    fn answer<'py>(
        &self,
        py: Python<'py>,
        entry: &Stored<PyPayload>,
        now: f64,
        request: &Conditions<'_>,
        label: Label,
        status: CacheStatus<'_>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let facts = Replier::facts(py, entry)?;
        let age = Some(age_of(entry, now));
        self.replier.replay(
            py,
            entry,
            &reply::replay(&facts, request, age, label, status),
        )
    }

    /// A hit: the entry's reply labelled HIT with its freshness left (RFC 9211 §2.1, §2.4).
    #[inline]
    fn hit<'py>(
        &self,
        py: Python<'py>,
        entry: &Stored<PyPayload>,
        now: f64,
        request: &Conditions<'_>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let status = CacheStatus::hit(ttl_seconds(entry.meta.remaining(now)));
        self.answer(py, entry, now, request, Label::Hit, status)
    }

    /// A stale reply: labelled STALE, with how stale (a negative `ttl`, RFC 9211 §2.4) and
    /// why it is used (`detail`).
    fn stale<'py>(
        &self,
        py: Python<'py>,
        entry: &Stored<PyPayload>,
        now: f64,
        request: &Conditions<'_>,
        detail: &str,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let status = CacheStatus::hit(ttl_seconds(entry.meta.ttl - entry.meta.age(now)));
        self.answer(py, entry, now, request, Label::Stale, status.detail(detail))
    }

    /// The reuse rules of RFC 9111 §4.2 and §5.2.1 and RFC 5861 for one stored entry, from
    /// the same function as CacheMiddleware (`freshness::reuse`): the entry's lifetime is the
    /// route's TTL, its directives the route's stale windows and must-revalidate.
    #[allow(clippy::too_many_arguments)]
    fn judge<'py>(
        &self,
        py: Python<'py>,
        entry: &Stored<PyPayload>,
        now: f64,
        directives: &RequestDirectives,
        cond: &Conditionals,
        head: bool,
    ) -> PyResult<Judged<'py>> {
        let age = entry.meta.age(now);
        let past = age - entry.meta.ttl;
        let verdict = reuse(
            &self.entry_cc,
            Some(entry.meta.ttl),
            age,
            directives,
            &self.reuse_policy,
        );
        let (mut stale, mut serve_stale, mut forced) = (None, false, false);
        let request = cond.of(head);
        match verdict {
            Reuse::Fresh => {
                let hit = self.hit(py, entry, now, &request)?;
                let remaining = entry.meta.remaining(now);
                // An entry stored with a shorter TTL than the route's (`CacheRequest.ttl`)
                // gets half its lifetime, as a route whose TTL is under the window does.
                let window = if self.refresh_ahead >= entry.meta.ttl {
                    entry.meta.ttl / 2.0
                } else {
                    self.refresh_ahead
                };
                if window > 0.0 && refresh_early(remaining, window, refresh::draw()) {
                    return Ok(Judged::Miss {
                        stale: Some(hit.unbind()),
                        serve_stale: false,
                        forced: false,
                        early: true,
                    });
                }
                return Ok(Judged::Hit(hit));
            }
            Reuse::StaleAllowed => {
                // RFC 9111 §5.2.1.2: the client's max-stale accepts it.
                let reply = self.stale(py, entry, now, &request, "max-stale")?;
                return Ok(Judged::Hit(reply));
            }
            Reuse::StaleWhileRevalidate => {
                let detail = "stale-while-revalidate";
                stale = Some(self.stale(py, entry, now, &request, detail)?.unbind());
                serve_stale = true;
            }
            Reuse::MustRevalidate | Reuse::NotUsable => {
                forced = past < 0.0;
                // RFC 5861 §4: a stale entry may answer if the handler fails.
                let allowed = stale_if_error_allows(
                    &self.entry_cc,
                    Some(entry.meta.ttl),
                    age,
                    directives,
                    self.reuse_policy.shared,
                );
                if past >= 0.0 && allowed {
                    let detail = "stale-if-error";
                    stale = Some(self.stale(py, entry, now, &request, detail)?.unbind());
                }
            }
        }
        Ok(Judged::Miss {
            stale,
            serve_stale,
            forced,
            early: false,
        })
    }

    /// The metadata of the in-memory copy of an entry that also lives in (or came from) the
    /// backend: a memory route keeps the entry as it is; otherwise the copy is kept at most
    /// the coalescing window (remote only) or `local_ttl` (two tiers) from `now`, and never
    /// serves stale (the backend's copy does), see [`Tier`].
    /// The entry inside a framed envelope the backend returned for `pending`, with its
    /// charged size; None when the frame is foreign, cut short or fails its checksum. With two
    /// tiers, a fresh entry is also kept in memory, at most `local_ttl` seconds.
    fn decode_frame(
        &self,
        py: Python<'_>,
        pending: &Pending,
        frame: &Bound<'_, PyBytes>,
        store: &Store<PyPayload>,
        now: f64,
    ) -> PyResult<Option<(Stored<PyPayload>, usize)>> {
        let Some(env_bytes) = unframe(py, frame.as_bytes(), store) else {
            return Ok(None);
        };
        let Ok(env) = envelope::decode_for(&env_bytes, &pending.key.inner.check()) else {
            return Ok(None);
        };
        let body_len = env.body.len();
        let mut content_length = false;
        let mut last_modified = None;
        let mut fixed = Vec::new();
        for &(n, v) in &env.headers {
            if n == b"content-length" && is_decimal_of(v, body_len) {
                content_length = true;
            } else if n == b"last-modified" && last_modified.is_none() {
                last_modified = parse_http_date_at(v, now.floor() as i64);
            } else {
                fixed.push((PyBytes::new(py, n), PyBytes::new(py, v)));
            }
        }
        let (shared, is_shared) = self.interner.intern(py, &fixed)?;
        let mut payload_bytes = body_len + PY_BYTES_OVERHEAD + env.meta.etag.len();
        if !is_shared {
            for (n, v) in &fixed {
                payload_bytes += n.as_bytes().len() + v.as_bytes().len() + PY_HEADER_OVERHEAD;
            }
        }
        let payload = PyPayload {
            body: PyBytes::new(py, env.body).unbind(),
            headers: shared,
            content_length,
            last_modified,
            mw: None,
        };
        let key = &pending.key.inner;
        let weight = u32::try_from(payload_bytes).unwrap_or(u32::MAX);
        let tags = self.entry_tags(pending.path);
        if self.tier == Tier::Layered && env.meta.age(now) < env.meta.ttl && self.local_ttl > 0.0 {
            // The local copy lives at most `local_ttl`: the staleness bound should a coherence
            // message be lost. Not kept when over the memory tier's entry limit.
            let local = self.local_copy(&env.meta, now);
            let _ = store.insert(
                key,
                local,
                payload.clone_ref(py),
                payload_bytes,
                tags.clone(),
            );
        }
        let entry = Stored::detached(key, env.meta.clone(), payload, tags, weight);
        Ok(Some((entry, payload_bytes)))
    }

    fn local_copy(&self, meta: &EntryMeta, now: f64) -> EntryMeta {
        let bound = match self.tier {
            Tier::Memory => return meta.clone(),
            Tier::Remote => COALESCE_SECONDS,
            Tier::Layered => self.local_ttl.max(f64::MIN_POSITIVE),
        };
        EntryMeta {
            ttl: meta.ttl.min(meta.age(now) + bound),
            stale_while_revalidate: 0.0,
            stale_if_error: 0.0,
            ..meta.clone()
        }
    }

    /// The backend key of an entry: readable labels for prefix invalidation, then the digest.
    fn remote_key(&self, key: &crate::core::key::Key) -> String {
        format!(
            "{}:{}:{}:{}",
            self.prefix,
            self.labels.namespace,
            self.labels.route,
            key.hex()
        )
    }

    /// The envelope of an entry, framed (zstd above the threshold) for the backend.
    fn frame<'py>(
        &self,
        py: Python<'py>,
        key: &crate::core::key::Key,
        entry: &Stored<PyPayload>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let stored = entry.payload.headers.bind(py);
        let mut owned: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(stored.len() + 2);
        for pair in stored.iter() {
            let name = pair.get_item(0)?.cast_into::<PyBytes>()?;
            let value = pair.get_item(1)?.cast_into::<PyBytes>()?;
            owned.push((name.as_bytes().to_vec(), value.as_bytes().to_vec()));
        }
        let body = entry.payload.body.bind(py);
        let body = body.as_bytes();
        if entry.payload.content_length {
            owned.push((
                b"content-length".to_vec(),
                body.len().to_string().into_bytes(),
            ));
        }
        if let Some(lm) = entry.payload.last_modified {
            owned.push((b"last-modified".to_vec(), format_http_date(lm).into_bytes()));
        }
        let slices: Vec<(&[u8], &[u8])> = owned
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .collect();
        let mut meta = entry.meta.clone();
        meta.etag = entry.etag().to_owned();
        frame_envelope(
            py,
            &key.check(),
            &meta,
            &slices,
            body,
            self.compress_threshold,
        )
    }

    fn outgoing_cache_control(&self, credentialed: bool, ttl: f64) -> String {
        let mut value = String::new();
        // A per-user answer must not be stored by shared caches downstream (RFC 9111 §5.2.2.7).
        // So is an answer from a route keyed per user: a shared cache downstream (a CDN, or
        // CacheMiddleware) cannot see the dependency value it was keyed on.
        let personal = credentialed || self.per_user || self.private;
        if personal && !self.public && !self.cache_control.contains("private") {
            value.push_str("private, ");
        }
        value.push_str(&format!("max-age={}", ttl.floor()));
        if !self.cache_control.is_empty() {
            value.push_str(", ");
            value.push_str(&self.cache_control);
        }
        value
    }
}

#[pymethods]
impl RouteCache {
    #[new]
    fn new(
        py: Python<'_>,
        store: Py<MemoryStore>,
        fallback: Py<PyAny>,
        config: Bound<'_, RouteConfig>,
    ) -> PyResult<RouteCache> {
        let c = config.get();
        let declared = CacheControl::parse(c.cache_control.as_bytes());
        let window = |secs: f64| (secs > 0.0).then(|| secs.ceil() as u64);
        let entry_cc = CacheControl {
            must_revalidate: declared.must_revalidate || declared.proxy_revalidate,
            stale_while_revalidate: window(c.stale_while_revalidate),
            stale_if_error: window(c.stale_if_error),
            ..CacheControl::default()
        };
        let store_settings = StoreSettings {
            shared: true,
            statuses: c.statuses.clone(),
            allow_not_found: false,
            // The store's per-entry limit applies (`configure(max_entry_size=...)`).
            max_body_size: None,
            // Credentials are settled at lookup: a credentialed request only reaches a miss
            // when the route keys per user or declared its responses public.
            honour_authorization_opt_in: true,
            heuristic: false,
            declared_lifetime: true,
        };
        Ok(RouteCache {
            store,
            fallback,
            prefix: c.prefix.clone(),
            labels: Arc::new(RouteLabels {
                namespace: c.namespace.as_str().into(),
                route: c.route.as_str().into(),
            }),
            ttl: c.ttl,
            stale_while_revalidate: c.stale_while_revalidate,
            stale_if_error: c.stale_if_error,
            vary: c
                .vary
                .iter()
                .map(|v| v.to_ascii_lowercase().into_bytes())
                .collect(),
            cache_control: c.cache_control.clone(),
            per_user: c.per_user,
            public: c.public,
            private: c.private,
            weak_etag: c.weak_etag,
            entry_cc,
            reuse_policy: ReusePolicy {
                shared: true,
                honour_client_refresh: c.honor_no_cache,
            },
            store_settings,
            tier: c.tier,
            local_ttl: c.local_ttl,
            compress_threshold: c.compress_threshold,
            url_in_key: c.url_in_key,
            query: c.query.clone(),
            refresh_ahead: c.refresh_ahead,
            expires: c.expires,
            replier: Replier::new(py, &c.header_name)?,
            interner: HeaderInterner::default(),
            decoded: DecodedFrames::default(),
            config: config.clone().unbind(),
            armed: OnceLock::new(),
        })
    }

    /// Lets `lookup_call` answer the calls served by `route` through `inclusion` (FastAPI's
    /// `effective_route_context`, or None) without Python's per-call checks, which passed
    /// for them: the route's dependencies are known, the cache is enabled, no bypass header
    /// is configured, and the key is the arguments named `keyed`. Once per cache (settings
    /// that change build a new one); False when it was armed already.
    fn arm(
        &self,
        route: Bound<'_, PyAny>,
        inclusion: Bound<'_, PyAny>,
        keyed: Vec<Bound<'_, PyString>>,
    ) -> bool {
        self.armed
            .set(Armed {
                route: Held::of(route),
                inclusion: Held::of(inclusion),
                keyed: keyed.into_iter().map(Bound::unbind).collect(),
            })
            .is_ok()
    }

    /// `lookup` for a call to the endpoint, its key's values being the call's arguments
    /// (`kwargs`) named when armed. None when the call is not the armed route's (another
    /// route or inclusion serves it, `oxicache.bypass()` was called for it, or nothing is
    /// armed): Python's checks then decide.
    fn lookup_call<'py>(
        &self,
        py: Python<'py>,
        scope: &Bound<'py, PyDict>,
        kwargs: &Bound<'py, PyDict>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(armed) = self.armed.get() else {
            return Ok(None);
        };
        match scope.get_item(pyo3::intern!(py, "route"))? {
            Some(route) if armed.route.is(py, &route) => {}
            _ => return Ok(None),
        }
        let inclusion = match scope.get_item(pyo3::intern!(py, "fastapi"))? {
            Some(fastapi) => match fastapi.cast::<PyDict>() {
                Ok(d) => d.get_item(pyo3::intern!(py, "effective_route_context"))?,
                Err(_) => None,
            },
            None => None,
        };
        let none = py.None().into_bound(py);
        let same = armed.inclusion.is(py, inclusion.as_ref().unwrap_or(&none));
        if !same {
            return Ok(None);
        }
        if let Some(reason) = scope.get_item(pyo3::intern!(py, "oxicache.bypass"))? {
            if !reason.is_none() {
                return Ok(None);
            }
        }
        let mut values = Vec::with_capacity(armed.keyed.len());
        for name in &armed.keyed {
            if let Some(value) = kwargs.get_item(name.bind(py))? {
                values.push(value);
            }
        }
        let values = PyTuple::new(py, values)?;
        self.lookup(py, scope, &values, None).map(Some)
    }

    /// What the armed cache holds, shown to the collector: the weak references to its route
    /// and inclusion, or the objects themselves for types without one (which may hold their
    /// app, whose routes hold this cache through the endpoint: a cycle the collector must see
    /// to free an app built by a factory).
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(armed) = self.armed.get() {
            armed.route.traverse(&visit)?;
            armed.inclusion.traverse(&visit)?;
            for name in &armed.keyed {
                visit.call(name)?;
            }
        }
        Ok(())
    }

    /// The settings this cache was built with.
    #[getter]
    fn config(&self, py: Python<'_>) -> Py<RouteConfig> {
        self.config.clone_ref(py)
    }

    /// Looks a request up. Returns a `Hit` (the reply tuple `(status, headers, body)`), a
    /// `Pending` on a miss (the handler must run), or a `Bypass` with its reason. `per_user`
    /// overrides the route's setting for this request (False when a value that could identify
    /// the user was left out of the key).
    #[pyo3(signature = (scope, values, per_user = None))]
    fn lookup<'py>(
        &self,
        py: Python<'py>,
        scope: &Bound<'py, PyDict>,
        values: &Bound<'py, PyTuple>,
        per_user: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some(parts) = ScopeParts::read(scope) else {
            return Bypass::of(py, "malformed-scope");
        };
        let method = parts.method.to_str()?;
        if method != "GET" && method != "HEAD" {
            // RFC 9111 §2, docs/http.md: only GET and HEAD are cached. Other methods (a route that
            // also accepts POST, or `@cache` on a POST route) neither read nor write entries.
            return Bypass::of(py, "method");
        }
        let hs = header_slices(&parts.headers);
        let info = analyze(&hs);
        if let Some(bypass) = info.bypass {
            return Bypass::of(py, bypass.as_str());
        }
        let credentialed = info.has_credentials;
        if credentialed && !per_user.unwrap_or(self.per_user) && !self.public {
            // RFC 9111 §3.5: a shared entry does not answer a request with credentials unless
            // the route keys per user or declared the response public.
            return Bypass::of(py, "credentials");
        }
        let mut kb = KeyBuilder::new();
        self.key_prefix(&mut kb, "GET");
        kb.str(parts.scheme.to_str()?);
        match info.host {
            Some(h) => kb.bytes(&h.to_ascii_lowercase()),
            None => kb.opt_bytes(None),
        };
        if self.url_in_key {
            kb.bytes(parts.raw_path.as_bytes())
                .bytes(&key_query(parts.query.as_bytes(), &self.query));
        } else {
            // A key_builder's value stands for path and query (the route opted out of them).
            kb.str("custom");
        }
        for name in &self.vary {
            kb.opt_bytes(vary_value(&hs, name).as_deref());
        }
        kb.list(values.len());
        let fallback = self.fallback.bind(py);
        for v in values.iter() {
            encode_value(&mut kb, &v, fallback, 0)?;
        }
        let key = kb.finish();
        let head = method == "HEAD";
        let cond = Conditionals {
            inm: info.if_none_match.iter().map(|v| v.to_vec()).collect(),
            ims: info.if_modified_since.map(<[u8]>::to_vec),
        };
        let client_refresh = self.reuse_policy.honour_client_refresh;
        let mut revalidate = info.directives.no_cache && client_refresh;
        let mut stale = None;
        let mut serve_stale = false;
        let mut early = false;
        // A remote-only route never answers from memory (see `Tier::Remote`).
        if self.tier != Tier::Remote {
            let store = self.store.get().current();
            let now = store.clock().now();
            if let Lookup::Fresh(entry) | Lookup::Stale(entry) = store.get_at(&key, now) {
                match self.judge(py, &entry, now, &info.directives, &cond, head)? {
                    Judged::Hit(reply) => return Ok(reply.into_any()),
                    Judged::Miss {
                        stale: s,
                        serve_stale: serve,
                        forced,
                        early: e,
                    } => {
                        stale = s;
                        serve_stale = serve;
                        revalidate |= forced;
                        early = e;
                    }
                }
            }
        }
        if info.directives.only_if_cached && self.tier == Tier::Memory {
            // RFC 9111 §5.2.1.7: nothing acceptable is stored, and the client forbade going to
            // the origin. (With a backend, Python asks it first, then calls `gateway_timeout`.)
            return Ok(self.replier.bare(py, &reply::only_if_cached())?.into_any());
        }
        let remote_key = (self.tier != Tier::Memory).then(|| self.remote_key(&key));
        let pending = Pending {
            key: Key { inner: key },
            no_store: info.no_store,
            revalidate,
            credentialed,
            head,
            cond,
            path: path_tag(parts.raw_path.as_bytes()),
            stale,
            serve_stale,
            directives: info.directives,
            remote_key,
            started: self.store.get().current().clock().now(),
            early,
        };
        Ok(Bound::new(py, pending)?.into_any())
    }

    /// The `Cache-Status` member of a miss whose entry the backend did not get (RFC 9211): the
    /// write was skipped before it was made, for `detail` (§2.8: `backend-down`,
    /// `backend-busy`, `backend-too-large`). `stored` (§2.5) stays only where a tier of this
    /// cache does hold the response: the local tier of two tiers. A remote-only route keeps a
    /// copy for a second at most, to answer concurrent requests: not an entry.
    fn write_skipped_status<'py>(
        &self,
        py: Python<'py>,
        pending: &Pending,
        detail: &str,
    ) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &write_skipped(self.tier, forward_of(pending), detail))
    }

    /// The 504 of RFC 9111 §5.2.1.7, for a remote route whose backend had nothing usable.
    fn gateway_timeout<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.replier.bare(py, &reply::only_if_cached())
    }

    /// Judges an entry a remote backend returned for `pending` (a framed envelope). Returns a
    /// reply tuple to send, a new `Pending` carrying a usable stale reply (stale-while-
    /// revalidate or stale-if-error), `None` when the entry may not answer, or the string
    /// `"corrupt"` when the frame is foreign, cut short or fails its checksum (a miss; the
    /// caller overwrites it). With two tiers, a usable entry is also kept in memory, at most
    /// `local_ttl` seconds.
    fn accept<'py>(
        &self,
        py: Python<'py>,
        pending: &Pending,
        frame: &Bound<'py, PyBytes>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let store = self.store.get().current();
        let now = store.clock().now();
        let key = &pending.key.inner;
        // Remote only: the backend was just read; an identical frame decodes to the entry
        // decoded last time (see `decoded`). Two tiers read the backend only on local misses.
        let remembered = match self.tier {
            Tier::Remote => self.decoded.get(py, key, frame.as_bytes()),
            _ => None,
        };
        let entry = match remembered {
            Some(entry) => entry,
            None => {
                let Some((entry, charged)) = self.decode_frame(py, pending, frame, &store, now)?
                else {
                    return Ok(Some(PyString::new(py, "corrupt").into_any()));
                };
                let entry = Arc::new(entry);
                if self.tier == Tier::Remote {
                    self.decoded
                        .remember(key, frame, Arc::clone(&entry), charged);
                }
                entry
            }
        };
        let judged = self.judge(
            py,
            &entry,
            now,
            &pending.directives,
            &pending.cond,
            pending.head,
        )?;
        Ok(match judged {
            Judged::Hit(reply) => Some(reply.into_any()),
            Judged::Miss {
                stale: Some(stale),
                serve_stale,
                early,
                ..
            } => Some(
                Bound::new(py, pending.with_stale(py, Some(stale), serve_stale, early))?.into_any(),
            ),
            Judged::Miss { .. } => None,
        })
    }

    /// How many keys' last frames this route remembers decoded (remote tier; see
    /// `src/py/decoded.rs`).
    #[getter]
    fn remembered_frames(&self) -> usize {
        self.decoded.len()
    }

    /// Answers a waiter of a coalesced miss from the entry the leader stored, if any.
    fn replay_pending<'py>(
        &self,
        py: Python<'py>,
        pending: &Pending,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let store = self.store.get().current();
        let now = store.clock().now();
        match store.get_at(&pending.key.inner, now) {
            // Only an entry stored after this request began, by the miss it was coalesced
            // with: an older one was judged at lookup already (refused by a `no-cache`, say),
            // or, remote only, may have been invalidated in the backend since.
            Lookup::Fresh(entry) if entry.meta.stored_at < pending.started => Ok(None),
            Lookup::Fresh(entry) => {
                let request = pending.cond.of(pending.head);
                Ok(Some(self.hit(py, &entry, now, &request)?))
            }
            _ => Ok(None),
        }
    }

    /// Completes a miss with the rendered response. Stores it when allowed and returns the
    /// reply `(status, headers, body, stored, frame)` to send: the response plus the cache's
    /// fields, or a 304 when the request's `If-None-Match` matches the new entry. `frame` is
    /// the framed envelope to write to the backend (None for a memory route or a response
    /// not stored). `ttl` replaces the route's freshness lifetime for this entry (its
    /// `max-age`, `Expires` and expiry, here and in the backend); `tags` are application tags
    /// it carries in memory (see `MemoryStore.invalidate(tag=)`); both from `CacheRequest`.
    #[pyo3(signature = (pending, status, raw_headers, body, *, ttl = None, tags = None))]
    #[allow(clippy::too_many_arguments)]
    fn complete<'py>(
        &self,
        py: Python<'py>,
        pending: &Pending,
        status: u16,
        raw_headers: &Bound<'py, PyAny>,
        body: &Bound<'py, PyBytes>,
        ttl: Option<f64>,
        tags: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let ttl = match ttl {
            None => self.ttl,
            Some(t) if t.is_finite() && t > 0.0 => t,
            Some(t) => {
                let msg = format!("ttl must be a positive number of seconds, got {t}");
                return Err(super::errors::config_error(py, msg));
            }
        };
        let user: Option<Arc<[u64]>> = tags
            .filter(|names| !names.is_empty())
            .map(|names| names.iter().map(|n| user_tag(n)).collect());
        let response_headers = headers(raw_headers)?;
        let hs = header_slices(&response_headers);
        let verdict = if pending.no_store {
            Err("request-no-store")
        } else if pending.head {
            // docs/http.md: only a GET fills an entry; HEAD is answered from GET entries only.
            Err("head")
        } else {
            // RFC 9111 §3 with docs/http.md's stricter rules, as in CacheMiddleware. The request
            // side (method, no-store, credentials) was settled at lookup.
            decide(b"GET", &[], status, &hs, &self.store_settings)
                .map_err(|e| e.as_str())
                .and_then(|decision| {
                    if decision.cache_control.no_cache {
                        // RFC 9111 §5.2.2.4: the handler's own `no-cache` forbids answering
                        // from the entry without validation, which a route cannot do.
                        Err("no-cache")
                    } else if vary_is_keyed(&hs, &self.vary) {
                        // RFC 9111 §4.1: the entry would answer requests whose values of the
                        // response's Vary headers it never compared.
                        Ok(ResponseInfo::read(&hs))
                    } else {
                        Err("vary-unkeyed")
                    }
                })
        };
        let info = match verdict {
            Ok(info) => info,
            Err(why) => return self.not_stored(py, pending, status, &response_headers, body, why),
        };
        // What is stored: the response minus hop-by-hop fields (RFC 9111 §3.1) and minus the
        // cache's own per-reply fields, plus ETag, Cache-Control and Vary when missing. The
        // ETag and a Content-Length that matches the body are kept outside the shared tuple.
        let body_len = body.as_bytes().len();
        let mut content_length = false;
        let store = self.store.get().current();
        let now = store.clock().now();
        let now_secs = now.floor() as i64;
        let mut last_modified: Option<i64> = None;
        let mut fixed: Vec<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> = Vec::new();
        // RFC 9111 §3.1: neither hop-by-hop fields nor those the response's Connection lists.
        let nominated = connection_options(&hs);
        let own = self.replier.own();
        for (name, value) in &response_headers {
            let n = name.as_bytes();
            if !is_storable_field(n, &nominated) || own.is_own(n) {
                continue;
            }
            if n.eq_ignore_ascii_case(b"etag") {
                continue; // kept in the entry's metadata
            }
            if n.eq_ignore_ascii_case(b"last-modified") && last_modified.is_none() {
                if let Some(t) = parse_http_date_at(value.as_bytes(), now_secs) {
                    last_modified = Some(t);
                    continue; // rebuilt on replay
                }
            }
            if n.eq_ignore_ascii_case(b"content-length")
                && !content_length
                && is_decimal_of(value.as_bytes(), body_len)
            {
                content_length = true;
                continue;
            }
            fixed.push((name.clone(), value.clone()));
        }
        let etag_value = match &info.etag {
            Some(e) => String::from_utf8_lossy(e).into_owned(),
            None => etag::from_body(body.as_bytes(), self.weak_etag).to_header(),
        };
        if !info.has_cache_control {
            let cc = self.outgoing_cache_control(pending.credentialed, ttl);
            fixed.push((
                PyBytes::new(py, b"cache-control"),
                PyBytes::new(py, cc.as_bytes()),
            ));
        }
        if self.expires && !hs.iter().any(|(n, _)| n.eq_ignore_ascii_case(b"expires")) {
            // RFC 9111 §5.3: the time the response becomes stale, for HTTP/1.0 caches and
            // clients that read Expires; max-age, sent too, wins wherever both are read
            // (§4.2.1). An absolute time: replays carry it unchanged.
            let at = format_http_date_f64(now + ttl);
            fixed.push((
                PyBytes::new(py, b"expires"),
                PyBytes::new(py, at.as_bytes()),
            ));
        }
        if !info.has_vary && !self.vary.is_empty() {
            let names: Vec<String> = self
                .vary
                .iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            fixed.push((
                PyBytes::new(py, b"vary"),
                PyBytes::new(py, names.join(", ").as_bytes()),
            ));
        }
        let (shared, is_shared) = self.interner.intern(py, &fixed)?;
        let mut payload_bytes = body_len + PY_BYTES_OVERHEAD + etag_value.len();
        if !is_shared {
            for (n, v) in &fixed {
                payload_bytes += n.as_bytes().len() + v.as_bytes().len() + PY_HEADER_OVERHEAD;
            }
        }
        let meta = EntryMeta {
            status,
            stored_at: now,
            ttl,
            stale_while_revalidate: self.stale_while_revalidate,
            stale_if_error: self.stale_if_error,
            etag: etag_value,
        };
        let payload = PyPayload {
            // One copy at store time, none on a hit: the body the handler rendered sits in a
            // heap region shaped by the serializer's growing buffers, and keeping it leaves a
            // hole beside every entry (measured: 3.5 KB of RSS per 2.5 KB entry; a fresh
            // exact-size copy: 3.0 KB, within 0.3 % of the charged size).
            body: PyBytes::new(py, body.as_bytes()).unbind(),
            headers: shared,
            content_length,
            // Kept from the handler, else generated: the time the entry is stored.
            last_modified: Some(last_modified.unwrap_or(now_secs)),
            mw: None,
        };
        let tags = Tags {
            user,
            ..self.entry_tags(pending.path)
        };
        let key = &pending.key.inner;
        // What stays in memory: the entry itself for a memory route, else a bounded copy.
        let local_meta = self.local_copy(&meta, now);
        let inserted = store.insert(
            key,
            local_meta,
            payload.clone_ref(py),
            payload_bytes,
            tags.clone(),
        );
        let (inserted, frame) = if self.tier == Tier::Memory {
            (inserted, None)
        } else {
            // The backend's copy carries the route's full lifetime and stale windows.
            let weight = u32::try_from(payload_bytes).unwrap_or(u32::MAX);
            let entry = Stored::detached(key, meta, payload, tags, weight);
            let frame = self.frame(py, key, &entry)?;
            (Ok(Arc::new(entry)), Some(frame))
        };
        let frame = match frame {
            Some(f) => f.into_any(),
            None => py.None().into_bound(py),
        };
        match inserted {
            Ok(entry) => {
                // The entry as stored (a 304 when the request's validators match it), without
                // Age: the handler made it just now.
                let status = CacheStatus::forward(forward_of(pending)).stored();
                let facts = Replier::facts(py, &entry)?;
                let request = pending.cond.of(pending.head);
                let reply = reply::replay(&facts, &request, None, Label::Miss, status);
                let (status, headers, body) = self.replier.replay_parts(py, &entry, &reply)?;
                PyTuple::new(
                    py,
                    [
                        status.into_pyobject(py)?.into_any(),
                        headers.into_any(),
                        body.into_any(),
                        true.into_pyobject(py)?.to_owned().into_any(),
                        frame,
                    ],
                )
            }
            Err(err) => {
                let why = match err {
                    crate::core::store::StoreError::TooLarge { .. } => "too-large",
                    crate::core::store::StoreError::InvalidTtl => return Err(store_error(py, err)),
                };
                self.not_stored(py, pending, status, &response_headers, body, why)
            }
        }
    }

    /// The key of a plain function call (memoization).
    fn call_key(&self, py: Python<'_>, values: &Bound<'_, PyTuple>) -> PyResult<Key> {
        let mut kb = KeyBuilder::new();
        self.key_prefix(&mut kb, "CALL");
        kb.list(values.len());
        let fallback = self.fallback.bind(py);
        for v in values.iter() {
            encode_value(&mut kb, &v, fallback, 0)?;
        }
        Ok(Key { inner: kb.finish() })
    }

    /// Looks a memoized call up in memory: the stored encoded value, or `None`. A remote-only
    /// route keeps values in memory only for the callers coalesced behind a miss (`waiter`).
    #[pyo3(signature = (key, waiter = false))]
    fn get_value<'py>(
        &self,
        py: Python<'py>,
        key: &Key,
        waiter: bool,
    ) -> Option<Bound<'py, PyBytes>> {
        if self.tier == Tier::Remote && !waiter {
            return None;
        }
        match self.store.get().current().get(&key.inner) {
            Lookup::Fresh(entry) => Some(entry.payload.body.bind(py).clone()),
            _ => None,
        }
    }

    /// Stores a memoized call's encoded value in memory (with a backend: a copy bounded like a
    /// route's, see `Tier`). Returns `(stored, frame)`: False when it is over the entry size
    /// limit; `frame` is the framed envelope to write to the backend (None for memory routes).
    fn set_value<'py>(
        &self,
        py: Python<'py>,
        key: &Key,
        value: &Bound<'py, PyBytes>,
    ) -> PyResult<(bool, Option<Bound<'py, PyBytes>>)> {
        let store = self.store.get().current();
        let meta = EntryMeta {
            status: 0,
            stored_at: store.clock().now(),
            ttl: self.ttl,
            stale_while_revalidate: self.stale_while_revalidate,
            stale_if_error: self.stale_if_error,
            etag: String::new(),
        };
        let local_meta = self.local_copy(&meta, meta.stored_at);
        let size = value.as_bytes().len() + PY_BYTES_OVERHEAD;
        let tags = self.entry_tags(path_tag(b""));
        let payload = PyPayload::value(py, value);
        let stored = match store.insert(&key.inner, local_meta, payload, size, tags.clone()) {
            Ok(_) => true,
            Err(crate::core::store::StoreError::TooLarge { .. }) => false,
            Err(err) => return Err(store_error(py, err)),
        };
        if self.tier == Tier::Memory {
            return Ok((stored, None));
        }
        let weight = u32::try_from(size).unwrap_or(u32::MAX);
        let entry = Stored::detached(&key.inner, meta, PyPayload::value(py, value), tags, weight);
        Ok((true, Some(self.frame(py, &key.inner, &entry)?)))
    }

    /// The backend key of a memoized call, or None for a memory route.
    fn remote_key_of(&self, key: &Key) -> Option<String> {
        (self.tier != Tier::Memory).then(|| self.remote_key(&key.inner))
    }

    /// The value in a frame a backend returned for a memoized call: the encoded value while
    /// fresh, None when stale, `"corrupt"` (a str) when foreign, cut short or damaged. With
    /// two tiers a fresh value is also kept in memory, at most `local_ttl` seconds.
    fn accept_value<'py>(
        &self,
        py: Python<'py>,
        key: &Key,
        frame: &Bound<'py, PyBytes>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let store = self.store.get().current();
        let Some(env_bytes) = unframe(py, frame.as_bytes(), &store) else {
            return Ok(Some(PyString::new(py, "corrupt").into_any()));
        };
        let Ok(env) = envelope::decode_for(&env_bytes, &key.inner.check()) else {
            return Ok(Some(PyString::new(py, "corrupt").into_any()));
        };
        let now = store.clock().now();
        if env.meta.age(now) >= env.meta.ttl {
            return Ok(None);
        }
        let value = PyBytes::new(py, env.body);
        if self.tier == Tier::Layered && self.local_ttl > 0.0 {
            let local = self.local_copy(&env.meta, now);
            let size = env.body.len() + PY_BYTES_OVERHEAD;
            let tags = self.entry_tags(path_tag(b""));
            let _ = store.insert(&key.inner, local, PyPayload::value(py, &value), size, tags);
        }
        Ok(Some(value.into_any()))
    }

    /// Removes one key; true if it was there.
    fn remove(&self, key: &Key) -> bool {
        self.store.get().current().remove(&key.inner)
    }

    /// The route label entries of this cache are tagged with.
    #[getter]
    fn route(&self) -> &str {
        &self.labels.route
    }

    /// The namespace label entries of this cache are tagged with.
    #[getter]
    fn namespace(&self) -> &str {
        &self.labels.namespace
    }
}
