//! `MemoryStore`: the in-process store holding Python `bytes` bodies.

use std::sync::{Arc, RwLock};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use super::errors::config_error;
use crate::core::clock::Clock;
use crate::core::store::{path_tag, user_tag, Store, StoreConfig};

/// Python-side resident cost of one stored header pair (tuple + two bytes objects), used to
/// charge entries close to their real size.
pub const PY_HEADER_OVERHEAD: usize = 140;
/// Python-side cost of a body `bytes` object's header.
pub const PY_BYTES_OVERHEAD: usize = 40;

/// What the memory store keeps for one entry: the body as the very `bytes` object the response
/// carried (a hit hands it back without a copy) and the stored header pairs.
pub struct PyPayload {
    /// The body.
    pub body: Py<PyBytes>,
    /// A tuple of `(name, value)` bytes pairs: the static fields, shared between entries
    /// (see `interner.rs`); `content-length` and `etag` are rebuilt on replay.
    pub headers: Py<PyTuple>,
    /// The response had a `content-length` equal to the body's length.
    pub content_length: bool,
    /// Last-Modified (Unix seconds), sent on replay and compared with If-Modified-Since.
    pub last_modified: Option<i64>,
    /// What the middleware keeps beside (None for the decorator's entries).
    pub mw: Option<Box<crate::core::response_facts::ResponseFacts>>,
}

impl PyPayload {
    /// The payload of a memoized call's encoded value: the bytes, no fields.
    pub fn value(py: Python<'_>, value: &Bound<'_, PyBytes>) -> PyPayload {
        PyPayload {
            body: value.clone().unbind(),
            headers: PyTuple::empty(py).unbind(),
            content_length: false,
            last_modified: None,
            mw: None,
        }
    }

    /// A second reference to the same body and headers (no copy), with the same facts.
    pub fn clone_ref(&self, py: Python<'_>) -> PyPayload {
        PyPayload {
            body: self.body.clone_ref(py),
            headers: self.headers.clone_ref(py),
            content_length: self.content_length,
            last_modified: self.last_modified,
            mw: self.mw.clone(),
        }
    }
}

/// The in-process store, resizable in place so routes keep their reference across `configure()`.
#[pyclass(frozen, module = "oxicache._core")]
pub struct MemoryStore {
    inner: RwLock<Arc<Store<PyPayload>>>,
    clock: Arc<Clock>,
}

impl MemoryStore {
    /// The current store (cheap: an `Arc` clone under a read lock).
    pub fn current(&self) -> Arc<Store<PyPayload>> {
        match self.inner.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn build(
        py: Python<'_>,
        max_bytes: u64,
        max_entry_bytes: usize,
        clock: &Arc<Clock>,
    ) -> PyResult<Store<PyPayload>> {
        if max_bytes == 0 || max_entry_bytes == 0 {
            return Err(config_error(
                py,
                "max_bytes and max_entry_bytes must be positive".into(),
            ));
        }
        Ok(Store::new(
            StoreConfig {
                max_bytes,
                max_entry_bytes,
            },
            Arc::clone(clock),
        ))
    }
}

#[pymethods]
impl MemoryStore {
    #[new]
    #[pyo3(signature = (max_bytes = 256 * 1024 * 1024, max_entry_bytes = 8 * 1024 * 1024))]
    fn new(py: Python<'_>, max_bytes: u64, max_entry_bytes: usize) -> PyResult<Self> {
        let clock = Arc::new(Clock::default());
        let store = Self::build(py, max_bytes, max_entry_bytes, &clock)?;
        Ok(MemoryStore {
            inner: RwLock::new(Arc::new(store)),
            clock,
        })
    }

    /// Replaces the store with an empty one of the given limits.
    fn reset(&self, py: Python<'_>, max_bytes: u64, max_entry_bytes: usize) -> PyResult<()> {
        let fresh = Arc::new(Self::build(py, max_bytes, max_entry_bytes, &self.clock)?);
        let old = match self.inner.write() {
            Ok(mut guard) => std::mem::replace(&mut *guard, fresh),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), fresh),
        };
        // Drop the old entries (and their Python objects) now, while attached to Python.
        old.clear();
        Ok(())
    }

    #[getter]
    fn max_bytes(&self) -> u64 {
        self.current().config().max_bytes
    }

    #[getter]
    fn max_entry_bytes(&self) -> usize {
        self.current().config().max_entry_bytes
    }

    /// Current time of the store's clock (Unix seconds).
    fn now(&self) -> f64 {
        self.clock.now()
    }

    /// Moves the store's clock by `seconds` (for tests: expiry without sleeping).
    fn advance_clock(&self, py: Python<'_>, seconds: f64) -> PyResult<()> {
        if !seconds.is_finite() {
            return Err(config_error(
                py,
                format!("cannot move the clock by {seconds}"),
            ));
        }
        self.clock.advance(seconds);
        Ok(())
    }

    /// Removes every entry.
    fn clear(&self) {
        self.current().clear();
    }

    /// Invalidates the entries matching every given label. With no label, nothing happens.
    /// `path_hash` is a path given by its hash (`path_tag_of(path)` without its `"path:"`
    /// prefix, as 16 hex digits, or the integer): what a coherence message carries.
    /// `tag` is an application tag (`CacheRequest.tag`), matched by its hash.
    #[pyo3(signature = (*, namespace = None, route = None, path = None, path_hash = None, tag = None))]
    fn invalidate(
        &self,
        py: Python<'_>,
        namespace: Option<String>,
        route: Option<String>,
        path: Option<Vec<u8>>,
        path_hash: Option<&Bound<'_, PyAny>>,
        tag: Option<&str>,
    ) -> PyResult<()> {
        let hash = match path_hash {
            None => None,
            Some(h) => Some(if let Ok(s) = h.extract::<String>() {
                parse_path_hash(&s).ok_or_else(|| {
                    config_error(py, format!("path_hash must be 16 hex digits, got {s:?}"))
                })?
            } else {
                h.extract::<u64>()?
            }),
        };
        if namespace.is_none()
            && route.is_none()
            && path.is_none()
            && hash.is_none()
            && tag.is_none()
        {
            return Ok(());
        }
        let wanted = path.as_deref().map(path_tag);
        if let (Some(a), Some(b)) = (wanted, hash) {
            if a != b {
                return Ok(()); // no entry can match two different paths
            }
        }
        let wanted = wanted.or(hash);
        let tag = tag.map(user_tag);
        self.current().invalidate_where(move |t| {
            namespace
                .as_deref()
                .is_none_or(|n| *t.labels.namespace == *n)
                && route.as_deref().is_none_or(|r| *t.labels.route == *r)
                && wanted.is_none_or(|p| t.path == p)
                && tag.is_none_or(|h| t.has_user_tag(h))
        });
        Ok(())
    }

    /// Removes the entry whose key digest is `digest` (64 hex digits, the last field of a
    /// backend key), whatever its canonical key; true if one was there. Coherence messages
    /// between processes name entries this way.
    fn remove_digest(&self, py: Python<'_>, digest: &str) -> PyResult<bool> {
        let bytes = parse_digest(digest).ok_or_else(|| {
            config_error(py, format!("a digest is 64 hex digits, got {digest:?}"))
        })?;
        Ok(self.current().remove_digest(&bytes))
    }

    /// Runs pending evictions and expirations now.
    fn run_pending_tasks(&self) {
        self.current().run_pending_tasks();
    }

    /// Number of entries.
    fn __len__(&self) -> usize {
        usize::try_from(self.current().entry_count()).unwrap_or(usize::MAX)
    }

    /// Sum of the charged sizes of all entries, in bytes.
    #[getter]
    fn weighted_size(&self) -> u64 {
        self.current().weighted_size()
    }

    /// Counters: hits, stale_hits, misses, inserts, rejected, collisions, evictions, expirations.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        use std::sync::atomic::Ordering::Relaxed;
        let store = self.current();
        let s = store.stats();
        let d = PyDict::new(py);
        d.set_item("hits", s.hits.load(Relaxed))?;
        d.set_item("stale_hits", s.stale_hits.load(Relaxed))?;
        d.set_item("misses", s.misses.load(Relaxed))?;
        d.set_item("inserts", s.inserts.load(Relaxed))?;
        d.set_item("rejected", s.rejected.load(Relaxed))?;
        d.set_item("collisions", s.collisions.load(Relaxed))?;
        d.set_item("evictions", s.evictions.load(Relaxed))?;
        d.set_item("expirations", s.expirations.load(Relaxed))?;
        d.set_item("entries", store.entry_count())?;
        d.set_item("weighted_size", store.weighted_size())?;
        Ok(d)
    }
}

/// The value of one hex digit (either case).
fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// 64 hex digits as the 32 bytes of a key digest.
fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let raw = text.as_bytes();
    if raw.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in raw.chunks_exact(2).enumerate() {
        out[i] = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
    }
    Some(out)
}

/// A path hash as written in a backend tag: 16 hex digits, with or without `"path:"`.
fn parse_path_hash(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("path:").unwrap_or(text);
    if digits.len() != 16 || !digits.bytes().all(|c| hex_value(c).is_some()) {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}
