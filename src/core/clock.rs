//! Wall-clock time for entries, with an offset that tests can move so TTL tests never sleep.
//!
//! Entries are stamped with wall-clock Unix seconds (not a monotonic instant) because the same
//! stamps travel inside envelopes to other processes and feed the `Age` field (RFC 9111 §5.1).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A clock reading Unix seconds as `f64`. `System` follows the machine clock plus an offset;
/// `Manual` stands still until moved, for deterministic tests.
#[derive(Debug)]
pub enum Clock {
    /// The system clock plus an offset in seconds (stored as `f64` bits).
    System {
        /// Offset added to the system time, as `f64::to_bits`.
        offset: AtomicU64,
    },
    /// A clock that only moves when told to (stored as `f64` bits).
    Manual {
        /// Current reading, as `f64::to_bits`.
        now: AtomicU64,
    },
}

impl Default for Clock {
    fn default() -> Self {
        Clock::System {
            offset: AtomicU64::new(0f64.to_bits()),
        }
    }
}

impl Clock {
    /// A manual clock reading `start` seconds.
    pub fn manual(start: f64) -> Self {
        Clock::Manual {
            now: AtomicU64::new(start.to_bits()),
        }
    }

    /// Current time in Unix seconds.
    pub fn now(&self) -> f64 {
        match self {
            Clock::System { offset } => {
                // A system clock before 1970 is a broken machine; read it as the epoch.
                let wall = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
                wall + f64::from_bits(offset.load(Ordering::Relaxed))
            }
            Clock::Manual { now } => f64::from_bits(now.load(Ordering::Relaxed)),
        }
    }

    /// Moves the clock forward (or back, with a negative value) by `seconds`.
    pub fn advance(&self, seconds: f64) {
        let cell = match self {
            Clock::System { offset } => offset,
            Clock::Manual { now } => now,
        };
        // Read-modify-write with a CAS loop: f64 has no atomic add.
        let mut current = cell.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(current) + seconds).to_bits();
            match cell.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = Clock::manual(1000.0);
        assert_eq!(c.now(), 1000.0);
        c.advance(2.5);
        assert_eq!(c.now(), 1002.5);
    }

    #[test]
    fn system_clock_offset_shifts_reading() {
        let c = Clock::default();
        let before = c.now();
        c.advance(3600.0);
        assert!(c.now() - before >= 3599.0);
    }
}
