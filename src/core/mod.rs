//! Pure-Rust cache engine: no pyo3 here, so `cargo test` needs no Python.

pub mod clock;
pub mod compress;
pub mod entry;
pub mod envelope;
pub mod key;
pub mod memcached_text;
pub mod query;
pub mod refresh;
pub mod response_facts;
pub mod store;
