//! `BlobStore`: the in-process Rust store behind `oxicache.backends.memory.MemoryBackend`, the
//! Backend protocol's memory engine (str keys, opaque bytes, TTL, tags).
//!
//! It is the same byte-bounded quick_cache store as the route entries' (`core::store`), holding
//! Python `bytes` values without copying them on a hit. A key's text rides in the entry's route
//! label, so `delete_prefix` is a sweep over labels; tags are an index from tag to key digests,
//! pruned as it is used (a digest whose entry has gone is simply skipped).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors::config_error;
use super::store::PY_BYTES_OVERHEAD;
use crate::core::clock::Clock;
use crate::core::entry::EntryMeta;
use crate::core::key::{Key, KeyBuilder};
use crate::core::store::{Lookup, RouteLabels, Store, StoreConfig, StoreError, Tags};

/// Keys, values, TTLs and tags in memory (see the module doc).
#[pyclass(frozen, module = "oxicache._core")]
pub struct BlobStore {
    store: Store<Py<PyBytes>>,
    tags: Mutex<HashMap<String, HashSet<[u8; 32]>>>,
}

fn key_of(text: &str) -> Key {
    let mut kb = KeyBuilder::new();
    kb.str("blob").str(text);
    kb.finish()
}

impl BlobStore {
    fn tag_index(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashSet<[u8; 32]>>> {
        match self.tags.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[pymethods]
impl BlobStore {
    #[new]
    #[pyo3(signature = (max_bytes = 64 * 1024 * 1024, max_entry_bytes = 8 * 1024 * 1024))]
    fn new(py: Python<'_>, max_bytes: u64, max_entry_bytes: usize) -> PyResult<Self> {
        if max_bytes == 0 || max_entry_bytes == 0 {
            return Err(config_error(
                py,
                "max_bytes and max_entry_bytes must be positive".into(),
            ));
        }
        let config = StoreConfig {
            max_bytes,
            max_entry_bytes,
        };
        Ok(BlobStore {
            store: Store::new(config, Arc::new(Clock::default())),
            tags: Mutex::new(HashMap::new()),
        })
    }

    /// The value under `key`, or None (absent or expired).
    fn get<'py>(&self, py: Python<'py>, key: &str) -> Option<Bound<'py, PyBytes>> {
        match self.store.get(&key_of(key)) {
            Lookup::Fresh(entry) => Some(entry.payload.bind(py).clone()),
            _ => None,
        }
    }

    /// Stores `value` for `ttl` seconds with `tags`. False when it is over the entry limit.
    #[pyo3(signature = (key, value, ttl, tags = Vec::new()))]
    fn set(
        &self,
        py: Python<'_>,
        key: &str,
        value: &Bound<'_, PyBytes>,
        ttl: f64,
        tags: Vec<String>,
    ) -> PyResult<bool> {
        let k = key_of(key);
        let meta = EntryMeta {
            status: 0,
            stored_at: self.store.clock().now(),
            ttl,
            stale_while_revalidate: 0.0,
            stale_if_error: 0.0,
            etag: String::new(),
        };
        let labels = Tags {
            labels: Arc::new(RouteLabels {
                namespace: "blob".into(),
                route: key.into(),
            }),
            path: 0,
            user: None,
        };
        let size = value.as_bytes().len() + PY_BYTES_OVERHEAD + key.len();
        match self
            .store
            .insert(&k, meta, value.clone().unbind(), size, labels)
        {
            Ok(_) => {}
            Err(StoreError::TooLarge { .. }) => return Ok(false),
            Err(err) => return Err(super::errors::store_error(py, err)),
        }
        if !tags.is_empty() {
            let mut index = self.tag_index();
            for tag in tags {
                index.entry(tag).or_default().insert(*k.digest());
            }
        }
        Ok(true)
    }

    /// Seconds `key` has left, or None when absent.
    fn ttl(&self, key: &str) -> Option<f64> {
        match self.store.get(&key_of(key)) {
            Lookup::Fresh(entry) => Some(entry.meta.remaining(self.store.clock().now())),
            _ => None,
        }
    }

    /// Removes `key`; True when it was there.
    fn delete(&self, key: &str) -> bool {
        let k = key_of(key);
        let live = matches!(self.store.get(&k), Lookup::Fresh(_));
        self.store.remove(&k) && live
    }

    /// Removes every key starting with `prefix`; the count of live entries removed.
    fn delete_prefix(&self, prefix: &str) -> usize {
        let now = self.store.clock().now();
        let count = std::sync::atomic::AtomicUsize::new(0);
        self.store.invalidate_where_entry(|stored| {
            let hit = stored.tags.labels.route.starts_with(prefix);
            if hit && stored.meta.is_fresh(now) {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            hit
        });
        count.into_inner()
    }

    /// Removes every live entry written with `tag`; the count removed.
    fn delete_tag(&self, tag: &str) -> usize {
        let digests = self.tag_index().remove(tag).unwrap_or_default();
        let mut count = 0;
        for digest in digests {
            count += usize::from(self.store.remove_digest_if_fresh(&digest));
        }
        count
    }

    /// Removes everything.
    fn clear(&self) {
        self.store.clear();
        self.tag_index().clear();
    }

    /// Moves the clock by `seconds` (tests: expiry without sleeping).
    fn advance_clock(&self, seconds: f64) {
        if seconds.is_finite() {
            self.store.clock().advance(seconds);
        }
    }

    fn __len__(&self) -> usize {
        usize::try_from(self.store.entry_count()).unwrap_or(usize::MAX)
    }
}
