//! Refresh ahead of expiry: probabilistic early expiration, after XFetch (Vattani, Chierichetti
//! and Lowenstein, "Optimal Probabilistic Cache Stampede Prevention", VLDB 2015).
//!
//! A hot entry that expires makes every request that arrives before a new one is stored a
//! miss at once. Refreshing it a little before it expires avoids that, but if every request
//! near expiry refreshed, they would stampede just the same. XFetch has each request draw:
//! it refreshes when `remaining <= -delta * ln(u)` for a uniform `u` in (0, 1], so the chance
//! `exp(-remaining / delta)` grows to 1 as the entry nears expiry, and requests are spread out
//! over the last moments. Here `delta` is a quarter of the route's window, and no request
//! refreshes before the window starts: the first request in the window refreshes with a
//! chance of `exp(-4)` (under 2 %), one at its middle with `exp(-2)` (14 %).

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// How many `delta`s the window spans.
const WINDOW_IN_DELTAS: f64 = 4.0;

/// Whether a request that finds an entry with `remaining` seconds of freshness left
/// refreshes it, for a route whose window is `window` seconds and a draw `u` in (0, 1].
pub fn refresh_early(remaining: f64, window: f64, u: f64) -> bool {
    // NaN in either compares false: no refresh.
    let inside = window > 0.0 && remaining < window;
    if !inside {
        return false;
    }
    let delta = window / WINDOW_IN_DELTAS;
    remaining <= -delta * u.max(f64::MIN_POSITIVE).ln()
}

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let here = &nanos as *const u64 as u64; // differs between threads
    nanos ^ here.rotate_left(32) ^ 0x9E37_79B9_7F4A_7C15
}

/// A uniform draw in (0, 1] (splitmix64; not for secrets, only to spread refreshes).
pub fn draw() -> f64 {
    STATE.with(|state| {
        let next = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_outside_the_window_nor_without_one() {
        assert!(!refresh_early(10.0, 5.0, 1e-300));
        assert!(!refresh_early(5.0, 5.0, 1e-300));
        assert!(!refresh_early(0.1, 0.0, 1e-300));
    }

    #[test]
    fn the_chance_grows_towards_expiry() {
        // remaining <= -(window / 4) ln(u)  <=>  u <= exp(-4 remaining / window)
        let window = 8.0;
        for (remaining, chance) in [(6.0f64, (-3.0f64).exp()), (2.0, (-1.0f64).exp())] {
            assert!(refresh_early(remaining, window, chance * 0.999));
            assert!(!refresh_early(remaining, window, chance * 1.001));
        }
        assert!(refresh_early(1e-9, window, 0.999_999));
    }

    #[test]
    fn draws_are_in_the_unit_interval_and_spread() {
        let draws: Vec<f64> = (0..10_000).map(|_| draw()).collect();
        assert!(draws.iter().all(|&u| u > 0.0 && u <= 1.0));
        let low = draws.iter().filter(|&&u| u < 0.5).count();
        assert!((4_000..6_000).contains(&low), "{low} of 10000 below 0.5");
    }
}
