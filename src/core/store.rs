//! The in-process store: bounded by bytes, TTL per entry, eviction that keeps hot keys.
//!
//! Built on `quick_cache` (a sharded, CLOCK-PRO-style concurrent cache): a weigher charges each
//! entry its approximate resident size, the admission and eviction policy keeps frequently
//! read keys under pressure, and entries past their last usable instant are dropped first:
//! never served (checked on every read), and swept out before the policy has to evict live
//! entries (when the store is nine-tenths full, at most once a second).
//!
//! quick_cache rather than moka: per entry it costs a slot and an index word instead of moka's
//! nodes in several queues and a timer wheel, which is what lets RSS stay within 1.2x of the
//! stored bytes; and a hit is a shard read-lock and a probe.
//!
//! The store is generic over its payload `P` so that this module stays pure Rust: the Python
//! layer stores `bytes` objects (returned on a hit without a copy), the tests store `Vec<u8>`.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::{Lifecycle, Weighter};

use super::clock::Clock;
use super::entry::EntryMeta;
use super::key::Key;

/// Bytes charged to every entry on top of its payload and key: the cache slot and index, the
/// `Arc`, the metadata and the tags (measured order of magnitude; keeps RSS close to the cap).
pub const ENTRY_OVERHEAD: usize = 256;

/// Seconds between two sweeps of dead entries.
const SWEEP_INTERVAL: f64 = 1.0;

/// The labels of one route (or memoized function).
#[derive(Debug, Clone, Default)]
pub struct RouteLabels {
    /// The namespace given to `@cache(namespace=...)`.
    pub namespace: Box<str>,
    /// The route or function the entries belong to.
    pub route: Box<str>,
}

/// Labels used to invalidate groups of entries.
#[derive(Debug, Clone, Default)]
pub struct Tags {
    /// Namespace and route, shared by every entry of the route.
    pub labels: Arc<RouteLabels>,
    /// Hash of the raw request path (of `b""` for memoized functions), see [`path_tag`]. A
    /// hash keeps entries small; a collision could only invalidate too much, never serve.
    pub path: u64,
    /// The hashes of the tags the application gave this entry ([`user_tag`]), if any: one
    /// pointer on untagged entries, shared by the entry's copies.
    pub user: Option<Arc<[u64]>>,
}

impl Tags {
    /// Whether the entry carries the application tag of hash `tag` ([`user_tag`]).
    pub fn has_user_tag(&self, tag: u64) -> bool {
        self.user.as_deref().is_some_and(|tags| tags.contains(&tag))
    }
}

/// The hash an application tag (`"user:42"`) is kept and matched under, for [`Tags::user`].
/// As with paths, a collision could only invalidate too much, never serve.
pub fn user_tag(tag: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(tag.as_bytes())
}

/// The tag of a raw request path, for [`Tags::path`].
pub fn path_tag(path: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(path)
}

/// One stored entry.
#[derive(Debug)]
pub struct Stored<P> {
    /// Canonical key bytes, then the ETag: one allocation instead of two per entry.
    key_etag: Box<[u8]>,
    key_len: usize,
    /// Status and times. Its `etag` is left empty: read [`Stored::etag`].
    pub meta: EntryMeta,
    /// The body and headers, in whatever form the caller keeps them.
    pub payload: P,
    /// Invalidation labels.
    pub tags: Tags,
    weight: u32,
}

impl<P> Stored<P> {
    /// An entry outside any store: what a remote backend returned, replayed without being
    /// kept in memory. `weight` is the charged size ([`Store::insert`] sets it).
    pub fn detached(key: &Key, mut meta: EntryMeta, payload: P, tags: Tags, weight: u32) -> Self {
        let etag = std::mem::take(&mut meta.etag);
        Stored {
            key_etag: [key.canonical(), etag.as_bytes()]
                .concat()
                .into_boxed_slice(),
            key_len: key.canonical().len(),
            meta,
            payload,
            tags,
            weight,
        }
    }

    /// The canonical key, compared on read so that a digest collision is a miss.
    pub fn key(&self) -> &[u8] {
        self.key_etag.get(..self.key_len).unwrap_or_default()
    }

    /// The entity tag of the stored response (empty when none).
    pub fn etag(&self) -> &str {
        let tail = self.key_etag.get(self.key_len..).unwrap_or_default();
        std::str::from_utf8(tail).unwrap_or_default()
    }
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

/// Charges each entry the size computed at insert.
#[derive(Clone)]
struct ChargedSize;

impl<P> Weighter<[u8; 32], Arc<Stored<P>>> for ChargedSize {
    fn weight(&self, _key: &[u8; 32], value: &Arc<Stored<P>>) -> u64 {
        u64::from(value.weight)
    }
}

/// Counts entries the policy evicts to respect the byte cap.
#[derive(Clone)]
struct CountEvictions(Arc<StoreStats>);

impl<P> Lifecycle<[u8; 32], Arc<Stored<P>>> for CountEvictions {
    type RequestState = ();

    fn on_evict(&self, _state: &mut (), _key: [u8; 32], _value: Arc<Stored<P>>) {
        self.0.evictions.fetch_add(1, Ordering::Relaxed);
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
    cache: Cache<[u8; 32], Arc<Stored<P>>, ChargedSize, DigestHasherBuilder, CountEvictions>,
    clock: Arc<Clock>,
    config: StoreConfig,
    stats: Arc<StoreStats>,
    /// When the next sweep of dead entries may run (Unix seconds, as `f64` bits).
    next_sweep: AtomicU64,
}

impl<P: Send + Sync + 'static> Store<P> {
    /// A store with the given limits, reading time from `clock`.
    pub fn new(config: StoreConfig, clock: Arc<Clock>) -> Self {
        let stats = Arc::new(StoreStats::default());
        // A first guess of the entry count sizes the index; it grows as needed.
        let estimated_items = usize::try_from(config.max_bytes / 4096).unwrap_or(usize::MAX);
        let cache = Cache::with(
            estimated_items.clamp(64, 16_384),
            config.max_bytes,
            ChargedSize,
            DigestHasherBuilder,
            CountEvictions(Arc::clone(&stats)),
        );
        Store {
            cache,
            clock,
            config,
            stats,
            next_sweep: AtomicU64::new(0f64.to_bits()),
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
        if entry.key() != key.canonical() {
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
        if self.remove(key) {
            self.stats.expirations.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        Lookup::Miss
    }

    /// Stores an entry. `payload_bytes` is the caller's estimate of the payload's resident size;
    /// the key and a fixed overhead are added to it.
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
            .saturating_add(meta.etag.len())
            .saturating_add(ENTRY_OVERHEAD);
        if size > self.config.max_entry_bytes {
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::TooLarge {
                size,
                limit: self.config.max_entry_bytes,
            });
        }
        let weight = u32::try_from(size).unwrap_or(u32::MAX);
        let stored = Arc::new(Stored::detached(key, meta, payload, tags, weight));
        self.maybe_sweep(stored.meta.stored_at, u64::from(weight));
        self.cache.insert(*key.digest(), Arc::clone(&stored));
        self.stats.inserts.fetch_add(1, Ordering::Relaxed);
        Ok(stored)
    }

    /// Removes one key; true if an entry with that exact canonical key was there (an entry of
    /// another key with the same digest is left alone).
    pub fn remove(&self, key: &Key) -> bool {
        self.cache
            .remove_if(key.digest(), |v| v.key() == key.canonical())
            .is_some()
    }

    /// Removes the entry stored under `digest`, whatever its canonical key (a coherence message
    /// from another process names the digest only).
    pub fn remove_digest(&self, digest: &[u8; 32]) -> bool {
        self.cache.remove(digest).is_some()
    }

    /// Removes the entry under `digest` if it is fresh now; true when one was removed.
    pub fn remove_digest_if_fresh(&self, digest: &[u8; 32]) -> bool {
        let now = self.clock.now();
        self.cache
            .remove_if(digest, |v| v.meta.is_fresh(now))
            .is_some()
    }

    /// Invalidates every entry for which `predicate` holds, now.
    pub fn invalidate_where_entry<F>(&self, predicate: F)
    where
        F: Fn(&Stored<P>) -> bool,
    {
        self.cache.retain(|_k, v| !predicate(v));
    }

    /// Invalidates every entry whose tags satisfy `predicate`, now.
    pub fn invalidate_where<F>(&self, predicate: F)
    where
        F: Fn(&Tags) -> bool,
    {
        self.cache.retain(|_k, v| !predicate(&v.tags));
    }

    /// Removes everything.
    pub fn clear(&self) {
        self.cache.clear();
    }

    /// Number of entries.
    pub fn entry_count(&self) -> u64 {
        u64::try_from(self.cache.len()).unwrap_or(u64::MAX)
    }

    /// Sum of the charged sizes.
    pub fn weighted_size(&self) -> u64 {
        self.cache.weight()
    }

    /// Drops every entry past its last usable instant, now.
    pub fn run_pending_tasks(&self) {
        self.sweep(self.clock.now());
    }

    /// TTL-aware eviction: when an insert would bring the store near its cap, drop the dead
    /// entries first, so that the policy never evicts a live entry while a dead one stays.
    fn maybe_sweep(&self, now: f64, incoming: u64) {
        let capacity = self.cache.capacity();
        if self.cache.weight().saturating_add(incoming) < capacity / 10 * 9 {
            return;
        }
        let due = f64::from_bits(self.next_sweep.load(Ordering::Relaxed));
        if now < due {
            return;
        }
        self.next_sweep
            .store((now + SWEEP_INTERVAL).to_bits(), Ordering::Relaxed);
        self.sweep(now);
    }

    fn sweep(&self, now: f64) {
        let dropped = AtomicU64::new(0);
        self.cache.retain(|_k, v| {
            let alive = now < v.meta.usable_until();
            if !alive {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
            alive
        });
        self.stats
            .expirations
            .fetch_add(dropped.into_inner(), Ordering::Relaxed);
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
            labels: Arc::new(RouteLabels {
                namespace: ns.into(),
                route: "r".into(),
            }),
            path: 0,
            user: None,
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
        s.invalidate_where(|t| &*t.labels.namespace == "x");
        assert!(matches!(s.get(&key("a")), Lookup::Miss));
        assert!(matches!(s.get(&key("b")), Lookup::Fresh(_)));
        s.clear();
        assert!(matches!(s.get(&key("b")), Lookup::Miss));
    }

    #[test]
    fn invalidate_by_application_tag_drops_only_the_tagged_entries() {
        let s = store(1 << 20);
        let now = s.clock().now();
        let tagged = Tags {
            user: Some(Arc::from([user_tag("user:42"), user_tag("team:7")])),
            ..tags("x")
        };
        s.insert(&key("a"), meta(now, 60.0), vec![1], 1, tagged)
            .unwrap();
        s.insert(&key("b"), meta(now, 60.0), vec![1], 1, tags("x"))
            .unwrap();
        let wanted = user_tag("team:7");
        s.invalidate_where(|t| t.has_user_tag(wanted));
        assert!(matches!(s.get(&key("a")), Lookup::Miss));
        assert!(matches!(s.get(&key("b")), Lookup::Fresh(_)));
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
