//! What a cache entry is, independent of where its body lives.
//!
//! The in-process store keeps the body as a Python `bytes` object (see `src/py`), the remote
//! backends keep it inside the [`envelope`](super::envelope); both share [`EntryMeta`].

/// Metadata stored with every entry: enough to replay a response and to judge its freshness.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryMeta {
    /// HTTP status of the stored response; 0 for a memoized function value.
    pub status: u16,
    /// Wall-clock time (Unix seconds) when the entry was stored: the basis of `Age`
    /// (RFC 9111 §4.2.3) and of freshness.
    pub stored_at: f64,
    /// Freshness lifetime in seconds (the TTL; RFC 9111 §4.2.1).
    pub ttl: f64,
    /// Extra seconds during which a stale entry may be served while one refresh runs (RFC 5861 §3).
    pub stale_while_revalidate: f64,
    /// Extra seconds during which a stale entry may be served when the handler fails (RFC 5861 §4).
    pub stale_if_error: f64,
    /// Entity tag of the stored body, as sent in the `ETag` field (quotes and `W/` included);
    /// empty when there is none.
    pub etag: String,
}

impl EntryMeta {
    /// Seconds since the entry was stored, never negative (a clock step backwards reads as 0).
    pub fn age(&self, now: f64) -> f64 {
        (now - self.stored_at).max(0.0)
    }

    /// Whether the entry is still fresh at `now` (RFC 9111 §4.2: fresh while age < lifetime).
    pub fn is_fresh(&self, now: f64) -> bool {
        self.age(now) < self.ttl
    }

    /// Seconds of freshness left at `now` (0 once stale).
    pub fn remaining(&self, now: f64) -> f64 {
        (self.ttl - self.age(now)).max(0.0)
    }

    /// The last instant (Unix seconds) at which any use of the entry is allowed, fresh or stale.
    pub fn usable_until(&self) -> f64 {
        self.stored_at + self.ttl + self.stale_while_revalidate.max(self.stale_if_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(stored_at: f64, ttl: f64) -> EntryMeta {
        EntryMeta {
            status: 200,
            stored_at,
            ttl,
            stale_while_revalidate: 0.0,
            stale_if_error: 0.0,
            etag: String::new(),
        }
    }

    #[test]
    fn freshness_follows_age_and_ttl() {
        let m = meta(100.0, 60.0);
        assert!(m.is_fresh(100.0));
        assert!(m.is_fresh(159.9));
        assert!(!m.is_fresh(160.0));
        assert_eq!(m.remaining(130.0), 30.0);
        assert_eq!(m.remaining(200.0), 0.0);
    }

    #[test]
    fn clock_going_backwards_reads_as_age_zero() {
        let m = meta(100.0, 60.0);
        assert_eq!(m.age(50.0), 0.0);
        assert!(m.is_fresh(50.0));
    }
}
