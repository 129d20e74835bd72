//! Module-level functions: the HTTP parsers and the envelope codec, exposed for tests, tools
//! and the remote backends.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::convert::{encode_value, header_slices, headers};
use super::errors::envelope_error;
use super::key::Key;
use crate::core::entry::EntryMeta;
use crate::core::envelope;
use crate::core::key::KeyBuilder;
use crate::http::cache_control::{CacheControl, MaxStale};
use crate::http::{conditional, etag};

/// Parses `Cache-Control` field lines into a dict of the directives present (unknown and
/// malformed directives are left out; never raises on content).
#[pyfunction]
pub fn parse_cache_control<'py>(
    py: Python<'py>,
    lines: Vec<Vec<u8>>,
) -> PyResult<Bound<'py, PyDict>> {
    let cc = CacheControl::parse_lines(lines.iter().map(Vec::as_slice));
    let d = PyDict::new(py);
    let flags = [
        ("no-cache", cc.no_cache),
        ("no-store", cc.no_store),
        ("private", cc.private),
        ("public", cc.public),
        ("must-revalidate", cc.must_revalidate),
        ("proxy-revalidate", cc.proxy_revalidate),
        ("immutable", cc.immutable),
        ("no-transform", cc.no_transform),
        ("must-understand", cc.must_understand),
        ("only-if-cached", cc.only_if_cached),
    ];
    for (name, set) in flags {
        if set {
            d.set_item(name, true)?;
        }
    }
    let numbers = [
        ("max-age", cc.max_age),
        ("s-maxage", cc.s_maxage),
        ("min-fresh", cc.min_fresh),
        ("stale-while-revalidate", cc.stale_while_revalidate),
        ("stale-if-error", cc.stale_if_error),
    ];
    for (name, value) in numbers {
        if let Some(v) = value {
            d.set_item(name, v)?;
        }
    }
    match cc.max_stale {
        Some(MaxStale::Any) => d.set_item("max-stale", true)?,
        Some(MaxStale::Seconds(s)) => d.set_item("max-stale", s)?,
        None => {}
    }
    if cc.conflicting {
        d.set_item("conflicting", true)?;
    }
    Ok(d)
}

/// The entity tag oxicache derives from a body (stable across processes), as a field value.
#[pyfunction]
#[pyo3(signature = (body, weak = true))]
pub fn etag_for(body: &[u8], weak: bool) -> String {
    etag::from_body(body, weak).to_header()
}

/// RFC 9110 §13.1.2: whether `If-None-Match` lines match the stored ETag (answer 304).
#[pyfunction]
pub fn if_none_match_hits(lines: Vec<Vec<u8>>, etag: &str) -> bool {
    conditional::if_none_match_hits(lines.iter().map(Vec::as_slice), Some(etag))
}

/// Encodes an entry as the versioned envelope the remote backends store.
#[pyfunction]
#[pyo3(signature = (key, status, headers_list, body, *, stored_at, ttl, etag = String::new(),
    stale_while_revalidate = 0.0, stale_if_error = 0.0, flags = 0))]
#[allow(clippy::too_many_arguments)]
pub fn encode_entry<'py>(
    py: Python<'py>,
    key: &Key,
    status: u16,
    headers_list: &Bound<'py, PyAny>,
    body: &[u8],
    stored_at: f64,
    ttl: f64,
    etag: String,
    stale_while_revalidate: f64,
    stale_if_error: f64,
    flags: u8,
) -> PyResult<Bound<'py, PyBytes>> {
    let hs = headers(headers_list)?;
    let slices = header_slices(&hs);
    let meta = EntryMeta {
        status,
        stored_at,
        ttl,
        stale_while_revalidate,
        stale_if_error,
        etag,
    };
    let bytes = envelope::encode(&key.inner.check(), &meta, &slices, body, flags)
        .map_err(|e| envelope_error(py, e))?;
    Ok(PyBytes::new(py, &bytes))
}

/// Decodes an envelope, checking it was stored under `key`. Returns a dict with `status`,
/// `headers`, `body`, `stored_at`, `ttl`, `etag`, `stale_while_revalidate`, `stale_if_error`,
/// `flags`; raises `EntryDecodeError` for anything corrupt, truncated or foreign.
#[pyfunction]
pub fn decode_entry<'py>(py: Python<'py>, data: &[u8], key: &Key) -> PyResult<Bound<'py, PyDict>> {
    let env = envelope::decode_for(data, &key.inner.check()).map_err(|e| envelope_error(py, e))?;
    entry_dict(py, &env)
}

/// Decodes an envelope found in a backend without knowing the request it answers (an
/// operator's `inspect`): the same dict as [`decode_entry`]. The checksum is verified; the key
/// check cannot be, and is not returned (it is derived from the request's key).
#[pyfunction]
pub fn inspect_entry<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyDict>> {
    let env = envelope::decode(data).map_err(|e| envelope_error(py, e))?;
    entry_dict(py, &env)
}

fn entry_dict<'py>(py: Python<'py>, env: &envelope::Envelope<'_>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("status", env.meta.status)?;
    let hs = PyList::empty(py);
    for (n, v) in &env.headers {
        hs.append(PyTuple::new(
            py,
            [PyBytes::new(py, n), PyBytes::new(py, v)],
        )?)?;
    }
    d.set_item("headers", hs)?;
    d.set_item("body", PyBytes::new(py, env.body))?;
    d.set_item("stored_at", env.meta.stored_at)?;
    d.set_item("ttl", env.meta.ttl)?;
    d.set_item("etag", &env.meta.etag)?;
    d.set_item("stale_while_revalidate", env.meta.stale_while_revalidate)?;
    d.set_item("stale_if_error", env.meta.stale_if_error)?;
    d.set_item("flags", env.flags)?;
    Ok(d)
}

/// This cache's `Cache-Status` member for a request answered without the cache (RFC 9211 §2.2
/// `fwd=bypass`, §2.8 `detail`: the reason, as a fixed token), from the one builder: the
/// decorator's bypass label.
#[pyfunction]
pub fn bypass_status<'py>(py: Python<'py>, reason: &str) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &crate::http::cache_status::bypass(reason).to_vec())
}

/// The backend tag under which remote entries of a raw request path are written.
#[pyfunction]
pub fn path_tag_of(path: &[u8]) -> String {
    super::route::remote_path_tag(crate::core::store::path_tag(path))
}

/// Builds a key from a sequence of values (the same encoding the routes use).
#[pyfunction]
pub fn build_key(values: &Bound<'_, PyTuple>, fallback: &Bound<'_, PyAny>) -> PyResult<Key> {
    let mut kb = KeyBuilder::new();
    kb.list(values.len());
    for v in values.iter() {
        encode_value(&mut kb, &v, fallback, 0)?;
    }
    Ok(Key { inner: kb.finish() })
}
