//! The in-process store: bounded by bytes, TTL per entry, TinyLFU eviction that keeps hot keys.
//!
//! Built on `moka` (a concurrent cache modelled on Caffeine): a weigher charges each entry its
//! approximate resident size, `expire_after` drops entries once no use of them is allowed
//! (fresh or stale), and the admission policy keeps frequently read keys under pressure.
//!
//! The store is generic over its payload `P` so that this module stays pure Rust: the Python
//! layer stores `bytes` objects (returned on a hit without a copy), the tests store `Vec<u8>`.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;
use moka::sync::Cache;
use moka::Expiry;

use super::clock::Clock;
use super::entry::EntryMeta;
use super::key::Key;

/// Bytes charged to every entry on top of its payload and key: moka's node, the `Arc`, the
/// metadata and the tags (measured order of magnitude; keeps RSS close to the configured cap).
pub const ENTRY_OVERHEAD: usize = 320;

/// Labels used to invalidate groups of entries.
#[derive(Debug, Clone, Default)]
pub struct Tags {
    /// The namespace given to `@cache(namespace=...)`.
    pub namespace: Arc<str>,
    /// The route or function the entry belongs to.
    pub route: Arc<str>,
    /// The raw request path (`b""` for memoized functions).
    pub path: Box<[u8]>,
}

/// One stored entry.
#[derive(Debug)]
pub struct Stored<P> {
    /// Canonical key bytes, compared on read so that a digest collision is a miss.
    pub key: Box<[u8]>,
    /// Status, times and ETag.
    pub meta: EntryMeta,
    /// The body and headers, in whatever form the caller keeps them.
    pub payload: P,
    /// Invalidation labels.
    pub tags: Tags,
    weight: u32,
}

/// Result of a lookup.
#[derive(Debug)]
pub enum Lookup<P> {
    /// A fresh entry.
    Fresh(Arc<Stored<P>>),
    /// An entry past its TTL but inside a stale-while-revalidate / stale-if-error window.
    Stale(Arc<Stored<P>>),
    /// Nothing usable.
    Miss,
}

/// Why an insert was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The entry is larger than the per-entry limit.
    TooLarge {
        /// Charged size of the entry.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The TTL is zero, negative or not a number.
    InvalidTtl,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::TooLarge { size, limit } => {
                write!(
                    f,
                    "entry of {size} bytes exceeds the {limit}-byte entry limit"
                )
            }
            StoreError::InvalidTtl => write!(f, "ttl must be a positive finite number of seconds"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Counters of store events, read by `stats()`.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Fresh entries returned.
    pub hits: AtomicU64,
    /// Stale entries returned.
    pub stale_hits: AtomicU64,
    /// Lookups that found nothing usable.
    pub misses: AtomicU64,
    /// Entries written.
    pub inserts: AtomicU64,
    /// Inserts refused (too large, bad TTL).
    pub rejected: AtomicU64,
    /// Digest matches whose canonical key differed.
    pub collisions: AtomicU64,
    /// Entries evicted to respect the byte cap.
    pub evictions: AtomicU64,
    /// Entries dropped because they expired.
    pub expirations: AtomicU64,
}

/// Hashes the 32-byte digest keys by taking 8 of their bytes: they are already uniform, so a
/// second hash (SipHash by default) would only cost time on every lookup.
#[derive(Clone, Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 32]` hashes as one 32-byte write; anything else still mixes in deterministically.
        let mut word = [0u8; 8];
        for (slot, b) in word.iter_mut().zip(bytes.iter()) {
            *slot = *b;
        }
        self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
    }
    fn write_usize(&mut self, _len: usize) {
        // The length prefix of an array hash is constant for our keys; ignoring it keeps the
        // digest bits as they are.
    }
}

/// Builds [`DigestHasher`]s.
#[derive(Clone, Default)]
pub struct DigestHasherBuilder;

impl BuildHasher for DigestHasherBuilder {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(0)
    }
}

/// Tells moka how long each entry may live: until its last stale window closes.
struct UsableUntil {
    clock: Arc<Clock>,
}

impl UsableUntil {
    fn lifetime<P>(&self, entry: &Stored<P>) -> Option<Duration> {
        let left = entry.meta.usable_until() - self.clock.now();
        // NaN (a clock moved by NaN) must not reach `from_secs_f64`, which panics on it.
        let secs = if left.is_nan() {
            0.0
        } else {
            left.clamp(0.0, 1.0e9)
        };
        Some(Duration::from_secs_f64(secs))
    }
}

impl<P> Expiry<[u8; 32], Arc<Stored<P>>> for UsableUntil {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Arc<Stored<P>>,
        _created_at: Instant,
    ) -> Option<Duration> {
        self.lifetime(value)
    }

    fn expire_after_update(
        &self,
        _key: &[u8; 32],
        value: &Arc<Stored<P>>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        // An overwrite brings new times: never keep the old entry's expiry.
        self.lifetime(value)
    }
}

/// Store configuration.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Total bytes the store may hold (charged sizes).
    pub max_bytes: u64,
    /// Largest single entry accepted.
    pub max_entry_bytes: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            max_bytes: 256 * 1024 * 1024,
            max_entry_bytes: 8 * 1024 * 1024,
        }
    }
}

/// The in-process store.
pub struct Store<P: Send + Sync + 'static> {
    cache: Cache<[u8; 32], Arc<Stored<P>>, DigestHasherBuilder>,
    clock: Arc<Clock>,
    config: StoreConfig,
    stats: Arc<StoreStats>,
}

impl<P: Send + Sync + 'static> Store<P> {
    /// A store with the given limits, reading time from `clock`.
    pub fn new(config: StoreConfig, clock: Arc<Clock>) -> Self {
        let stats = Arc::new(StoreStats::default());
        let listener_stats = Arc::clone(&stats);
        let cache = Cache::builder()
            .max_capacity(config.max_bytes)
            .weigher(|_k: &[u8; 32], v: &Arc<Stored<P>>| v.weight)
            .expire_after(UsableUntil {
                clock: Arc::clone(&clock),
            })
            .support_invalidation_closures()
            .eviction_listener(move |_k, _v, cause| {
                let counter = match cause {
                    RemovalCause::Size => &listener_stats.evictions,
                    RemovalCause::Expired => &listener_stats.expirations,
                    RemovalCause::Explicit | RemovalCause::Replaced => return,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            })
            .build_with_hasher(DigestHasherBuilder);
        Store {
            cache,
            clock,
            config,
            stats,
        }
    }

    /// The clock entries are stamped with.
    pub fn clock(&self) -> &Arc<Clock> {
        &self.clock
    }

    /// The limits this store was built with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Event counters.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// Looks `key` up at the current time. Expired entries are never returned: past every
    /// window they are removed and reported as a miss.
    pub fn get(&self, key: &Key) -> Lookup<P> {
        self.get_at(key, self.clock.now())
    }

    /// Looks `key` up as of `now` (Unix seconds).
    pub fn get_at(&self, key: &Key, now: f64) -> Lookup<P> {
        let Some(entry) = self.cache.get(key.digest()) else {
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            return Lookup::Miss;
        };
        if *entry.key != *key.canonical() {
            self.stats.collisions.fetch_add(1, Ordering::Relaxed);
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            return Lookup::Miss;
        }
        if entry.meta.is_fresh(now) {
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
            return Lookup::Fresh(entry);
        }
        if now < entry.meta.usable_until() {
            self.stats.stale_hits.fetch_add(1, Ordering::Relaxed);
            return Lookup::Stale(entry);
        }
        self.cache.invalidate(key.digest());
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        Lookup::Miss
    }

    /// Stores an entry. `payload_bytes` is the caller's estimate of the payload's resident size;
    /// the key, tags and a fixed overhead are added to it.
    pub fn insert(
        &self,
        key: &Key,
        meta: EntryMeta,
        payload: P,
        payload_bytes: usize,
        tags: Tags,
    ) -> Result<Arc<Stored<P>>, StoreError> {
        if !(meta.ttl.is_finite() && meta.ttl > 0.0) {
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::InvalidTtl);
        }
        let size = payload_bytes
            .saturating_add(key.canonical().len())
            .saturating_add(tags.path.len())
            .saturating_add(ENTRY_OVERHEAD);
        if size > self.config.max_entry_bytes {
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::TooLarge {
                size,
                limit: self.config.max_entry_bytes,
            });
        }
        let weight = u32::try_from(size).unwrap_or(u32::MAX);
        let stored = Arc::new(Stored {
            key: key.canonical().into(),
            meta,
            payload,
            tags,
            weight,
        });
        self.cache.insert(*key.digest(), Arc::clone(&stored));
        self.stats.inserts.fetch_add(1, Ordering::Relaxed);
        Ok(stored)
    }

    /// Removes one key; true if an entry with that exact canonical key was there.
    pub fn remove(&self, key: &Key) -> bool {
        match self.cache.remove(key.digest()) {
            Some(entry) if *entry.key == *key.canonical() => true,
            Some(other) => {
                // A different key with the same digest: put it back untouched.
                self.cache.insert(*key.digest(), other);
                false
            }
            None => false,
        }
    }

    /// Invalidates every entry whose tags satisfy `predicate`. Entries present now are never
    /// returned again; their memory is reclaimed by moka's maintenance shortly after.
    pub fn invalidate_where<F>(&self, predicate: F)
    where
        F: Fn(&Tags) -> bool + Send + Sync + 'static,
    {
        // Only fails when invalidation closures are not enabled, which `new` always does.
        let _ = self
            .cache
            .invalidate_entries_if(move |_k, v| predicate(&v.tags));
        self.cache.run_pending_tasks();
    }

    /// Removes everything.
    pub fn clear(&self) {
        self.cache.invalidate_all();
        self.cache.run_pending_tasks();
    }

    /// Number of entries (approximate until maintenance has run).
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Sum of the charged sizes (approximate until maintenance has run).
    pub fn weighted_size(&self) -> u64 {
        self.cache.weighted_size()
    }

    /// Runs pending maintenance (evictions, expirations) now.
    pub fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::key::KeyBuilder;

    fn key(s: &str) -> Key {
        let mut b = KeyBuilder::new();
        b.str(s);
        b.finish()
    }

    fn meta(now: f64, ttl: f64) -> EntryMeta {
        EntryMeta {
            status: 200,
            stored_at: now,
            ttl,
            stale_while_revalidate: 0.0,
            stale_if_error: 0.0,
            etag: String::new(),
        }
    }

    fn store(max_bytes: u64) -> Store<Vec<u8>> {
        Store::new(
            StoreConfig {
                max_bytes,
                max_entry_bytes: 1 << 20,
            },
            Arc::new(Clock::manual(1_000_000.0)),
        )
    }

    fn tags(ns: &str) -> Tags {
        Tags {
            namespace: ns.into(),
            route: "r".into(),
            path: Box::default(),
        }
    }

    #[test]
    fn insert_then_fresh_hit_returns_payload() {
        let s = store(1 << 20);
        let now = s.clock().now();
        s.insert(&key("a"), meta(now, 60.0), b"body".to_vec(), 4, tags("n"))
            .unwrap();
        match s.get(&key("a")) {
            Lookup::Fresh(e) => assert_eq!(e.payload, b"body"),
            other => panic!("expected fresh, got {other:?}"),
        }
    }

    #[test]
    fn expired_entries_are_never_served() {
        let s = store(1 << 20);
        let now = s.clock().now();
        s.insert(&key("a"), meta(now, 60.0), vec![1], 1, tags("n"))
            .unwrap();
        s.clock().advance(60.0);
        assert!(matches!(s.get(&key("a")), Lookup::Miss));
        // and it is gone, even if the clock went back
        s.clock().advance(-30.0);
        assert!(matches!(s.get(&key("a")), Lookup::Miss));
    }

    #[test]
    fn stale_window_reports_stale_then_miss() {
        let s = store(1 << 20);
        let now = s.clock().now();
        let mut m = meta(now, 10.0);
        m.stale_while_revalidate = 20.0;
        s.insert(&key("a"), m, vec![1], 1, tags("n")).unwrap();
        s.clock().advance(15.0);
        assert!(matches!(s.get(&key("a")), Lookup::Stale(_)));
        s.clock().advance(20.0);
        assert!(matches!(s.get(&key("a")), Lookup::Miss));
    }

    #[test]
    fn canonical_key_is_verified_on_read() {
        let s = store(1 << 20);
        let now = s.clock().now();
        let real = key("a");
        // Forge a key with the same digest but other canonical bytes, as a collision would.
        s.insert(&real, meta(now, 60.0), vec![1], 1, tags("n"))
            .unwrap();
        let forged = Key::forged_for_tests(real.digest(), b"not the same key");
        assert!(matches!(s.get(&forged), Lookup::Miss));
        assert_eq!(s.stats().collisions.load(Ordering::Relaxed), 1);
        assert!(!s.remove(&forged));
        assert!(matches!(s.get(&real), Lookup::Fresh(_)));
    }

    #[test]
    fn too_large_and_bad_ttl_are_refused() {
        let s = store(1 << 20);
        let now = s.clock().now();
        let err = s
            .insert(&key("a"), meta(now, 60.0), vec![], 2 << 20, tags("n"))
            .unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { .. }));
        for ttl in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                s.insert(&key("a"), meta(now, ttl), vec![], 1, tags("n"))
                    .unwrap_err(),
                StoreError::InvalidTtl
            );
        }
    }

    #[test]
    fn byte_cap_is_held() {
        let cap = 256 * 1024;
        let s = store(cap);
        let now = s.clock().now();
        for i in 0..2000 {
            s.insert(
                &key(&i.to_string()),
                meta(now, 600.0),
                vec![0; 1000],
                1000,
                tags("n"),
            )
            .unwrap();
        }
        s.run_pending_tasks();
        assert!(s.weighted_size() <= cap, "{} > {cap}", s.weighted_size());
        assert!(s.stats().evictions.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn invalidate_by_namespace_and_clear() {
        let s = store(1 << 20);
        let now = s.clock().now();
        s.insert(&key("a"), meta(now, 60.0), vec![1], 1, tags("x"))
            .unwrap();
        s.insert(&key("b"), meta(now, 60.0), vec![1], 1, tags("y"))
            .unwrap();
        s.invalidate_where(|t| &*t.namespace == "x");
        assert!(matches!(s.get(&key("a")), Lookup::Miss));
        assert!(matches!(s.get(&key("b")), Lookup::Fresh(_)));
        s.clear();
        assert!(matches!(s.get(&key("b")), Lookup::Miss));
    }

    #[test]
    fn overwrite_replaces_value_and_times() {
        let s = store(1 << 20);
        let now = s.clock().now();
        s.insert(&key("a"), meta(now, 5.0), vec![1], 1, tags("n"))
            .unwrap();
        s.insert(&key("a"), meta(now, 600.0), vec![2], 1, tags("n"))
            .unwrap();
        s.clock().advance(10.0);
        match s.get(&key("a")) {
            Lookup::Fresh(e) => assert_eq!(e.payload, vec![2]),
            other => panic!("expected fresh, got {other:?}"),
        }
    }
}
