//! Pure-Rust HTTP caching rules. Every rule cites its RFC section.

pub mod cache_control;
pub mod conditional;
pub mod etag;
pub mod request;
pub mod response;
