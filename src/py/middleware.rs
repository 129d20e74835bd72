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

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::convert::{header_slices, headers, ScopeParts};
use super::reply::Replier;
use super::results::{Bypass, ResponseAction};
use super::store::{MemoryStore, PyPayload, PY_BYTES_OVERHEAD, PY_HEADER_OVERHEAD};
use crate::core::entry::EntryMeta;
use crate::core::key::{Key, KeyBuilder};
use crate::core::response_facts::ResponseFacts;
use crate::core::store::{path_tag, Lookup, RouteLabels, Stored, Tags};
use crate::http::cache_status::{ttl_seconds, CacheStatus, Forward};
use crate::http::freshness::{
    age_header_value, assess, freshness_lifetime, stale_if_error_allows, ResponseTimes, Reuse,
    ReusePolicy,
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

static STAMPS: AtomicU64 = AtomicU64::new(1);

/// The context of a miss or a revalidation, handed back by Python.
#[pyclass(frozen, module = "oxicache._core")]
pub struct MiddlewarePending {
    scheme: Vec<u8>,
    host: Option<Vec<u8>>,
    path: Vec<u8>,
    query: Vec<u8>,
    method: Vec<u8>,
    request_headers: Vec<(Vec<u8>, Vec<u8>)>,
    client_inm: Vec<Vec<u8>>,
    client_ims: Vec<Vec<u8>>,
    no_store: bool,
    request_time: f64,
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
}

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

impl MiddlewarePending {
    /// The client's side of a reply from an entry: its method and its own conditionals.
    fn conditions(&self) -> Conditions<'_> {
        Conditions {
            head: self.method.eq_ignore_ascii_case(b"HEAD"),
            if_none_match: &self.client_inm,
            if_modified_since: self.client_ims.first().map(Vec::as_slice),
        }
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
        kb.str(&self.prefix)
            .str("middleware")
            .str(&self.app_namespace)
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

    /// Stores a response; returns the entry, or the reason it was not stored.
    fn store_response(
        &self,
        py: Python<'_>,
        pending: &MiddlewarePending,
        status: u16,
        response_headers: &[(&[u8], &[u8])],
        body: &[u8],
        now: f64,
    ) -> PyResult<Result<Arc<Stored<PyPayload>>, &'static str>> {
        let request: Vec<(&[u8], &[u8])> = pending
            .request_headers
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .collect();
        let decision = match decide(
            &pending.method,
            &request,
            status,
            &slices(&surrogate_view(response_headers)),
            &self.settings,
        ) {
            Ok(d) => d,
            Err(why) => return Ok(Err(why.as_str())),
        };
        if pending.no_store {
            return Ok(Err("request-no-store"));
        }
        if !body_fits(body.len() as u64, &self.settings) {
            return Ok(Err("too-large"));
        }
        let kept: Vec<(&[u8], &[u8])> = headers_to_store(response_headers)
            .into_iter()
            .filter(|(n, _)| !self.is_own(n) && !is_targeted(n))
            .collect();
        let times = ResponseTimes::from_headers(response_headers, pending.request_time, now);
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
        let request_headers: Vec<(&[u8], &[u8])> = pending
            .request_headers
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .collect();
        let primary = self.primary(
            &pending.scheme,
            pending.host.as_deref(),
            &pending.path,
            &pending.query,
            &request_headers,
        );
        let tags = Tags {
            labels: Arc::clone(&self.labels),
            path: path_tag(&pending.path),
            user: None,
        };
        let key = match &decision.vary {
            Vary::Fields(names) if !names.is_empty() => {
                // Keep the index (and so the other variants) when the names did not change.
                let stamp = match store.get_at(&primary.clone().finish(), now) {
                    Lookup::Fresh(e) | Lookup::Stale(e) => match e.payload.mw.as_deref() {
                        Some(ResponseFacts::Variants { vary, stamp }) if *vary == decision.vary => {
                            *stamp
                        }
                        _ => STAMPS.fetch_add(1, Ordering::Relaxed),
                    },
                    Lookup::Miss => STAMPS.fetch_add(1, Ordering::Relaxed),
                };
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
                let _ = store.insert(
                    &primary.clone().finish(),
                    index_meta,
                    index,
                    64,
                    tags.clone(),
                );
                let values = secondary_key(&decision.vary, &request).unwrap_or_default();
                Self::variant_key(&primary, stamp, &values)
            }
            _ => primary.finish(),
        };
        match store.insert(&key, meta, payload, payload_bytes, tags) {
            Ok(entry) => Ok(Ok(entry)),
            Err(_) => Ok(Err("too-large")),
        }
    }
}

#[pymethods]
impl MiddlewareEngine {
    #[new]
    #[pyo3(signature = (store, *, prefix = String::new(), app_namespace = String::new(),
        shared = true, statuses = DEFAULT_STATUSES.to_vec(), share_authorized = false,
        honor_no_cache = true, max_body = 8 * 1024 * 1024, header_name = "x-cache".to_string()))]
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
    ) -> PyResult<Self> {
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
            app_namespace,
            settings,
            policy: ReusePolicy {
                shared,
                honour_client_refresh: honor_no_cache,
            },
            replier: Replier::new(py, &header_name)?,
            labels: Arc::new(RouteLabels {
                namespace: "middleware".into(),
                route: "middleware".into(),
            }),
            max_body,
        })
    }

    /// A `Hit` (the reply tuple), a `MiddlewarePending` when the app must answer (a miss or a
    /// revalidation), or a `Bypass` to pass the request to the app without the cache, its
    /// response labelled by `bypass_label` (reason `"unsafe"`: then call `invalidate` too).
    fn lookup<'py>(
        &self,
        py: Python<'py>,
        scope: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some(parts) = ScopeParts::read(scope) else {
            return Bypass::of(py, "malformed-scope");
        };
        let method = parts.method.to_str()?.as_bytes().to_vec();
        if method != b"GET" && method != b"HEAD" {
            let safe = matches!(method.as_slice(), b"OPTIONS" | b"TRACE");
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
        let scheme = parts.scheme.to_str()?.as_bytes().to_vec();
        let host = info.host.map(|h| h.to_ascii_lowercase());
        let path = parts.raw_path.as_bytes().to_vec();
        let query = parts.query.as_bytes().to_vec();
        let primary = self.primary(&scheme, host.as_deref(), &path, &query, &hs);
        let now = self.store.get().current().clock().now();
        let request = info.directives;
        let client_inm: Vec<Vec<u8>> = lines(&hs, b"if-none-match").map(<[u8]>::to_vec).collect();
        let client_ims: Vec<Vec<u8>> = lines(&hs, b"if-modified-since")
            .map(<[u8]>::to_vec)
            .collect();
        let mut stale = None;
        let mut stale_reply: Option<Py<PyTuple>> = None;
        let mut fwd = Forward::Miss;
        let client = Conditions {
            head: method == b"HEAD",
            if_none_match: &client_inm,
            if_modified_since: client_ims.first().map(Vec::as_slice),
        };
        let mut serve_stale = false;
        if let Some(entry) = self.find(&primary, &hs, now) {
            if let Some(ResponseFacts::Response {
                cc,
                times,
                etag,
                last_modified,
            }) = entry.payload.mw.as_deref()
            {
                // A credentialed request reuses only what the response allowed (RFC 9111 §3.5).
                let allowed = !info.has_credentials
                    || cc.public
                    || cc.s_maxage.is_some()
                    || cc.must_revalidate;
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
                    let reply = self.reply(py, &entry, now, &client, Label::Stale, status)?;
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
                        let reply = self.reply(py, &entry, now, &client, label, status)?;
                        return Ok(reply.into_any());
                    }
                    Reuse::NotUsable => {
                        return Ok(self.replier.bare(py, &reply::only_if_cached())?.into_any())
                    }
                    // RFC 9111 §5.2.1.7: usable but not for this credentialed request (§3.5).
                    _ if request.only_if_cached => {
                        return Ok(self.replier.bare(py, &reply::only_if_cached())?.into_any())
                    }
                    _ => {
                        if etag.is_some() || last_modified.is_some() {
                            stale = Some(Arc::clone(&entry));
                        }
                    }
                }
            }
        } else if request.only_if_cached {
            // RFC 9111 §5.2.1.7: nothing stored, and the client forbade going to the origin.
            return Ok(self.replier.bare(py, &reply::only_if_cached())?.into_any());
        }
        // Forward without the client's conditionals (so the answer can be stored; the cache
        // evaluates them itself, RFC 9111 §4.3.2), with the stored validators when revalidating.
        let forward = PyList::empty(py);
        for (n, v) in &parts.headers {
            if !is_conditional(n.as_bytes()) {
                forward.append((n, v))?;
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
        let changed = stale.is_some()
            || !client_inm.is_empty()
            || !client_ims.is_empty()
            || hs.iter().any(|(n, _)| is_conditional(n));
        let pending = MiddlewarePending {
            scheme,
            host,
            path,
            query,
            method,
            request_headers: owned(&hs),
            client_inm,
            client_ims,
            no_store: info.no_store,
            request_time: now,
            stale,
            stale_reply,
            serve_stale,
            flight: primary.clone().finish().hex(),
            fwd,
            forward: if changed {
                Some(forward.unbind())
            } else {
                None
            },
        };
        Ok(Bound::new(py, pending)?.into_any())
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
        let request: Vec<(&[u8], &[u8])> = pending
            .request_headers
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .collect();
        let verdict = if pending.no_store {
            Err("request-no-store")
        } else {
            decide(
                &pending.method,
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

    /// Stores a complete buffered response when allowed; returns the reply to send.
    fn complete<'py>(
        &self,
        py: Python<'py>,
        pending: &MiddlewarePending,
        status: u16,
        raw_headers: &Bound<'py, PyAny>,
        body: &Bound<'py, PyBytes>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let status_code = status;
        let response_headers = headers(raw_headers)?;
        let hs = header_slices(&response_headers);
        let now = self.store.get().current().clock().now();
        match self.store_response(py, pending, status, &hs, body.as_bytes(), now)? {
            Ok(entry) => {
                let status = CacheStatus::forward(pending.fwd).stored();
                self.reply(py, &entry, now, &pending.conditions(), Label::Miss, status)
            }
            Err(why) => {
                let head = pending.method == b"HEAD";
                let status = CacheStatus::forward(Forward::Miss).detail(why);
                let reply = reply::pass_on(status_code, head, self.replier.own(), false, status);
                self.replier.pass_on(py, &response_headers, body, &reply)
            }
        }
    }

    /// The app answered the cache's validation with 304: update the stored entry with the
    /// 304's fields (RFC 9111 §4.3.4) and answer from it.
    fn freshen<'py>(
        &self,
        py: Python<'py>,
        pending: &MiddlewarePending,
        raw_headers: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
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
            Ok(fresh) => {
                let status = CacheStatus::forward(pending.fwd).fwd_status(304).stored();
                self.reply(py, &fresh, now, &pending.conditions(), Label::Hit, status)
            }
            // Not storable any more (the 304 said no-store, say): answer from the stale entry
            // once, as validated.
            Err(_) => {
                let status = CacheStatus::forward(pending.fwd).fwd_status(304);
                self.reply(py, entry, now, &pending.conditions(), Label::Hit, status)
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
        let Some(parts) = ScopeParts::read(scope) else {
            return Ok(0);
        };
        let hs = header_slices(&parts.headers);
        let response_headers = headers(raw_headers)?;
        let rs = header_slices(&response_headers);
        let scheme = parts.scheme.to_str()?.as_bytes().to_vec();
        let Some(host) = analyze(&hs).host.map(|h| h.to_ascii_lowercase()) else {
            return Ok(0);
        };
        let mut uri = Vec::new();
        uri.extend_from_slice(&scheme);
        uri.extend_from_slice(b"://");
        uri.extend_from_slice(&host);
        uri.extend_from_slice(parts.raw_path.as_bytes());
        if !parts.query.as_bytes().is_empty() {
            uri.push(b'?');
            uri.extend_from_slice(parts.query.as_bytes());
        }
        let method = parts.method.to_str()?.as_bytes().to_vec();
        let targets = invalidation_targets(
            &method,
            status,
            &uri,
            lines(&rs, b"location").next(),
            lines(&rs, b"content-location").next(),
        );
        let store = self.store.get().current();
        let mut dropped = 0;
        let mut paths = Vec::with_capacity(targets.len());
        for t in targets {
            paths.push(path_tag(&t.path));
            // The entry of a request with no forwarding headers, and that of one with the same
            // forwarding headers as this request (behind a proxy that adds them to every
            // request, the entries of its clients).
            let query = t.query.as_deref().unwrap_or_default();
            let clean = self.primary(&scheme, Some(&host), &t.path, query, &[]);
            let proxied = self.primary(&scheme, Some(&host), &t.path, query, &hs);
            for key in [clean.finish(), proxied.finish()] {
                dropped += usize::from(store.remove(&key));
            }
        }
        // The decorator's entries for those paths too (`@cache` routes keep no per-URI index,
        // so this is one pass over the store: it runs only after a successful unsafe request).
        let labels = Arc::clone(&self.labels);
        store
            .invalidate_where(move |t| !Arc::ptr_eq(&t.labels, &labels) && paths.contains(&t.path));
        Ok(dropped)
    }
}
