//! oxicache's Rust engine. `core` and `http` are pure Rust; `py` is the only binding code.

pub mod core;
pub mod http;

#[cfg(feature = "python")]
mod py;
